import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class LabelConstraint(Layer):
    """AITM's behavioural expectation calibrator, as an added loss.

    Adds `alpha * sum_i max(yhat_t(i) - yhat_{t-1}(i), 0)` over the batch
    (AITM paper, Eq. 6): a later step of the conversion funnel should not
    be predicted likelier than the step before it. Returns `current`
    unchanged; the batch's penalty is reported as the metric
    `<name>` during `fit`.

    Args:
        weight: float. `alpha`. Defaults to `0.6`, the authors' setting.

    Call arguments:
        previous: `(batch, 1)`, `yhat_{t-1}`.
        current: `(batch, 1)`, `yhat_t`.

    Example:

    >>> tuple(LabelConstraint()(ops.array([[0.5]]), ops.array([[0.7]])).shape)
    (1, 1)
    """

    def __init__(self, weight=0.6, **kwargs):
        super().__init__(**kwargs)
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0. Received: weight={weight}")
        self.weight = float(weight)
        self.tracker = keras.metrics.Mean(name=f"{self.name}_label_constraint")

    def call(self, previous, current, training=None):
        penalty = self.weight * ops.sum(ops.relu(current - previous))
        self.add_loss(penalty)
        if training:
            self.tracker.update_state(penalty)
        return current

    def compute_output_shape(self, previous_shape, current_shape):
        return current_shape
