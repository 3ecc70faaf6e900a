import keras
import numpy as np
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.schema.schema import Schema
from tfmtl.serialization import register

# Below this variance (relative to the mean's square when it is larger than 1)
# a feature counts as constant: it is centred but not scaled.
MIN_VARIANCE = 1e-12


@register
class NumericFeatures(Layer):
    """Stacks and normalises the dense features of a schema.

    Each feature becomes `(x - mean) / sqrt(variance)` with the schema's
    statistics. A missing or non-finite value (NaN, inf, -inf) becomes 0,
    the mean: an `inf` in a request scores like a missing value instead of
    turning every score to NaN. A feature whose variance is (nearly) zero
    (constant in the training data) is only centred (`x - mean`): dividing by
    `sqrt(1e-12)` would turn a change of 0.001 at serving time into 1000
    standard deviations.

    Args:
        schema: `Schema` or its config; its dense features are used.

    Output shape: `(batch, dense features)`.

    Example:

    >>> from tfmtl.schema import DenseFeature, Schema
    >>> layer = NumericFeatures(Schema([DenseFeature("p", mean=1.0, variance=4.0)]))
    >>> layer({"p": np.array([3.0, np.nan, np.inf], "float32")}).numpy().tolist()
    [[1.0], [0.0], [0.0]]
    """

    def __init__(self, schema, **kwargs):
        super().__init__(**kwargs)
        self.schema = Schema.of(schema)
        dense = self.schema.dense
        if not dense:
            raise ValueError("NumericFeatures needs a schema with dense features.")
        self.mean = np.array([f.mean for f in dense], "float32")
        variance = np.array([f.variance for f in dense], "float64")
        constant = variance <= MIN_VARIANCE * np.maximum(1.0, np.array([f.mean for f in dense]) ** 2)
        self.scale = np.where(constant, 1.0, 1.0 / np.sqrt(np.maximum(variance, 1e-300))).astype(
            "float32")

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs):
        x = ops.stack(
            [ops.cast(ops.reshape(inputs[n], (-1,)), "float32") for n in self.schema.dense_names],
            axis=-1,
        )  # (batch, dense)
        x = ops.where(ops.isfinite(x), x, self.mean)  # missing, inf: the mean
        return (x - self.mean) * self.scale

    def compute_output_spec(self, inputs):
        batch = inputs[self.schema.dense_names[0]].shape[0]
        return keras.KerasTensor((batch, len(self.schema.dense)), dtype="float32")
