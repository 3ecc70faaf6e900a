import keras
from keras import ops

from tfmtl.layers.experts import Experts
from tfmtl.serialization import register


@register
class DecompositionPairs(keras.layers.Layer):
    """FDN's DeComposition Pairs: a task-specific and a task-shared expert each.

    Task `t` has `num_pairs` pairs; pair `(t, m)` applies a task-specific
    expert `f^p_{t,m}` and a task-shared expert `f^s_{t,m}` to the same input.
    The orthogonality constraint adds
    `L_orth = weight * sum_{t,m} ||(f^s_{t,m})^T f^p_{t,m}||_F^2` over the
    batch (FDN, Sec. 3.2) as a loss, reported during `fit` as the metric
    `<name>_orthogonal_loss`; `orthogonal_weight=0` switches it off. With
    `normalize=True` every expert output row is scaled to unit length first
    and the sum is divided by the squared batch size: each pair's term is
    then the mean squared cosine between task-shared and task-specific
    features over all row pairs of the batch, in [0, 1], and the loss cannot
    be lowered by shrinking the features.

    All `2 * num_tasks * num_pairs` experts run as two batched `Experts`
    groups.

    Args:
        num_tasks: int.
        num_pairs: int. Pairs per task. Defaults to `2`.
        units: list of int. Every expert's widths. Defaults to `(128, 64)`.
        orthogonal_weight: float. Defaults to `1.0`.
        normalize: bool. Defaults to `False` (the paper's sum as written).
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

    def __init__(self, num_tasks, num_pairs=2, units=(128, 64), orthogonal_weight=1.0,
                 normalize=False, activation="relu", dropout=0.0, **kwargs):
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
        self.normalize = bool(normalize)
        self.activation = activation
        self.dropout = dropout
        count = self.num_tasks * self.num_pairs
        self.specific = Experts(count, units, activation, dropout, name="specific_experts")
        self.shared = Experts(count, units, activation, dropout, name="shared_experts")
        self.tracker = keras.metrics.Mean(name=f"{self.name}_orthogonal_loss")

    def build(self, input_shape):
        self.specific.build(input_shape)
        self.shared.build(input_shape)

    def orthogonal_loss(self, specific, shared):
        """`sum_{t,m} ||(f^s)^T f^p||_F^2` of the batch, unweighted."""
        if self.normalize:
            shared = shared / (ops.norm(shared, axis=-1, keepdims=True) + 1e-8)
            specific = specific / (ops.norm(specific, axis=-1, keepdims=True) + 1e-8)
        products = ops.einsum("bkd,bke->kde", shared, specific)  # (pairs, units, units)
        loss = ops.sum(ops.square(products))
        if self.normalize:
            batch = ops.cast(ops.shape(shared)[0], loss.dtype)
            loss = loss / ops.maximum(batch * batch, 1.0)
        return loss

    def call(self, inputs, training=None):
        specific = self.specific(inputs, training=training)
        shared = self.shared(inputs, training=training)
        if self.orthogonal_weight:
            loss = self.orthogonal_weight * self.orthogonal_loss(specific, shared)
            self.add_loss(loss)
            if training:
                self.tracker.update_state(loss)
        return specific, shared

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.num_tasks * self.num_pairs, self.units[-1])
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            num_pairs=self.num_pairs,
            units=self.units,
            orthogonal_weight=self.orthogonal_weight,
            normalize=self.normalize,
            activation=self.activation,
            dropout=self.dropout,
        )
        return config
