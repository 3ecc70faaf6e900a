import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.layers.experts import Experts
from tfmtl.serialization import register


@register
class DecompositionPairs(Layer):
    """FDN's DeComposition Pairs: a task-specific and a task-shared expert each.

    Task `t` has `num_pairs` pairs; pair `(t, m)` applies a task-specific
    expert `f^p_{t,m}` and a task-shared expert `f^s_{t,m}` to the same input.
    The orthogonality constraint adds `L_orth = weight * sum_{t,m} D(S, P)`
    as a loss, reported during `fit` as the metric `<name>_orthogonal_loss`
    (the weighted value); `orthogonal_weight=0` switches it off. `S`, `P`
    are the `(batch, units)` outputs of the pair's task-shared and
    task-specific experts, and `D` is, by `form`:

    - `"paper"`: FDN's Eq. 2 as written, `||S^T P||_F^2`: the squared
      Frobenius norm of the `units x units` matrix whose entry `(i, j)` is
      the batch sum of shared unit `i` times specific unit `j`. The experts'
      outputs are post-ReLU, so every entry is >= 0 and the loss reaches 0
      only when, on every row, one of the two vectors is all zero; short of
      that it falls by shrinking the features, and it grows with the batch
      and the activations' scale.
    - `"dsn"`: the difference loss of domain separation networks (Bousmalis
      et al., NeurIPS 2016, whose constraint FDN takes; the authors' code):
      each unit centred by its batch mean, each row scaled to unit length,
      then `mean((S~^T P~)^2)` over the `units x units` entries: the mean
      squared correlation-like overlap of the two representations, which
      shrinking the features does not lower.

    All `2 * num_tasks * num_pairs` experts run as two batched `Experts`
    groups.

    Args:
        num_tasks: int.
        num_pairs: int. Pairs per task. Defaults to `2`.
        units: list of int. Every expert's widths. Defaults to `(128, 64)`.
        orthogonal_weight: float. Defaults to `1.0` (the paper's: every loss
            weight is 1).
        form: `"paper"` or `"dsn"`. Defaults to `"dsn"`.
        activation, dropout: as in `Experts`.

    Returns:
        `(specific, shared)`, each `(batch, num_tasks * num_pairs, units[-1])`,
        pair `(t, m)` at index `t * num_pairs + m`.

    Example:

    >>> p, s = DecompositionPairs(2, 2, [8])(ops.ones((3, 5)))
    >>> tuple(p.shape), tuple(s.shape)
    ((3, 4, 8), (3, 4, 8))

    References:
        Zhou, Yu, Luo, Zhang, "Feature Decomposition for Reducing Negative
        Transfer: A Novel Multi-task Learning Method for Recommender System",
        AAAI 2023.
    """

    FORMS = ("paper", "dsn")

    def __init__(self, num_tasks, num_pairs=2, units=(128, 64), orthogonal_weight=1.0,
                 form="dsn", activation="relu", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_tasks) < 1 or int(num_pairs) < 1:
            raise ValueError(
                f"num_tasks and num_pairs must be >= 1. Received: num_tasks={num_tasks}, "
                f"num_pairs={num_pairs}"
            )
        if not orthogonal_weight >= 0:
            raise ValueError(f"orthogonal_weight must be >= 0. Received: {orthogonal_weight}")
        self.num_tasks = int(num_tasks)
        self.num_pairs = int(num_pairs)
        self.units = [int(u) for u in units]
        self.orthogonal_weight = float(orthogonal_weight)
        if form not in self.FORMS:
            raise ValueError(f"form must be one of {self.FORMS}. Received: {form!r}")
        self.form = form
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        count = self.num_tasks * self.num_pairs
        self.specific = Experts(count, units, activation, dropout,
                                **self.sublayer_options("specific_experts"))
        self.shared = Experts(count, units, activation, dropout,
                              **self.sublayer_options("shared_experts"))
        self.tracker = keras.metrics.Mean(name=f"{self.name}_orthogonal_loss")

    def build(self, input_shape):
        self.specific.build(input_shape)
        self.shared.build(input_shape)

    def orthogonal_loss(self, specific, shared):
        """`sum_{t,m} D(S_{t,m}, P_{t,m})` of the batch, unweighted, in float32 (see `form`)."""
        specific, shared = ops.cast(specific, "float32"), ops.cast(shared, "float32")
        if self.form == "dsn":
            specific = specific - ops.mean(specific, axis=0, keepdims=True)
            shared = shared - ops.mean(shared, axis=0, keepdims=True)
            specific = specific / ops.sqrt(ops.maximum(
                ops.sum(ops.square(specific), axis=-1, keepdims=True), 1e-12))
            shared = shared / ops.sqrt(ops.maximum(
                ops.sum(ops.square(shared), axis=-1, keepdims=True), 1e-12))
        products = ops.einsum("bkd,bke->kde", shared, specific)  # (pairs, units, units)
        if self.form == "dsn":
            return ops.sum(ops.mean(ops.square(products), axis=(1, 2)))
        return ops.sum(ops.square(products))

    def call(self, inputs, training=None):
        specific = self.specific(inputs, training=training)
        shared = self.shared(inputs, training=training)
        if self.orthogonal_weight:
            loss = self.orthogonal_weight * self.orthogonal_loss(specific, shared)
            self.add_loss(loss)
            if training is not None:  # fit and evaluate (val_*) report it; not while building
                self.tracker.update_state(loss)
        return specific, shared

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.num_tasks * self.num_pairs, self.units[-1])
        return shape, shape
