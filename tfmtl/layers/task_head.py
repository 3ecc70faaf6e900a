import keras

from tfmtl.schema.task import KINDS
from tfmtl.serialization import register


@register
class TaskHead(keras.layers.Layer):
    """The last layer of a task: `sigmoid(w^T h + b)` or `w^T h + b`.

    Args:
        kind: str. `"binary"` (sigmoid, a probability) or `"regression"`
            (linear).
        bias_initializer: Defaults to `"zeros"`.

    Output shape: `(batch, 1)`.

    Example:

    >>> tuple(TaskHead("binary")(keras.ops.ones((2, 4))).shape)
    (2, 1)
    """

    def __init__(self, kind, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
        self.kind = kind
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dense = keras.layers.Dense(
            1,
            activation="sigmoid" if kind == "binary" else None,
            bias_initializer=self.bias_initializer,
            name="logit",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.dense(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (1,)

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
