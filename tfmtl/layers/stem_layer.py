from keras import ops

from tfmtl.layers.experts import Experts
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.serialization import register
from tfmtl.layers.switchers.switcher import Switcher

GATE_INPUTS = ("concat", "sum")


@register
class STEMLayer(Switcher):
    """STEM-Net's experts with All-Forward Task-specific-Backward gating.

    Shared experts read the shared input `x_s`; task `t`'s experts read
    task `t`'s input `x_t`. Task `t`'s gate weighs *all* experts (shared and
    every task's) from `concat(x_t, x_s)` (or `x_t + x_s`), but the outputs
    of other tasks' experts pass through a stop-gradient in its mixture: in
    the forward pass task `t` sees everything, in the backward pass its loss
    reaches only its own experts, the shared ones and the gate (STEM-Net,
    Sec. 4.2). With `shared_output=True` (a layer below the last, when
    layers are stacked) a shared gate over all experts reads `x_s` and adds
    the next layer's shared input.

    Args:
        num_branches: int. Number of tasks.
        num_shared_experts: int. Defaults to `8`, the paper's.
        num_specific_experts: int. Experts per task. Defaults to `1`.
        expert_units: list of int. Defaults to `(512, 512, 512)`.
        gate_units: list of int. Hidden layers of each gate. Defaults to
            `(128, 64)`.
        gate_input: `"concat"` (the paper's best) or `"sum"`.
        stop_gradient: bool. `False` turns AFTB off (the ablation).
            Defaults to `True`.
        shared_output: bool. Adds the shared gate's output last.
        activation, dropout, batch_norm: as in `Experts`.

    Call arguments:
        inputs: list of `num_branches + 1` tensors `(batch, in)`: each
            task's input, then the shared input.

    Example:

    >>> x = [ops.ones((4, 6))] * 3
    >>> [tuple(o.shape) for o in STEMLayer(2, 2, 1, [8], [4])(x)]
    [(4, 8), (4, 8)]

    References:
        Su et al., "STEM: Unleashing the Power of Embeddings for Multi-task
        Recommendation", AAAI 2024.
    """

    def __init__(
        self,
        num_branches,
        num_shared_experts=8,
        num_specific_experts=1,
        expert_units=(512, 512, 512),
        gate_units=(128, 64),
        gate_input="concat",
        stop_gradient=True,
        shared_output=False,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        **kwargs,
    ):
        super().__init__(num_branches, **kwargs)
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"gate_input must be one of {GATE_INPUTS}. Received: {gate_input!r}")
        if int(num_shared_experts) < 1 or int(num_specific_experts) < 1:
            raise ValueError(
                "STEMLayer needs at least one shared and one specific expert. Received: "
                f"num_shared_experts={num_shared_experts}, num_specific_experts={num_specific_experts}"
            )
        self.num_shared_experts = int(num_shared_experts)
        self.num_specific_experts = int(num_specific_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.gate_units = [int(u) for u in gate_units]
        self.gate_input = gate_input
        self.stop_gradient = bool(stop_gradient)
        self.shared_output = bool(shared_output)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        total = self.num_branches * self.num_specific_experts + self.num_shared_experts
        self.specific_experts = [
            Experts(self.num_specific_experts, expert_units, activation, dropout, batch_norm,
                    name=f"specific_experts_{t}")
            for t in range(self.num_branches)
        ]
        self.shared_experts = Experts(
            self.num_shared_experts, expert_units, activation, dropout, batch_norm, name="shared_experts"
        )
        self.gates = [
            SoftmaxGate(total, hidden_units=self.gate_units, name=f"gate_{t}")
            for t in range(self.num_branches)
        ]
        self.shared_gate = (
            SoftmaxGate(total, hidden_units=self.gate_units, name="shared_gate")
            if self.shared_output else None
        )

    @property
    def output_units(self):
        return self.expert_units[-1]

    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != self.num_branches + 1:
            raise ValueError(
                f"STEMLayer takes {self.num_branches + 1} inputs (one per task, then the shared one)."
            )
        return list(inputs)

    def _gate_input(self, own, shared):
        if self.gate_input == "sum":
            return own + shared
        return ops.concatenate([own, shared], axis=-1)

    def build(self, input_shape):
        shapes = self._check(input_shape)
        for t in range(self.num_branches):
            self.specific_experts[t].build(shapes[t])
            gate_shape = tuple(shapes[t][:-1]) + (
                shapes[t][-1] + (shapes[-1][-1] if self.gate_input == "concat" else 0),)
            self.gates[t].build(gate_shape)
        self.shared_experts.build(shapes[-1])
        if self.shared_gate is not None:
            self.shared_gate.build(shapes[-1])

    def call(self, inputs, training=None):
        inputs = self._check(inputs)
        shared_input = inputs[-1]
        specific = [e(x, training=training) for e, x in zip(self.specific_experts, inputs)]
        shared = self.shared_experts(shared_input, training=training)  # (batch, shared, units)
        outputs = []
        for t in range(self.num_branches):
            experts = [
                e if s == t or not self.stop_gradient else ops.stop_gradient(e)
                for s, e in enumerate(specific)
            ]
            experts = ops.concatenate(experts + [shared], axis=1)  # (batch, all experts, units)
            outputs.append(self.gates[t](self._gate_input(inputs[t], shared_input), experts))
        if self.shared_gate is not None:
            outputs.append(self.shared_gate(shared_input, ops.concatenate(specific + [shared], axis=1)))
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = self._check(input_shape)
        count = self.num_branches + int(self.shared_output)
        return [(shapes[-1][0], self.output_units)] * count

    def get_config(self):
        config = super().get_config()
        config.update(
            num_shared_experts=self.num_shared_experts,
            num_specific_experts=self.num_specific_experts,
            expert_units=self.expert_units,
            gate_units=self.gate_units,
            gate_input=self.gate_input,
            stop_gradient=self.stop_gradient,
            shared_output=self.shared_output,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
        )
        return config
