"""The set of input features of a model."""

import contextlib
import threading

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.schema.names import internal_names
from tfmtl.schema.sparse_feature import SparseFeature

# A layer inside a `MultiTaskModel` stores this instead of the model's whole
# schema (which the model stores once); `Schema.of` resolves it while the
# model loads.
MODEL_SCHEMA = "<the model's schema>"
_LOADING = threading.local()

_KINDS = {
    "sparse": SparseFeature,
    "sequence": SequenceFeature,
    "dense": DenseFeature,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


class Schema:
    """An ordered set of features: the raw inputs of a model.

    Categorical fields (`SparseFeature`, `SequenceFeature`) become rows of
    the `(batch, fields, dim)` embedding tensor in schema order; dense
    features are normalised and concatenated beside it. Fields naming the
    same `shared_embedding` share one lookup and one embedding table, whose
    vocabulary is the union of theirs.

    Args:
        features: list of `SparseFeature`, `SequenceFeature` and
            `DenseFeature`.

    Example:

    >>> schema = Schema([SparseFeature("item", num_bins=100),
    ...                  DenseFeature("price")])
    >>> schema.field_names, schema.dense_names
    (('item',), ('price',))
    """

    def __init__(self, features):
        features = tuple(features)
        if not features:
            raise ValueError("A schema needs at least one feature.")
        for feature in features:
            if type(feature) not in _KIND_OF:
                raise ValueError(
                    "Schema features must be SparseFeature, SequenceFeature "
                    f"or DenseFeature. Received: {feature!r}"
                )
        names = [f.name for f in features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"Repeated feature names in schema: {repeated}")
        self.internal_names = internal_names(names, "Feature names")
        self.report = None  # a SchemaReport when infer_schema made the schema
        self.features = features
        self._by_name = dict(zip(names, features))
        self.tables = self._check_tables()

    @classmethod
    def of(cls, value):
        """A `Schema` from a schema, its config, or `MODEL_SCHEMA` while a model loads."""
        if isinstance(value, Schema):
            return value
        if isinstance(value, str) and value == MODEL_SCHEMA:
            schema = getattr(_LOADING, "schema", None)
            if schema is None:
                raise ValueError("This layer's config refers to its model's schema: load it "
                                 "as part of its model (keras.saving.load_model).")
            return schema
        return cls.from_config(value)

    @staticmethod
    @contextlib.contextmanager
    def loading(schema):
        """Resolves `MODEL_SCHEMA` to `schema` within the block."""
        previous = getattr(_LOADING, "schema", None)
        _LOADING.schema = schema
        try:
            yield
        finally:
            _LOADING.schema = previous

    def _check_tables(self):
        tables = {}
        for field in self.fields:
            tables.setdefault(field.table, []).append(field)
        for table, fields in tables.items():
            dtypes = {f.dtype for f in fields}
            if len(dtypes) > 1:
                raise ValueError(
                    f"Fields sharing table {table!r} must have one dtype. "
                    f"Received: { {f.name: f.dtype for f in fields} }"
                )
            if len({f.num_bins for f in fields}) > 1:
                raise ValueError(
                    f"Fields sharing table {table!r} must all use a "
                    "vocabulary or all hash into the same num_bins. "
                    f"Received: { {f.name: f.num_bins for f in fields} }"
                )
        return {table: tuple(fields) for table, fields in tables.items()}

    def __getitem__(self, name):
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"No feature {name!r} in the schema. Known: {list(self._by_name)}"
            ) from None

    def __contains__(self, name):
        return name in self._by_name

    def __iter__(self):
        return iter(self.features)

    def __len__(self):
        return len(self.features)

    def __eq__(self, other):
        return isinstance(other, Schema) and self.features == other.features

    def __repr__(self):
        return f"Schema({list(self.features)!r})"

    @property
    def names(self):
        return tuple(f.name for f in self.features)

    @property
    def fields(self):
        """Categorical features, in the order of the embedding tensor."""
        return tuple(f for f in self.features if not isinstance(f, DenseFeature))

    @property
    def field_names(self):
        return tuple(f.name for f in self.fields)

    @property
    def dense(self):
        return tuple(f for f in self.features if isinstance(f, DenseFeature))

    @property
    def dense_names(self):
        return tuple(f.name for f in self.dense)

    def table_vocabulary(self, table):
        """The union of the vocabularies of the fields sharing `table`."""
        vocabulary = {}
        for field in self.tables[table]:
            for value in field.vocabulary or ():
                vocabulary.setdefault(value, None)
        return tuple(vocabulary)

    def select(self, names):
        """A schema of the named features only, in this schema's order."""
        missing = [n for n in names if n not in self._by_name]
        if missing:
            raise KeyError(f"No features {missing} in the schema.")
        names = set(names)
        return Schema([f for f in self.features if f.name in names])

    def get_config(self):
        return {
            "features": [
                {"kind": _KIND_OF[type(f)], **f.get_config()}
                for f in self.features
            ]
        }

    @classmethod
    def from_config(cls, config):
        features = []
        for feature in config["features"]:
            feature = dict(feature)
            kind = feature.pop("kind")
            if "vocabulary" in feature and feature["vocabulary"] is not None:
                feature["vocabulary"] = tuple(feature["vocabulary"])
            features.append(_KINDS[kind](**feature))
        return cls(features)
