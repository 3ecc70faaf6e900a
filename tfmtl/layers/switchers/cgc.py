import keras
from keras import ops

from tfmtl.layers.experts import Experts, fusable, run_fused
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.switchers.switcher import Switcher
from tfmtl.serialization import register


@register
class CGC(Switcher):
    """Customized Gate Control: task-specific and shared experts.

    Branch `k` mixes its own experts and the shared ones:
    `g^k(x) = w^k(x) S^k(x)`, `w^k(x) = softmax(W_g^k x)`,
    `S^k(x) = [E_(k,1) .. E_(k,m_k), E_(s,1) .. E_(s,m_s)]` (PLE paper,
    Eq. 2-4). With `shared_output=True` (an extraction network below the
    last level of PLE) a shared gate over every expert adds one more
    output, the shared input of the next level. With per-branch inputs
    (see `Switcher`), branch `k`'s experts and gate read input `k`, the
    shared experts and gate the shared input.

    Args:
        num_branches: int. Number of task branches.
        num_specific_experts: int. Experts per branch. Defaults to `1`.
        num_shared_experts: int. Shared experts. Defaults to `1`.
        expert_units: list of int. Widths of each expert. Defaults to
            `(256, 128)`.
        activation, dropout, batch_norm: as in `Experts`.
        gate_use_bias: bool. Bias in the gates. Defaults to `False`.
        shared_output: bool. Adds the shared gate's output last.
            Defaults to `False`.
        gate_units: list of int. Hidden layers of each gate. Defaults to
            `()` (linear gates, the paper's).

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in CGC(2, 1, 1, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8)]

    References:
        Tang et al., "Progressive Layered Extraction (PLE): A Novel
        Multi-Task Learning (MTL) Model for Personalized Recommendations",
        RecSys 2020.
    """

    def __init__(self, num_branches, num_specific_experts=1, num_shared_experts=1,
                 expert_units=(256, 128), activation="relu", dropout=0.0, batch_norm=False,
                 gate_use_bias=False, shared_output=False, gate_units=(), **kwargs):
        super().__init__(num_branches, **kwargs)
        specific, shared = int(num_specific_experts), int(num_shared_experts)
        if specific < 0 or shared < 0:
            raise ValueError(
                "Expert counts must be >= 0. Received: "
                f"num_specific_experts={num_specific_experts}, "
                f"num_shared_experts={num_shared_experts}"
            )
        if shared == 0 and (specific == 0 or shared_output):
            raise ValueError(
                "CGC needs shared experts for a shared output and at least one expert per "
                f"gate. Received: num_specific_experts={num_specific_experts}, "
                f"num_shared_experts={num_shared_experts}, shared_output={shared_output}"
            )
        self.num_specific_experts = specific
        self.num_shared_experts = shared
        self.expert_units = [int(u) for u in expert_units]
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.batch_norm = bool(batch_norm)
        self.gate_use_bias = bool(gate_use_bias)
        self.shared_output = bool(shared_output)
        self.gate_units = [int(u) for u in gate_units]

        def experts(count, name):
            if not count:
                return None
            return Experts(count, expert_units, activation, dropout, batch_norm,
                           **self.sublayer_options(name))

        def gate(count, name):
            return SoftmaxGate(count, use_bias=gate_use_bias, hidden_units=self.gate_units,
                               **self.sublayer_options(name))

        self.specific_experts = [
            experts(specific, f"specific_experts_{k}") for k in range(self.num_branches)
        ]
        self.shared_experts = experts(shared, "shared_experts")
        self.gates = [gate(specific + shared, f"gate_{k}") for k in range(self.num_branches)]
        self.shared_gate = (
            gate(self.num_branches * specific + shared, "shared_gate") if self.shared_output
            else None
        )

    @property
    def output_units(self):
        return self.expert_units[-1]

    def build(self, input_shape):
        branches, shared = self.split(input_shape)
        for k, shape in enumerate(branches):
            if self.specific_experts[k] is not None:
                self.specific_experts[k].build(shape)
            self.gates[k].build(shape)
        if self.shared_experts is not None:
            self.shared_experts.build(shared)
        if self.shared_gate is not None:
            self.shared_gate.build(shared)

    def call(self, inputs, training=None):
        branches, shared_input = self.split(inputs)
        groups = self.specific_experts + [self.shared_experts]
        if not isinstance(inputs, (list, tuple)) and fusable(groups):
            # One input for every group: one batched product per layer for all of them.
            present = [g for g in groups if g is not None]
            outputs = iter(run_fused(present, inputs, training=training))
            results = [[next(outputs)] if g is not None else [] for g in groups]
            specific, shared = results[:-1], results[-1]
        else:
            shared = (
                [self.shared_experts(shared_input, training=training)]
                if self.shared_experts is not None else []
            )  # [(batch, shared experts, units)]
            specific = [
                [experts(x, training=training)] if experts is not None else []
                for experts, x in zip(self.specific_experts, branches)
            ]
        outputs = [
            gate(x, ops.concatenate(own + shared, axis=1))
            for gate, x, own in zip(self.gates, branches, specific)
        ]
        if self.shared_gate is not None:
            every = [e for own in specific for e in own] + shared
            outputs.append(self.shared_gate(shared_input, ops.concatenate(every, axis=1)))
        return outputs

    def gate_weights(self, inputs):
        """Per branch, `(expert names, (batch, own + shared experts) weights)` on `inputs`."""
        branches, _ = self.split(inputs)
        shared = [f"shared {j}" for j in range(self.num_shared_experts)]
        return [([f"own {j}" for j in range(self.num_specific_experts)] + shared,
                 gate.gate_weights(x)) for gate, x in zip(self.gates, branches)]
