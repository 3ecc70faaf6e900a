from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class Switcher(Layer):
    """Base of micro-sharing structures: inputs in, one tensor per branch out.

    Shared-Bottom, OMoE, MMoE, CGC, PLE and STEM-Net's layer are switchers
    (MFH's word for the unit of micro sharing); MFH nests them in trees and
    AutoMTL searches over their parts. Every switcher takes the same inputs:

    - one tensor `(batch, in)`: every expert and gate reads it; or
    - a list of `num_branches + 1` tensors: each branch's own view of the
      input (task `k`'s embedding tables in STEM-Net, task `k`'s selected
      fields with MultiSFS), then the shared view. Task-specific parts
      (task `k`'s experts and gate) read view `k`; shared parts (shared
      experts, shared bottoms) read the shared view.

    It returns a list of `num_branches` tensors `(batch, output_units)`,
    plus the shared gate's output last where a subclass has one
    (`shared_output`, a level below the last of PLE).

    Args:
        num_branches: int. Number of outputs (tasks or child nodes).
    """

    def __init__(self, num_branches, **kwargs):
        super().__init__(**kwargs)
        if int(num_branches) < 1:
            raise ValueError(f"num_branches must be >= 1. Received: num_branches={num_branches}")
        self.num_branches = int(num_branches)

    @property
    def output_units(self):
        raise NotImplementedError

    @property
    def num_outputs(self):
        return self.num_branches + int(getattr(self, "shared_output", False))

    def split(self, inputs):
        """`(branch_inputs, shared_input)` of inputs, or of their shapes."""
        if _is_list(inputs):
            inputs = [tuple(i) if _is_shape(i) else i for i in inputs]
            if len(inputs) != self.num_branches + 1:
                raise ValueError(
                    f"{type(self).__name__} takes one tensor or a list of "
                    f"{self.num_branches + 1} (one per branch, then the shared one). "
                    f"Received a list of {len(inputs)}."
                )
            return list(inputs[:-1]), inputs[-1]
        if _is_shape(inputs):
            inputs = tuple(inputs)
        return [inputs] * self.num_branches, inputs

    def gate_weights(self, inputs):
        """Per branch, `(expert names, (batch, experts) gate weights)`; switchers without gates raise."""
        raise NotImplementedError(f"{type(self).__name__} has no gates.")

    def compute_output_shape(self, input_shape):
        _, shared = self.split(input_shape)
        return [(shared[0], self.output_units)] * self.num_outputs


def _is_shape(value):
    return isinstance(value, (list, tuple)) and all(
        v is None or isinstance(v, int) for v in value)


def _is_list(value):
    """A list of tensors or of shapes (not one shape)."""
    return isinstance(value, (list, tuple)) and bool(value) and not _is_shape(value)
