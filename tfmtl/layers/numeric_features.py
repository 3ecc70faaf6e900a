import keras
import numpy as np
from keras import ops

from tfmtl.schema.schema import Schema
from tfmtl.serialization import register


@register
class NumericFeatures(keras.layers.Layer):
    """Stacks and normalises the dense features of a schema.

    Each feature becomes `(x - mean) / sqrt(variance + 1e-12)` with the
    schema's statistics; a missing value (NaN) becomes 0.

    Args:
        schema: `Schema` or its config; its dense features are used.

    Output shape: `(batch, dense features)`.

    Example:

    >>> from tfmtl.schema import DenseFeature, Schema
    >>> layer = NumericFeatures(Schema([DenseFeature("p", mean=1.0, variance=4.0)]))
    >>> layer({"p": np.array([3.0, np.nan], "float32")}).numpy().tolist()
    [[1.0], [0.0]]
    """

    def __init__(self, schema, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, Schema) else Schema.from_config(schema)
        dense = self.schema.dense
        if not dense:
            raise ValueError("NumericFeatures needs a schema with dense features.")
        self.mean = np.array([f.mean for f in dense], "float32")
        self.scale = 1.0 / np.sqrt(np.array([f.variance for f in dense], "float32") + 1e-12)

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs):
        x = ops.stack(
            [ops.cast(ops.reshape(inputs[n], (-1,)), "float32") for n in self.schema.dense_names],
            axis=-1,
        )  # (batch, dense)
        x = (x - self.mean) * self.scale
        return ops.where(ops.isnan(x), ops.zeros_like(x), x)

    def compute_output_spec(self, inputs):
        batch = inputs[self.schema.dense_names[0]].shape[0]
        return keras.KerasTensor((batch, len(self.schema.dense)), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(schema=self.schema.get_config())
        return config
