import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.layers.mlp import MLP
from tfmtl.serialization import register


@register
class SoftmaxGate(Layer):
    """Mixes experts with input-dependent softmax weights.

    `g(x) = softmax(W_g x)` and the output is `sum_i g(x)_i f_i(x)`
    (MMoE, Eq. 7-8; PLE, Eq. 3). With `hidden_units`, `x` first passes an
    MLP (STEM-Net's gates are `[128, 64]` MLPs).

    Args:
        num_experts: int. Number of experts the gate weighs.
        hidden_units: list of int. Hidden ReLU layers before the softmax
            layer. Defaults to `()`.
        use_bias: bool. Adds a bias to `W_g x`; the papers have none.
            Defaults to `False`.
        kernel_initializer: Defaults to `"glorot_uniform"`.

    Call arguments:
        gate_input: `(batch, in)`, the selector's input.
        experts: `(batch, num_experts, units)`, the experts' outputs.

    Output shape: `(batch, units)`. `gate_weights(gate_input)` returns the
    `(batch, num_experts)` weights.

    Example:

    >>> tuple(SoftmaxGate(3)(ops.ones((2, 5)), ops.ones((2, 3, 4))).shape)
    (2, 4)
    """

    def __init__(
        self,
        num_experts,
        use_bias=False,
        kernel_initializer="glorot_uniform",
        hidden_units=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_experts) < 1:
            raise ValueError(
                f"num_experts must be >= 1. Received: num_experts={num_experts}"
            )
        self.num_experts = int(num_experts)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.hidden_units = [int(u) for u in hidden_units]
        self.hidden = (
            MLP(self.hidden_units, **self.sublayer_options("hidden")) if self.hidden_units else None
        )
        self.dense = keras.layers.Dense(
            self.num_experts,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            **self.sublayer_options("gate"),
        )

    def build(self, gate_input_shape, experts_shape=None):
        if self.hidden is not None:
            self.hidden.build(gate_input_shape)
            gate_input_shape = self.hidden.compute_output_shape(gate_input_shape)
        self.dense.build(gate_input_shape)

    def gate_weights(self, gate_input):
        if self.hidden is not None:
            gate_input = self.hidden(gate_input)
        return ops.softmax(self.dense(gate_input), axis=-1)  # (batch, experts)

    def call(self, gate_input, experts):
        weights = self.gate_weights(gate_input)
        # A broadcast product and a sum over the experts: the same function as the einsum
        # "be,beu->bu", which TensorFlow runs as `batch` tiny matrix products, slower forward
        # and backward on CPU (README, Speed).
        return ops.sum(weights[:, :, None] * experts, axis=1)

    def compute_output_shape(self, gate_input_shape, experts_shape):
        return (experts_shape[0], experts_shape[-1])
