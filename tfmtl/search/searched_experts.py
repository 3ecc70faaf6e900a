import keras
from keras import ops

from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.switchers.registry import register_switcher
from tfmtl.layers.switchers.switcher import Switcher, _is_list
from tfmtl.search.ops import make_expert_op
from tfmtl.serialization import register


@register
class SearchedExperts(Switcher):
    """The experts an AutoMTL search derived, each branch gating over its own selection.

    The input is projected to `units` (the experts' width); expert `i` chains
    the operations `experts[i]` (heterogeneous: each expert its own); branch
    `k` mixes the experts `branch_experts[k]` with a softmax gate on the
    projected input (the gating networks of the retrained model, Sec. 3.4.3).
    An expert no branch selected is not built. Given one tensor, the gates
    read the projected input (as the authors' code); given per-branch inputs
    (see `Switcher`), the experts read the projected shared input and gate
    `k` its branch's input.

    Args:
        num_branches: int. Number of branches (tasks).
        experts: list of lists of str. Each expert's operations
            (`tfmtl.search.ops.EXPERT_OPS`).
        branch_experts: list (one per branch) of lists of expert indices.
        units: int. The experts' width. Defaults to `64`.
        dropout: float. Inside the operations. Defaults to `0.1`.

    Example:

    >>> layer = SearchedExperts(2, [["gating"], ["conv_3", "skip"]], [[0, 1], [1]], units=8)
    >>> [tuple(o.shape) for o in layer(ops.ones((4, 5)))]
    [(4, 8), (4, 8)]
    """

    def __init__(self, num_branches, experts, branch_experts, units=64, dropout=0.1, **kwargs):
        super().__init__(num_branches, **kwargs)
        self.experts = [list(e) for e in experts]
        self.branch_experts = [[int(i) for i in b] for b in branch_experts]
        self.units = int(units)
        self.dropout = float(dropout)
        if len(self.branch_experts) != self.num_branches:
            raise ValueError(f"branch_experts must hold {self.num_branches} lists. Received "
                             f"{len(self.branch_experts)}.")
        for chosen in self.branch_experts:
            if not chosen or any(not 0 <= i < len(self.experts) for i in chosen):
                raise ValueError(f"Each branch needs experts among 0..{len(self.experts) - 1}. "
                                 f"Received: {self.branch_experts}")
        self.used = sorted({i for chosen in self.branch_experts for i in chosen})
        self.projection = keras.layers.Dense(self.units, **self.sublayer_options("projection"))
        self.expert_ops = {
            i: [make_expert_op(op, dropout, **self.sublayer_options(f"expert_{i}_{j}_{op}"))
                for j, op in enumerate(self.experts[i])]
            for i in self.used
        }
        self.gates = [SoftmaxGate(len(chosen), **self.sublayer_options(f"gate_{k}"))
                      if len(chosen) > 1 else None  # one expert: nothing to gate
                      for k, chosen in enumerate(self.branch_experts)]

    @property
    def output_units(self):
        return self.units

    def build(self, input_shape):
        branches, shared = self.split(input_shape)
        self.projection.build(shared)
        for chain in self.expert_ops.values():
            for op in chain:
                op.build((None, self.units))
        per_branch = _is_list(input_shape)
        for gate, shape in zip(self.gates, branches):
            if gate is not None:
                gate.build(shape if per_branch else (None, self.units))

    def call(self, inputs, training=None):
        per_branch = _is_list(inputs)
        branches, shared = self.split(inputs)
        x = self.projection(shared)
        outputs = {}
        for i, chain in self.expert_ops.items():
            h = x
            for op in chain:
                h = op(h, training=training)
            outputs[i] = h
        results = []
        for gate, chosen, branch in zip(self.gates, self.branch_experts, branches):
            if gate is None:
                results.append(outputs[chosen[0]])
                continue
            experts = ops.stack([outputs[i] for i in chosen], axis=1)  # (batch, chosen, units)
            results.append(gate(branch if per_branch else x, experts))
        return results


    def gate_weights(self, inputs):
        """Per branch, `(expert names, (batch, its experts) weights)`."""
        per_branch = _is_list(inputs)
        branches, shared = self.split(inputs)
        x = self.projection(shared)
        found = []
        for gate, chosen, branch in zip(self.gates, self.branch_experts, branches):
            names = [f"expert {i}" for i in chosen]
            if gate is None:
                found.append((names, ops.ones((ops.shape(x)[0], 1))))
            else:
                found.append((names, gate.gate_weights(branch if per_branch else x)))
        return found


register_switcher("automtl", SearchedExperts)
