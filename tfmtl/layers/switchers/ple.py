from tfmtl.layers.switchers.cgc import CGC
from tfmtl.layers.switchers.switcher import Switcher
from tfmtl.serialization import register


@register
class PLE(Switcher):
    """Progressive Layered Extraction: stacked CGC extraction networks.

    Level `j` turns each branch's input `g^{k,j-1}` and the shared input
    into `g^{k,j}(x) = w^{k,j}(g^{k,j-1}(x)) S^{k,j}(x)` (PLE paper, Eq. 5);
    every level but the last also has a shared gate over all its experts,
    whose output is the next level's shared input. The first level takes
    one tensor or per-branch inputs (see `Switcher`).

    Args:
        num_branches: int. Number of task branches.
        num_levels: int. Number of extraction levels. Defaults to `2`.
        num_specific_experts, num_shared_experts, activation, dropout,
        batch_norm, gate_use_bias, gate_units: as in `CGC`, for every level.
        expert_units: list of int (every level), or one list per level
            (MFH's tuned PLE: `[[256], [128]]`).

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in PLE(3, 2, 1, 1, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8), (4, 8)]

    References:
        Tang et al., "Progressive Layered Extraction (PLE): A Novel
        Multi-Task Learning (MTL) Model for Personalized Recommendations",
        RecSys 2020.
    """

    def __init__(self, num_branches, num_levels=2, num_specific_experts=1, num_shared_experts=1,
                 expert_units=(256, 128), activation="relu", dropout=0.0, batch_norm=False,
                 gate_use_bias=False, gate_units=(), **kwargs):
        super().__init__(num_branches, **kwargs)
        if int(num_levels) < 1:
            raise ValueError(f"num_levels must be >= 1. Received: num_levels={num_levels}")
        self.num_levels = int(num_levels)
        per_level = bool(expert_units) and isinstance(expert_units[0], (list, tuple))
        if per_level and len(expert_units) != self.num_levels:
            raise ValueError(f"expert_units per level needs {self.num_levels} lists. Received: "
                             f"{expert_units}")
        self.levels = [
            CGC(num_branches, num_specific_experts, num_shared_experts,
                expert_units[level] if per_level else expert_units, activation, dropout,
                batch_norm, gate_use_bias, shared_output=level < self.num_levels - 1,
                gate_units=gate_units, **self.sublayer_options(f"level_{level}"))
            for level in range(self.num_levels)
        ]
        last = self.levels[-1]
        self.num_specific_experts = last.num_specific_experts
        self.num_shared_experts = last.num_shared_experts
        self.expert_units = ([list(level.expert_units) for level in self.levels] if per_level
                             else last.expert_units)
        self.activation = last.activation
        self.dropout = dropout
        self.batch_norm = last.batch_norm
        self.gate_use_bias = last.gate_use_bias
        self.gate_units = last.gate_units

    @property
    def output_units(self):
        return self.levels[-1].output_units

    def build(self, input_shape):
        shape = input_shape
        for level in self.levels:
            level.build(shape)
            shape = level.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for level in self.levels:
            x = level(x, training=training)
        return x

    def gate_weights(self, inputs):
        """The last level's gate weights per branch (see `CGC.gate_weights`)."""
        x = inputs
        for level in self.levels[:-1]:
            x = level(x)
        return self.levels[-1].gate_weights(x)
