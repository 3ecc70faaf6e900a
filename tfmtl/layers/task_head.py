import keras

from tfmtl.layers.base import Layer
from tfmtl.schema.task import KINDS
from tfmtl.serialization import register


@register
class TaskHead(Layer):
    """The last layer of a task: `sigmoid(w^T h + b)` or `w^T h + b`.

    Under a mixed precision policy (`mixed_float16`, `mixed_bfloat16`) the
    head computes in float32, so every output, loss and metric is float32.

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
            dtype=_float32_under_mixed(self.dtype_policy),
            name="logit",
        )

    @classmethod
    def for_task(cls, task, **kwargs):
        """The head of `task`: its kind, and its `initial_bias` when it has one."""
        if task.initial_bias is not None:
            kwargs.setdefault("bias_initializer",
                              keras.initializers.Constant(task.initial_bias))
        return cls(task.kind, **kwargs)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.dense(inputs)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape)[:-1] + (1,), dtype=self.dense.compute_dtype)


def _float32_under_mixed(policy):
    if policy.compute_dtype in ("float16", "bfloat16"):
        return "float32"
    return policy
