from tfmtl.layers.switchers.mmoe import MMoE
from tfmtl.serialization import register


@register
class OMoE(MMoE):
    """One-gate Mixture-of-Experts: every branch gets the same mixture.

    `f(x) = sum_i g(x)_i f_i(x)`, `g(x) = softmax(W_g x)` (MMoE paper,
    Eq. 5, the "OMoE" baseline). Arguments as in `MMoE`; there is one gate
    whatever `num_branches` is, and it reads the shared input.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in OMoE(2, 3, [8])(keras.ops.ones((4, 5)))]
    [(4, 8), (4, 8)]
    """

    def _num_gates(self):
        return 1

    def build(self, input_shape):
        shared = self.split(input_shape)[1]
        self.experts.build(shared)
        self.gates[0].build(shared)

    def call(self, inputs, training=None):
        shared = self.split(inputs)[1]
        experts = self.experts(shared, training=training)
        return [self.gates[0](shared, experts)] * self.num_branches

    def gate_weights(self, inputs):
        shared = self.split(inputs)[1]
        names = [f"expert {i}" for i in range(self.num_experts)]
        return [(names, self.gates[0].gate_weights(shared))] * self.num_branches
