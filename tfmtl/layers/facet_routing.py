"""MFH's routing: each row's facet partition, its group's score, node combination."""

import keras
import tensorflow as tf
from keras import ops

from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.schema.facets import Facet
from tfmtl.serialization import register


@register
class PartitionIndex(keras.layers.Layer):
    """Each row's partition: its index into the product of the facets' values.

    Reads the raw facet columns (`Facet.column`) and applies the facets'
    rules exactly as `FacetedTasks.partition_index` does on a DataFrame:
    bucketing by `boundaries` (NaN to the first value) or matching `keys`
    (unknown keys to the first value). String matching uses TensorFlow string
    ops, as the lookups do.

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

    def _facet_index(self, facet, column):
        if facet.boundaries is not None:
            x = tf.cast(column, "float32")
            return tf.add_n([tf.cast(x >= b, "int32") for b in facet.boundaries])
        index = tf.zeros_like(column, dtype="int32")
        for i, key in enumerate(facet.keys):
            key = tf.constant(key, dtype=column.dtype)
            index = tf.where(tf.equal(column, key), tf.constant(i, "int32"), index)
        return index

    def call(self, inputs):
        index = None
        for facet in self.facets:
            column = inputs[facet.column]
            if column.shape.rank == 2:
                column = column[:, 0]
            own = self._facet_index(facet, column)
            index = own if index is None else index * len(facet.values) + own
        return index

    def compute_output_shape(self, input_shape):
        first = input_shape[self.facets[0].column]
        return (first[0],)

    def compute_output_spec(self, inputs):
        first = inputs[self.facets[0].column]
        return keras.KerasTensor((first.shape[0],), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(facets=[f.get_config() for f in self.facets])
        return config


@register
class RoutedOutput(keras.layers.Layer):
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
class NodeCombiner(keras.layers.Layer):
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
        self.gate = SoftmaxGate(self.num_parents, name="gate") if (
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

    def get_config(self):
        config = super().get_config()
        config.update(num_parents=self.num_parents, mode=self.mode)
        return config
