import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.layers.feature_lookup import table_size
from tfmtl.schema.names import internal_name
from tfmtl.schema.schema import Schema
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.serialization import register


@register
class FieldEmbedding(Layer):
    """Embeds every categorical field: `(batch, fields, dim)`.

    One table per schema table (shared fields read the same rows). A
    multi-valued field pools the embeddings of its values, mean or sum,
    skipping padding (index 0); a row with no values embeds to zeros.

    Args:
        schema: `Schema` or its config.
        embedding_dim: int. Width of every field's embedding.
        embeddings_initializer: Defaults to `"uniform"`.
        embeddings_regularizer: Defaults to `None`.

    Call arguments:
        indices: dict of field name to indices, from `FeatureLookup`.

    Example:

    >>> from tfmtl.schema import Schema, SparseFeature
    >>> layer = FieldEmbedding(Schema([SparseFeature("c", num_bins=5)]), 4)
    >>> tuple(layer({"c": ops.array([1, 2])}).shape)
    (2, 1, 4)
    """

    def __init__(
        self,
        schema,
        embedding_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.schema = Schema.of(schema)
        if not self.schema.fields:
            raise ValueError("FieldEmbedding needs a schema with categorical fields.")
        if int(embedding_dim) < 1:
            raise ValueError(
                f"embedding_dim must be >= 1. Received: embedding_dim={embedding_dim}"
            )
        self.embedding_dim = int(embedding_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.tables = {
            table: keras.layers.Embedding(
                table_size(self.schema, table),
                self.embedding_dim,
                embeddings_initializer=keras.initializers.get(
                    keras.initializers.serialize(self.embeddings_initializer)
                ),
                embeddings_regularizer=self.embeddings_regularizer,
                **self.sublayer_options(f"table_{internal_name(table)}"),
            )
            for table in self.schema.tables
        }

    def build(self, input_shape=None):
        for table in self.tables.values():
            table.build()

    def call(self, indices):
        fields = []
        for field in self.schema.fields:
            ids = indices[field.name]
            vectors = self.tables[field.table](ids)
            if isinstance(field, SequenceFeature):
                present = ops.cast(ops.not_equal(ids, 0), vectors.dtype)[..., None]
                vectors = ops.sum(vectors * present, axis=1)  # (batch, dim)
                if field.combiner == "mean":
                    vectors = vectors / ops.maximum(ops.sum(present, axis=1), 1.0)
            fields.append(vectors)
        return ops.stack(fields, axis=1)  # (batch, fields, dim)

    def compute_output_spec(self, indices):
        batch = indices[self.schema.fields[0].name].shape[0]
        return keras.KerasTensor(
            (batch, len(self.schema.fields), self.embedding_dim), dtype=self.compute_dtype
        )
