"""MFH's routing: each row's facet partition, its group's score, node combination."""

import keras
from keras import ops

from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.base import Layer
from tfmtl.mfh.facets import Facet, partition_index
from tfmtl.serialization import register


@register
class PartitionIndex(Layer):
    """Each row's partition: its index into the product of the facets' values.

    Reads the raw facet columns (`Facet.column`) and applies the facets'
    rule (`tfmtl.mfh.partition_index`, the one the data path weighs facet
    tasks' rows by): bucketing by `boundaries` (NaN to the first value) or
    matching `keys` (unknown keys to the first value).

    Args:
        facets: list of `Facet` (or their configs).

    Call: `inputs`, a dict holding every facet column, `(batch,)`.
    Output: `(batch,)` int32.

    Example:

    >>> f = Facet("group", ("new", "old"), "activity", boundaries=(10,))
    >>> PartitionIndex([f])({"activity": ops.array([3.0, 12.0])}).numpy().tolist()
    [0, 1]
    """

    def __init__(self, facets, **kwargs):
        super().__init__(**kwargs)
        self.facets = [f if isinstance(f, Facet) else Facet.from_config(f) for f in facets]
        if not self.facets:
            raise ValueError("PartitionIndex needs at least one facet.")

    def call(self, inputs):
        return partition_index(self.facets, inputs)

    def compute_output_shape(self, input_shape):
        first = input_shape[self.facets[0].column]
        return (first[0],)

    def compute_output_spec(self, inputs):
        first = inputs[self.facets[0].column]
        return keras.KerasTensor((first.shape[0],), dtype="int32")



@register
class RoutedOutput(Layer):
    """Row by row, the output of that row's partition: `out[b] = outputs[index[b]][b]`.

    Call: `(index, outputs)`: `(batch,)` ints and a list of `(batch, 1)`
    outputs, one per partition in index order. Output: `(batch, 1)`.

    Example:

    >>> RoutedOutput()((ops.array([1, 0]), [ops.zeros((2, 1)), ops.ones((2, 1))])).numpy().tolist()
    [[1.0], [0.0]]
    """

    def call(self, inputs):
        index, outputs = inputs
        stacked = ops.concatenate(outputs, axis=-1)  # (batch, partitions)
        index = ops.expand_dims(ops.cast(index, "int32"), -1)
        return ops.take_along_axis(stacked, index, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


@register
class NodeCombiner(Layer):
    """Combines the branches a tree node receives from its parents.

    `"sum"` (MFH's default), `"concat"`, or `"gate"`: a softmax gate on the
    gate input (the model's encoded features) weighs the parents per row.
    One parent passes through unchanged.

    Call: `(gate_input, parents)`, parents a list of `(batch, units)`.

    Example:

    >>> x = [ops.ones((2, 3)), 2 * ops.ones((2, 3))]
    >>> NodeCombiner(2, "sum")((ops.ones((2, 4)), x)).numpy()[0].tolist()
    [3.0, 3.0, 3.0]
    """

    MODES = ("sum", "concat", "gate")

    def __init__(self, num_parents, mode="sum", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}. Received: {mode!r}")
        if int(num_parents) < 1:
            raise ValueError(f"num_parents must be >= 1. Received: {num_parents}")
        self.num_parents = int(num_parents)
        self.mode = mode
        self.gate = SoftmaxGate(self.num_parents, **self.sublayer_options("gate")) if (
            mode == "gate" and self.num_parents > 1) else None

    def build(self, input_shape):
        gate_shape, parent_shapes = input_shape
        if self.gate is not None:
            self.gate.build(gate_shape)

    def call(self, inputs):
        gate_input, parents = inputs
        if len(parents) != self.num_parents:
            raise ValueError(f"Expected {self.num_parents} parents, got {len(parents)}.")
        if self.num_parents == 1:
            return parents[0]
        if self.mode == "sum":
            return ops.sum(ops.stack(parents, axis=0), axis=0)
        if self.mode == "concat":
            return ops.concatenate(parents, axis=-1)
        return self.gate(gate_input, ops.stack(parents, axis=1))

    def compute_output_shape(self, input_shape):
        _, parent_shapes = input_shape
        first = parent_shapes[0]
        if self.mode == "concat":
            return (first[0], sum(s[-1] for s in parent_shapes))
        return tuple(first)
