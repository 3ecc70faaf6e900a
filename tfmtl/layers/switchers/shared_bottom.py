from tfmtl.layers.mlp import MLP
from tfmtl.layers.switchers.switcher import Switcher
from tfmtl.serialization import register


@register
class SharedBottom(Switcher):
    """Hard parameter sharing: every branch gets the same `f(x)`.

    `y_k = h^k(f(x))` (Caruana, 1997; MMoE paper Eq. 1): this layer is `f`.
    With per-branch inputs (see `Switcher`), `f` reads the shared one.

    Args:
        num_branches: int. Number of outputs.
        units: list of int. The shared network's widths. Defaults to
            `(256, 128)`.
        activation, dropout, batch_norm: as in `MLP`.

    Example:

    >>> import keras
    >>> [tuple(o.shape) for o in SharedBottom(2, [8])(keras.ops.ones((3, 5)))]
    [(3, 8), (3, 8)]
    """

    def __init__(self, num_branches, units=(256, 128), activation="relu", dropout=0.0,
                 batch_norm=False, **kwargs):
        super().__init__(num_branches, **kwargs)
        self.units = [int(u) for u in units]
        if not self.units:
            raise ValueError("SharedBottom needs at least one layer. Received: units=[]")
        self.bottom = MLP(self.units, activation, dropout, batch_norm,
                          **self.sublayer_options("bottom"))
        self.activation = self.bottom.activation
        self.dropout = dropout
        self.batch_norm = bool(batch_norm)

    @property
    def output_units(self):
        return self.units[-1]

    def build(self, input_shape):
        self.bottom.build(self.split(input_shape)[1])

    def call(self, inputs, training=None):
        shared = self.bottom(self.split(inputs)[1], training=training)
        return [shared] * self.num_branches
