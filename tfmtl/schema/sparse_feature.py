"""Single-valued categorical feature."""

import dataclasses

from tfmtl.schema.names import check_name

DTYPES = ("string", "int64")


class Categorical:
    """What single- and multi-valued categorical features share: a table, a config."""

    @property
    def table(self):
        """The embedding table: `shared_embedding`, or the feature's own."""
        return self.shared_embedding or self.name

    def get_config(self):
        config = dataclasses.asdict(self)
        if self.vocabulary is not None:
            config["vocabulary"] = list(self.vocabulary)
        return config


@dataclasses.dataclass(frozen=True)
class SparseFeature(Categorical):
    """A categorical feature with one value per row.

    Raw values (strings or integers) are mapped to table indices inside the
    model, either through a vocabulary (unseen values go to an
    out-of-vocabulary bucket) or by hashing into `num_bins` bins.

    Args:
        name: str. Column name and model input name.
        vocabulary: tuple or `None`. Known values, most frequent first.
            Exactly one of `vocabulary` and `num_bins` is set.
        num_bins: int or `None`. Number of hash bins.
        dtype: str. `"string"` or `"int64"`: the dtype of raw values.
        shared_embedding: str or `None`. Name of an embedding table shared
            with other fields; defaults to a table of the feature's own.

    Example:

    >>> SparseFeature("user_id", vocabulary=(3, 7, 9), dtype="int64").table
    'user_id'
    """

    name: str
    vocabulary: tuple = None
    num_bins: int = None
    dtype: str = "string"
    shared_embedding: str = None

    def __post_init__(self):
        check_name(self.name, "Feature")
        _check_lookup(self)
        if self.dtype not in DTYPES:
            raise ValueError(
                f"Feature {self.name!r}: dtype must be one of {DTYPES}. "
                f"Received: dtype={self.dtype!r}"
            )
        if self.vocabulary is not None:
            vocabulary = tuple(
                str(v) if self.dtype == "string" else int(v)
                for v in self.vocabulary
            )
            object.__setattr__(self, "vocabulary", vocabulary)



def _check_lookup(feature):
    if (feature.vocabulary is None) == (feature.num_bins is None):
        raise ValueError(
            f"Feature {feature.name!r}: set exactly one of `vocabulary` and "
            f"`num_bins`. Received: vocabulary={_short(feature.vocabulary)}, "
            f"num_bins={feature.num_bins}"
        )
    if feature.vocabulary is not None and len(feature.vocabulary) == 0:
        raise ValueError(f"Feature {feature.name!r}: the vocabulary is empty.")
    if feature.vocabulary is not None and len(set(feature.vocabulary)) != len(
        feature.vocabulary
    ):
        raise ValueError(
            f"Feature {feature.name!r}: the vocabulary has repeated values."
        )
    if feature.num_bins is not None and (
        not isinstance(feature.num_bins, int) or feature.num_bins < 2
    ):
        raise ValueError(
            f"Feature {feature.name!r}: num_bins must be an integer >= 2. "
            f"Received: num_bins={feature.num_bins}"
        )


def _short(values):
    if values is None:
        return None
    values = list(values)
    return values[:5] + ["..."] if len(values) > 5 else values
