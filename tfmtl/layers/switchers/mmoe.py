from tfmtl.layers.experts import Experts
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.switchers.switcher import Switcher
from tfmtl.serialization import register


@register
class MMoE(Switcher):
    """Multi-gate Mixture-of-Experts: one softmax gate per branch.

    `f^k(x) = sum_i g^k(x)_i f_i(x)`, `g^k(x) = softmax(W_gk x)`
    (Ma et al., KDD 2018, Eq. 7-8). With per-branch inputs (see
    `Switcher`), the experts read the shared input and gate `k` reads
    branch `k`'s.

    Args:
        num_branches: int. Number of outputs (gates).
        num_experts: int. Number of shared experts. Defaults to `8`, the
            paper's synthetic-data setting.
        expert_units: list of int. Widths of each expert. Defaults to
            `(256, 128)`.
        activation, dropout, batch_norm: as in `Experts`.
        gate_use_bias: bool. Bias in the gates. Defaults to `False`.
        gate_units: list of int. Hidden layers of each gate (an MLP gate,
            as STEM-Net's `[128, 64]`). Defaults to `()`: the paper's linear
            gate.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in MMoE(2, 3, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8)]

    References:
        Ma et al., "Modeling Task Relationships in Multi-task Learning with
        Multi-gate Mixture-of-Experts", KDD 2018.
    """

    def __init__(self, num_branches, num_experts=8, expert_units=(256, 128), activation="relu",
                 dropout=0.0, batch_norm=False, gate_use_bias=False, gate_units=(), **kwargs):
        super().__init__(num_branches, **kwargs)
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.experts = Experts(num_experts, expert_units, activation, dropout, batch_norm,
                               **self.sublayer_options("experts"))
        self.activation = self.experts.activation
        self.dropout = dropout
        self.batch_norm = bool(batch_norm)
        self.gate_use_bias = bool(gate_use_bias)
        self.gate_units = [int(u) for u in gate_units]
        self.gates = [
            SoftmaxGate(num_experts, use_bias=gate_use_bias, hidden_units=self.gate_units,
                        **self.sublayer_options(f"gate_{k}"))
            for k in range(self._num_gates())
        ]

    def _num_gates(self):
        return self.num_branches

    @property
    def output_units(self):
        return self.expert_units[-1]

    def build(self, input_shape):
        branches, shared = self.split(input_shape)
        self.experts.build(shared)
        for gate, shape in zip(self.gates, branches):
            gate.build(shape)

    def call(self, inputs, training=None):
        branches, shared = self.split(inputs)
        experts = self.experts(shared, training=training)  # (batch, experts, units)
        return [gate(x, experts) for gate, x in zip(self.gates, branches)]

    def gate_weights(self, inputs):
        """Per branch, `(expert names, (batch, experts) gate weights)` on `inputs`."""
        branches, _ = self.split(inputs)
        names = [f"expert {i}" for i in range(self.num_experts)]
        return [(names, gate.gate_weights(x)) for gate, x in zip(self.gates, branches)]
