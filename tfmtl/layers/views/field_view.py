import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class FieldView(Layer):
    """One task's (or the shared part's) view of the fields: the chosen fields only.

    Takes the `(batch, fields, dim)` embeddings and the `(batch, dense)`
    normalised numbers of a schema and returns the flat concatenation of the
    chosen fields' embeddings and numbers, in schema order. MultiSFS's
    selected models read their inputs through one view per task and one for
    the shared experts (Sec. 3.4).

    Args:
        field_names: list of str. The categorical fields of the embeddings, in order.
        dense_names: list of str. The dense features of the numbers, in order.
        chosen: list of str. The fields and dense features this view keeps.

    Call arguments:
        inputs: `[fields, dense]`, or the one of them the schema has.

    Example:

    >>> view = FieldView(["a", "b"], ["p"], chosen=["b", "p"])
    >>> tuple(view([ops.ones((2, 2, 3)), ops.zeros((2, 1))]).shape)
    (2, 4)
    """

    def __init__(self, field_names, dense_names, chosen, **kwargs):
        super().__init__(**kwargs)
        self.field_names = list(field_names)
        self.dense_names = list(dense_names)
        self.chosen = list(chosen)
        unknown = sorted(set(self.chosen) - set(self.field_names) - set(self.dense_names))
        if unknown or not self.chosen:
            raise ValueError(f"chosen must be a non-empty list of the fields "
                             f"{self.field_names + self.dense_names}. Received: {chosen}")
        keep = set(self.chosen)
        self.field_index = [i for i, n in enumerate(self.field_names) if n in keep]
        self.dense_index = [i for i, n in enumerate(self.dense_names) if n in keep]

    def _split(self, inputs):
        """`(fields, dense)` from a list of tensors or shapes (by rank)."""
        if _is_shape(inputs) or hasattr(inputs, "shape"):
            inputs = [inputs]
        fields = dense = None
        for x in inputs:
            if len(x.shape if hasattr(x, "shape") else x) == 3:
                fields = x
            else:
                dense = x
        return fields, dense

    def call(self, inputs):
        fields, dense = self._split(inputs)
        parts = []
        if self.field_index:
            picked = ops.take(fields, self.field_index, axis=1)  # (batch, chosen fields, dim)
            parts.append(ops.reshape(picked, (-1, len(self.field_index) * picked.shape[-1])))
        if self.dense_index:
            parts.append(ops.take(ops.cast(dense, self.compute_dtype), self.dense_index, axis=1))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        fields, dense = self._split(input_shape)
        width = len(self.field_index) * (fields[-1] if self.field_index else 0)
        batch = fields[0] if fields is not None else dense[0]
        return (batch, width + len(self.dense_index))


def _is_shape(value):
    return isinstance(value, (list, tuple)) and all(v is None or isinstance(v, int) for v in value)
