import keras
from keras import ops

from tfmtl.layers.experts import Experts
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.serialization import register
from tfmtl.layers.switchers.switcher import Switcher

GATE_INPUTS = ("concat", "sum", "task", "shared")


@register
class STEMLayer(Switcher):
    """STEM-Net's experts with All-Forward Task-specific-Backward gating.

    Shared experts read the shared input `x_s`; task `t`'s experts read
    task `t`'s input `x_t`. Task `t`'s gate weighs *all* experts (shared and
    every task's) from `concat(x_t, x_s)` (or `x_t + x_s`, `x_t`, `x_s`: the
    inputs of the paper's Table 6 and the authors' code), but the outputs
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
        gate_input: what task `t`'s gate reads: `"concat"` (default,
            `concat(x_t, x_s)`, the paper's best), `"sum"` (`x_t + x_s`, the
            authors' code), `"task"` (`x_t`) or `"shared"` (`x_s`).
        stop_gradient: bool. `False` turns AFTB off (the ablation).
            Defaults to `True`.
        shared_output: bool. Adds the shared gate's output last.
        activation, dropout, batch_norm: as in `Experts`.

    Call arguments:
        inputs: a list of `num_branches + 1` tensors `(batch, in)`: each
            task's input (its embedding tables), then the shared input; or
            one tensor for all (see `Switcher`).

    Example:

    >>> x = [ops.ones((4, 6))] * 3
    >>> [tuple(o.shape) for o in STEMLayer(2, 2, 1, [8], [4])(x)]
    [(4, 8), (4, 8)]

    References:
        Su et al., "STEM: Unleashing the Power of Embeddings for Multi-task
        Recommendation", AAAI 2024.
    """

    def __init__(self, num_branches, num_shared_experts=8, num_specific_experts=1,
                 expert_units=(512, 512, 512), gate_units=(128, 64), gate_input="concat",
                 stop_gradient=True, shared_output=False, activation="relu", dropout=0.0,
                 batch_norm=False, **kwargs):
        super().__init__(num_branches, **kwargs)
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"gate_input must be one of {GATE_INPUTS}. Received: {gate_input!r}")
        if int(num_shared_experts) < 1 or int(num_specific_experts) < 1:
            raise ValueError(
                "STEMLayer needs at least one shared and one specific expert. Received: "
                f"num_shared_experts={num_shared_experts}, "
                f"num_specific_experts={num_specific_experts}"
            )
        self.num_shared_experts = int(num_shared_experts)
        self.num_specific_experts = int(num_specific_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.gate_units = [int(u) for u in gate_units]
        self.gate_input = gate_input
        self.stop_gradient = bool(stop_gradient)
        self.shared_output = bool(shared_output)
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.batch_norm = bool(batch_norm)
        total = self.num_branches * self.num_specific_experts + self.num_shared_experts

        def experts(count, name):
            return Experts(count, expert_units, activation, dropout, batch_norm,
                           **self.sublayer_options(name))

        def gate(name):
            return SoftmaxGate(total, hidden_units=self.gate_units, **self.sublayer_options(name))

        self.specific_experts = [
            experts(self.num_specific_experts, f"specific_experts_{t}")
            for t in range(self.num_branches)
        ]
        self.shared_experts = experts(self.num_shared_experts, "shared_experts")
        self.gates = [gate(f"gate_{t}") for t in range(self.num_branches)]
        self.shared_gate = gate("shared_gate") if self.shared_output else None

    @property
    def output_units(self):
        return self.expert_units[-1]

    def _gate_input(self, own, shared):
        if self.gate_input == "sum":
            return own + shared
        if self.gate_input == "task":
            return own
        if self.gate_input == "shared":
            return shared
        return ops.concatenate([own, shared], axis=-1)

    def build(self, input_shape):
        branches, shared = self.split(input_shape)
        for t, shape in enumerate(branches):
            self.specific_experts[t].build(shape)
            width = {"concat": shape[-1] + shared[-1], "shared": shared[-1]}.get(
                self.gate_input, shape[-1])
            self.gates[t].build(tuple(shape[:-1]) + (width,))
        self.shared_experts.build(shared)
        if self.shared_gate is not None:
            self.shared_gate.build(shared)

    def call(self, inputs, training=None):
        branches, shared_input = self.split(inputs)
        specific = [e(x, training=training) for e, x in zip(self.specific_experts, branches)]
        shared = self.shared_experts(shared_input, training=training)  # (batch, shared, units)
        outputs = []
        for t in range(self.num_branches):
            experts = [
                e if s == t or not self.stop_gradient else ops.stop_gradient(e)
                for s, e in enumerate(specific)
            ]
            experts = ops.concatenate(experts + [shared], axis=1)  # (batch, all experts, units)
            outputs.append(self.gates[t](self._gate_input(branches[t], shared_input), experts))
        if self.shared_gate is not None:
            every = ops.concatenate(specific + [shared], axis=1)
            outputs.append(self.shared_gate(shared_input, every))
        return outputs

    def gate_weights(self, inputs):
        """Per task, `(expert names, (batch, all experts) weights)`: every task's, then the shared."""
        branches, shared = self.split(inputs)
        names = [f"task {t} expert {j}" for t in range(self.num_branches)
                 for j in range(self.num_specific_experts)]
        names += [f"shared {j}" for j in range(self.num_shared_experts)]
        return [(names, gate.gate_weights(self._gate_input(x, shared)))
                for gate, x in zip(self.gates, branches)]
