from tfmtl.layers.switchers.cgc import CGC
from tfmtl.layers.switchers.switcher import Switcher
from tfmtl.serialization import register


@register
class PLE(Switcher):
    """Progressive Layered Extraction: stacked CGC extraction networks.

    Level `j` turns each branch's input `g^{k,j-1}` and the shared input
    into `g^{k,j}(x) = w^{k,j}(g^{k,j-1}(x)) S^{k,j}(x)` (PLE paper, Eq. 5);
    every level but the last also has a shared gate over all its experts,
    whose output is the next level's shared input.

    Args:
        num_branches: int. Number of task branches.
        num_levels: int. Number of extraction levels. Defaults to `2`.
        num_specific_experts, num_shared_experts, expert_units, activation,
        dropout, batch_norm, gate_use_bias: as in `CGC`, for every level.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in PLE(3, 2, 1, 1, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8), (4, 8)]

    References:
        Tang et al., "Progressive Layered Extraction (PLE): A Novel
        Multi-Task Learning (MTL) Model for Personalized Recommendations",
        RecSys 2020.
    """

    def __init__(
        self,
        num_branches,
        num_levels=2,
        num_specific_experts=1,
        num_shared_experts=1,
        expert_units=(256, 128),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        gate_use_bias=False,
        **kwargs,
    ):
        super().__init__(num_branches, **kwargs)
        if int(num_levels) < 1:
            raise ValueError(f"num_levels must be >= 1. Received: num_levels={num_levels}")
        self.num_levels = int(num_levels)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.gate_use_bias = gate_use_bias
        self.levels = [
            CGC(
                num_branches,
                num_specific_experts,
                num_shared_experts,
                expert_units,
                activation,
                dropout,
                batch_norm,
                gate_use_bias,
                shared_output=level < self.num_levels - 1,
                name=f"level_{level}",
            )
            for level in range(self.num_levels)
        ]

    @property
    def output_units(self):
        return self.expert_units[-1]

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

    def get_config(self):
        config = super().get_config()
        config.update(
            num_levels=self.num_levels,
            num_specific_experts=self.num_specific_experts,
            num_shared_experts=self.num_shared_experts,
            expert_units=self.expert_units,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            gate_use_bias=self.gate_use_bias,
        )
        return config
