from keras import ops

from tfmtl.layers.experts import Experts
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
    output, the shared input of the next level.

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

    Call arguments:
        inputs: one tensor (every expert and gate reads it), or a list of
            `num_branches + 1` tensors: each branch's input, then the
            shared input.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in CGC(2, 1, 1, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8)]

    References:
        Tang et al., "Progressive Layered Extraction (PLE): A Novel
        Multi-Task Learning (MTL) Model for Personalized Recommendations",
        RecSys 2020.
    """

    def __init__(
        self,
        num_branches,
        num_specific_experts=1,
        num_shared_experts=1,
        expert_units=(256, 128),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        gate_use_bias=False,
        shared_output=False,
        **kwargs,
    ):
        super().__init__(num_branches, **kwargs)
        if int(num_specific_experts) < 0 or int(num_shared_experts) < 0:
            raise ValueError(
                "Expert counts must be >= 0. Received: "
                f"num_specific_experts={num_specific_experts}, "
                f"num_shared_experts={num_shared_experts}"
            )
        if int(num_shared_experts) == 0 and (
            int(num_specific_experts) == 0 or shared_output
        ):
            raise ValueError(
                "CGC needs shared experts for a shared output and at least "
                "one expert per gate. Received: "
                f"num_specific_experts={num_specific_experts}, "
                f"num_shared_experts={num_shared_experts}, "
                f"shared_output={shared_output}"
            )
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.gate_use_bias = gate_use_bias
        self.shared_output = bool(shared_output)

        def experts(count, name):
            return Experts(
                count, expert_units, activation, dropout, batch_norm, name=name
            ) if count else None

        self.specific_experts = [
            experts(self.num_specific_experts, f"specific_experts_{k}")
            for k in range(self.num_branches)
        ]
        self.shared_experts = experts(self.num_shared_experts, "shared_experts")
        self.gates = [
            SoftmaxGate(
                self.num_specific_experts + self.num_shared_experts,
                use_bias=gate_use_bias,
                name=f"gate_{k}",
            )
            for k in range(self.num_branches)
        ]
        self.shared_gate = (
            SoftmaxGate(
                self.num_branches * self.num_specific_experts + self.num_shared_experts,
                use_bias=gate_use_bias,
                name="shared_gate",
            )
            if self.shared_output
            else None
        )

    @property
    def output_units(self):
        return self.expert_units[-1]

    def _split(self, inputs):
        # A list holds one input per branch plus the shared one; anything
        # else (a tensor, or one shape tuple) is the input of every expert.
        if isinstance(inputs, list):
            if len(inputs) != self.num_branches + 1:
                raise ValueError(
                    f"CGC takes one tensor or {self.num_branches + 1} tensors "
                    f"(one per branch, then the shared one). Received "
                    f"{len(inputs)} tensors."
                )
            return list(inputs[:-1]), inputs[-1]
        return [inputs] * self.num_branches, inputs

    def build(self, input_shape):
        branch_shapes, shared_shape = self._split(_shapes(input_shape))
        for k in range(self.num_branches):
            if self.specific_experts[k] is not None:
                self.specific_experts[k].build(branch_shapes[k])
            self.gates[k].build(branch_shapes[k])
        if self.shared_experts is not None:
            self.shared_experts.build(shared_shape)
        if self.shared_gate is not None:
            self.shared_gate.build(shared_shape)

    def call(self, inputs, training=None):
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        branch_inputs, shared_input = self._split(inputs)
        shared = (
            [self.shared_experts(shared_input, training=training)]
            if self.shared_experts is not None
            else []
        )  # [(batch, shared experts, units)]
        specific = [
            [experts(x, training=training)] if experts is not None else []
            for experts, x in zip(self.specific_experts, branch_inputs)
        ]
        outputs = [
            gate(x, ops.concatenate(own + shared, axis=1))
            for gate, x, own in zip(self.gates, branch_inputs, specific)
        ]
        if self.shared_gate is not None:
            every = [e for own in specific for e in own] + shared
            outputs.append(self.shared_gate(shared_input, ops.concatenate(every, axis=1)))
        return outputs

    def compute_output_shape(self, input_shape):
        _, shared_shape = self._split(_shapes(input_shape))
        count = self.num_branches + int(self.shared_output)
        return [(shared_shape[0], self.output_units)] * count

    def get_config(self):
        config = super().get_config()
        config.update(
            num_specific_experts=self.num_specific_experts,
            num_shared_experts=self.num_shared_experts,
            expert_units=self.expert_units,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            gate_use_bias=self.gate_use_bias,
            shared_output=self.shared_output,
        )
        return config


def _shapes(input_shape):
    """A list of shapes for several inputs, one tuple for one input."""
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return [tuple(s) for s in input_shape]
    return tuple(input_shape)
