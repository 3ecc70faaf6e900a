from tfmtl.layers.switchers.mmoe import MMoE
from tfmtl.serialization import register


@register
class OMoE(MMoE):
    """One-gate Mixture-of-Experts: every branch gets the same mixture.

    `f(x) = sum_i g(x)_i f_i(x)`, `g(x) = softmax(W_g x)` (MMoE paper,
    Eq. 5, the "OMoE" baseline). Arguments as in `MMoE`; there is one gate
    whatever `num_branches` is.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in OMoE(2, 3, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8)]
    """

    def _num_gates(self):
        return 1

    def call(self, inputs, training=None):
        experts = self.experts(inputs, training=training)
        return [self.gates[0](inputs, experts)] * self.num_branches
