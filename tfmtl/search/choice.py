import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.search.ops import make_expert_op, make_interaction
from tfmtl.serialization import register

ALPHA = "alpha"


@register
class ChoiceBlock(Layer):
    """A mixed operation: `B(x) = sum_o softmax(alpha)_o o(x) (+ w_aux x)` (AutoMTL, Sec. 3.4.1).

    The continuous relaxation of one choice among `candidates`. `alpha`
    (one architecture weight per candidate, drawn from `N(0, 1e-3^2)` as in
    DARTS and the authors' code) is trained on validation data by the
    search; `derive()` names the strongest candidate. With `auxiliary_skip`
    an auxiliary skip connection `w_aux * x` is added outside the softmax
    (DARTS-, Sec. 4.1.4); the search lowers `w_aux` (a non-trainable
    variable) from 1 to 0.

    Args:
        candidates: list of str. Operation names (`tfmtl.search.ops`).
        kind: `"interaction"` (on `(batch, F, E)` field embeddings, output
            `(batch, F * E)`) or `"expert"` (`(batch, d)` to `(batch, d)`).
        auxiliary_skip: bool. Defaults to `True`.
        dropout: float. Inside the candidates. Defaults to `0.1`.

    Example:

    >>> block = ChoiceBlock(["gating", "conv_3", "skip"], "expert")
    >>> tuple(block(ops.ones((4, 8))).shape)
    (4, 8)
    """

    def __init__(self, candidates, kind="expert", auxiliary_skip=True, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("interaction", "expert"):
            raise ValueError(f"kind must be 'interaction' or 'expert'. Received: {kind!r}")
        self.candidates = list(candidates)
        if not self.candidates or len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"candidates must be unique names. Received: {candidates}")
        self.kind = kind
        self.auxiliary_skip = bool(auxiliary_skip)
        self.dropout = float(dropout)
        make = make_interaction if kind == "interaction" else make_expert_op
        self.ops = [make(name, dropout, **self.sublayer_options(f"op_{name}"))
                    for name in self.candidates]

    def tie(self, other):
        """Share `other`'s `alpha` (same candidates): the two blocks always choose alike."""
        if other.candidates != self.candidates:
            raise ValueError("Only blocks with the same candidates can share alpha.")
        self.tied = other

    def build(self, input_shape):
        tied = getattr(self, "tied", None)
        if tied is not None:
            self.alpha = tied.alpha
        else:
            # Read in float32 under a mixed policy too: the softmax and alpha's gradient through
            # it in float32 (bfloat16 would round alphas 1e-3 apart to equal softmax values);
            # only the weights that multiply the bfloat16 outputs are rounded.
            self.alpha = self.add_weight(
                shape=(len(self.candidates),), name=ALPHA, autocast=False,
                initializer=keras.initializers.RandomNormal(stddev=1e-3))
        self.aux_weight = self.add_weight(shape=(), initializer="ones", trainable=False,
                                          name="aux_weight")
        for op in self.ops:
            op.build(input_shape)

    def weights_of_candidates(self):
        """`softmax(alpha)`, `(candidates,)`."""
        return ops.softmax(ops.convert_to_tensor(self.alpha))

    def call(self, x, training=None):
        weights = ops.cast(self.weights_of_candidates(), self.compute_dtype)
        outputs = [op(x, training=training) for op in self.ops]
        # The mixture as one (1, O) x (O, batch * width) product: an einsum over the stacked
        # outputs took 7-8x as long forward and backward (12 candidates, 2048 x 64).
        stacked = ops.reshape(ops.stack(outputs, axis=0), (len(outputs), -1))
        mixed = ops.reshape(ops.matmul(weights[None, :], stacked), (-1, outputs[0].shape[-1]))
        if self.auxiliary_skip:
            flat = ops.reshape(x, (-1, x.shape[1] * x.shape[2])) if len(x.shape) == 3 else x
            mixed = mixed + ops.cast(self.aux_weight, mixed.dtype) * flat
        return mixed

    def derive(self):
        """The strongest candidate: `argmax(alpha)` (skip may win)."""
        return self.candidates[int(ops.argmax(self.alpha))]

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3:
            return (input_shape[0], input_shape[1] * input_shape[2])
        return tuple(input_shape)
