"""Raw categorical values to table indices (TensorFlow string ops)."""

import keras
import tensorflow as tf

from tfmtl.layers.base import Layer
from tfmtl.schema.names import internal_name
from tfmtl.schema.schema import Schema
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.serialization import register


def table_size(schema, table):
    """Rows of the embedding table `table` of `schema`.

    String tables reserve index 0 for the empty string (padding of
    multi-valued fields, a missing value elsewhere) and 1 for unseen values;
    integer tables reserve 0 for unseen values; hashed tables have
    `num_bins` rows.
    """
    field = schema.tables[table][0]
    if field.num_bins is not None:
        return field.num_bins
    reserved = 2 if field.dtype == "string" else 1
    return len(schema.table_vocabulary(table)) + reserved


@register
class FeatureLookup(Layer):
    """Maps raw categorical values to embedding-table indices.

    One lookup per table (fields that share a table share its lookup). A
    single-valued field's `(batch,)` values become `(batch,)` indices; a
    multi-valued field's `(batch,)` strings are split on its separator and
    become `(batch, max_values)` indices padded with 0. Unseen values map
    to the out-of-vocabulary index (see `table_size`).

    Args:
        schema: `Schema` or its config.

    Call arguments:
        inputs: dict of feature name to raw values (extra keys ignored).

    Returns:
        dict of field name to int indices.

    Example:

    >>> from tfmtl.schema import Schema, SparseFeature
    >>> lookup = FeatureLookup(Schema([SparseFeature("c", vocabulary=("x", "y"))]))
    >>> lookup({"c": tf.constant(["y", "z"])})["c"].numpy().tolist()
    [3, 1]
    """

    def __init__(self, schema, **kwargs):
        super().__init__(**kwargs)
        self.schema = Schema.of(schema)
        self.lookups = {}
        for table, fields in self.schema.tables.items():
            field = fields[0]
            if field.num_bins is not None:
                layer = keras.layers.Hashing(
                    field.num_bins,
                    mask_value="" if field.dtype == "string" else None,
                    name=f"hash_{internal_name(table)}",
                )
            elif field.dtype == "string":
                layer = keras.layers.StringLookup(
                    vocabulary=list(self.schema.table_vocabulary(table)),
                    mask_token="",
                    num_oov_indices=1,
                    name=f"lookup_{internal_name(table)}",
                )
            else:
                layer = keras.layers.IntegerLookup(
                    vocabulary=list(self.schema.table_vocabulary(table)),
                    mask_token=None,
                    num_oov_indices=1,
                    vocabulary_dtype="int64",
                    name=f"lookup_{internal_name(table)}",
                )
            self.lookups[table] = layer

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs):
        indices = {}
        for field in self.schema.fields:
            values = inputs[field.name]
            if isinstance(field, SequenceFeature):
                values = tf.reshape(values, [-1])
                values = tf.strings.split(values, sep=field.separator)
                values = values.to_tensor(default_value="")  # (batch, max_values)
                # A batch whose rows all hold zero values still needs one column.
                values = tf.pad(values, [[0, 0], [0, 1]], constant_values="")
            elif field.dtype == "int64":
                values = tf.cast(values, tf.int64)
            indices[field.name] = tf.cast(self.lookups[field.table](values), "int32")
        return indices

    def compute_output_spec(self, inputs):
        specs = {}
        for field in self.schema.fields:
            batch = inputs[field.name].shape[0]
            shape = (batch, None) if isinstance(field, SequenceFeature) else (batch,)
            specs[field.name] = keras.KerasTensor(shape, dtype="int32")
        return specs
