import math

import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class AdaptiveInformationTransfer(Layer):
    """AITM's AIT module: attention over the current and transferred vectors.

    `z_t = sum_{u in {p_{t-1}, q_t}} w_u h1(u)`,
    `w_u = softmax_u(<h2(u), h3(u)> / sqrt(k))`, where `q_t` is task `t`'s
    tower output, `p_{t-1}` the information transferred from task `t-1`,
    and `h1, h2, h3` are bias-free linear maps to `k` units (AITM paper,
    Eq. 2-4).

    Args:
        units: int or `None`. `k`; defaults to the inputs' width.

    Call arguments:
        current: `(batch, d)`, `q_t`.
        transferred: `(batch, d)`, `p_{t-1}`.

    Example:

    >>> tuple(AdaptiveInformationTransfer()(ops.ones((2, 4)), ops.ones((2, 4))).shape)
    (2, 4)

    References:
        Xi et al., "Modeling the Sequential Dependence among Audience
        Multi-step Conversions with Multi-task Learning in Targeted Display
        Advertising", KDD 2021.
    """

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        if units is not None and int(units) < 1:
            raise ValueError(f"units must be >= 1. Received: units={units}")
        self.units = None if units is None else int(units)

    def build(self, current_shape, transferred_shape=None):
        units = self.units or current_shape[-1]
        self.value = keras.layers.Dense(units, use_bias=False, **self.sublayer_options("value"))
        self.query = keras.layers.Dense(units, use_bias=False, **self.sublayer_options("query"))
        self.key = keras.layers.Dense(units, use_bias=False, **self.sublayer_options("key"))
        for layer in (self.value, self.query, self.key):
            layer.build(current_shape)
        self.scale = 1.0 / math.sqrt(units)

    def call(self, current, transferred):
        u = ops.stack([current, transferred], axis=1)  # (batch, 2, d)
        scores = ops.sum(self.query(u) * self.key(u), axis=-1) * self.scale
        weights = ops.softmax(scores, axis=1)  # (batch, 2)
        return ops.sum(weights[..., None] * self.value(u), axis=1)

    def compute_output_shape(self, current_shape, transferred_shape=None):
        return (current_shape[0], self.units or current_shape[-1])
