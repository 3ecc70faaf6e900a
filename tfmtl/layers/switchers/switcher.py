import keras

from tfmtl.serialization import register


@register
class Switcher(keras.layers.Layer):
    """Base of micro-sharing structures: one tensor in, one tensor per branch out.

    Shared-Bottom, OMoE, MMoE, CGC and PLE are switchers (MFH's word). A
    subclass sets `output_units` and implements `call(inputs)` returning a
    list of `num_branches` tensors of shape `(batch, output_units)`.

    Args:
        num_branches: int. Number of outputs (tasks or child nodes).
    """

    def __init__(self, num_branches, **kwargs):
        super().__init__(**kwargs)
        if int(num_branches) < 1:
            raise ValueError(
                f"num_branches must be >= 1. Received: num_branches={num_branches}"
            )
        self.num_branches = int(num_branches)

    @property
    def output_units(self):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        if input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        return [(input_shape[0], self.output_units)] * self.num_branches

    def get_config(self):
        config = super().get_config()
        config.update(num_branches=self.num_branches)
        return config
