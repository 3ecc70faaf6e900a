import keras
import tensorflow as tf
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class FieldMask(Layer):
    """MultiSFS's task-by-field mask `M` (T x N), applied to one task's path at a time.

    `E~_t = [m_t1 e_1, ..., m_tN e_N]` (Eq. 5): row `t` scales every field's
    embedding (a dense feature's normalised value) on task `t`'s path, and
    `y^ = [f_1(E~_1), ..., f_T(E~_T)]` (Eq. 6). A model built with
    `zoo.build(..., field_mask=True)` calls this layer on every embedding and
    number it reads; it scales them by row `task` of `mask`. Running the
    model once per task with `task = t` and keeping task `t`'s outputs
    evaluates Eq. 6 for any backbone: where task `t`'s computation reads the
    embeddings (shared experts included) it reads `M_t * E`.

    `mask` and `task` are non-trainable variables; `mask` stays all ones in
    training, so the model trains as the one without the mask.

    Args:
        fields: list of str. The N field names (the schema's features), the
            mask's columns.
        tasks: list of str. The T task names, the mask's rows.

    Call arguments:
        inputs: `(batch, k, dim)` embeddings or `(batch, k)` numbers of k fields.
        names: list of str. The k fields of `inputs`, in order.

    Example:

    >>> mask = FieldMask(["a", "b"], ["click", "like"])
    >>> mask.build()
    >>> _ = mask.mask.assign([[1.0, 0.0], [1.0, 1.0]])
    >>> mask(ops.ones((1, 2, 3)), names=["a", "b"]).numpy()[0].tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """

    def __init__(self, fields, tasks, **kwargs):
        super().__init__(**kwargs)
        self.fields = list(fields)
        self.tasks = list(tasks)
        if not self.fields or not self.tasks:
            raise ValueError(f"FieldMask needs fields and tasks. Received: fields={fields}, "
                             f"tasks={tasks}")
        self.column = {name: i for i, name in enumerate(self.fields)}
        # Root mean square of each field's input (and whether it is a number),
        # recorded by eager calls: `field_saliency` puts numbers on the embeddings' scale.
        self.input_rms = {}

    def build(self, input_shape=None):
        if self.built:
            return
        self.mask = self.add_weight(shape=(len(self.tasks), len(self.fields)), initializer="ones",
                                    trainable=False, name="mask")
        self.task = self.add_weight(shape=(), initializer="zeros", trainable=False, name="task",
                                    dtype="int32")
        self.built = True

    def call(self, inputs, names):
        unknown = [n for n in names if n not in self.column]
        if unknown:
            raise ValueError(f"FieldMask has no fields {unknown}")
        if tf.executing_eagerly():
            axes = (0, 2) if len(inputs.shape) == 3 else (0,)
            rms = ops.sqrt(ops.mean(ops.square(ops.cast(inputs, "float32")), axis=axes))
            for name, value in zip(names, ops.convert_to_numpy(rms)):
                self.input_rms[name] = (float(value), len(inputs.shape) == 2)
        row = ops.take(self.mask, self.task, axis=0)  # (N,)
        scale = ops.cast(ops.take(row, [self.column[n] for n in names]), inputs.dtype)  # (k,)
        if len(inputs.shape) == 3:
            scale = scale[:, None]
        return inputs * scale

    def compute_output_shape(self, input_shape, names=None):
        return input_shape

    def compute_output_spec(self, inputs, names=None):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)
