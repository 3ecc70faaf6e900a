"""Optimizers: Keras' Adam in one fused kernel per variable, and Adam with row-sparse (lazy)
updates of embedding tables."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("tfmtl")
class Adam(keras.optimizers.Adam):
    """Keras' Adam, each variable updated by one fused kernel.

    Keras 3's Adam updates a variable with about ten element-wise
    operations, each a pass over the variable and its two moments; for the
    embedding tables of a recommender (millions of rows) that is most of a
    training step on CPU. This is the same update, `m <- b1 m + (1 - b1) g`,
    `v <- b2 v + (1 - b2) g^2`, `w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) *
    m / (sqrt(v) + eps)`, in TensorFlow's `ResourceApplyAdam` kernel: one
    pass, XLA-compilable. Learning-rate schedules, weight decay, gradient
    clipping and accumulation, EMA and loss scaling are Keras' own (they act
    outside the update step); under a distribution strategy each replica's
    variables are updated in place by the same kernel. `amsgrad=True` takes
    Keras' update code. An embedding table's gradient (`IndexedSlices`)
    is made dense first, so a row seen twice in a batch has its gradients
    summed before the second moment squares them, as Adam on the dense
    gradient (and PyTorch) does; Keras' Adam squares each occurrence
    before the sum. `MultiTaskModel.compile(optimizer="adam")` uses it.

    Args: as `keras.optimizers.Adam`.

    Example:

    >>> import numpy as np
    >>> w = keras.Variable(np.ones(3, "float32"))
    >>> _ = Adam(0.1).apply_gradients([(tf.constant([1.0, -1.0, 0.0]), w)])
    >>> [round(float(x), 3) for x in w.numpy()]
    [0.9, 1.1, 1.0]
    """

    def update_step(self, gradient, variable, learning_rate):
        # An embedding's `IndexedSlices` made dense: repeated ids summed, then squared.
        gradient = tf.convert_to_tensor(gradient)
        if not self._fusable(variable):
            return super().update_step(gradient, variable, learning_rate)
        self._apply_fused(gradient, variable, learning_rate)

    def _fusable(self, variable):
        return not self.amsgrad and hasattr(variable, "handle")

    def _apply_fused(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=_tensor(self._momentums[index]).handle,
            v=_tensor(self._velocities[index]).handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1,
            beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


@keras.saving.register_keras_serializable("tfmtl")
class LazyAdam(Adam):
    """Adam that updates an embedding table only at the rows of the batch.

    Keras' Adam treats the gradient of an embedding table as dense: every
    step it decays the moments of every row and moves every row by its old
    momentum, although a batch touches a few hundred of a table's rows. The
    lazy Adam of production recommenders (TensorFlow Addons' `LazyAdam`,
    PyTorch's `SparseAdam`) updates the moments and the weights of the rows
    in the batch only (duplicate ids summed first), with the same bias
    correction; dense variables follow Adam exactly. A row that is in every
    batch gets exactly Adam's update; a row that is absent keeps its weights
    and moments until it is seen again (Adam would keep moving it by its
    decaying momentum). Only gradients that arrive as `tf.IndexedSlices`
    (embedding lookups) take the lazy path, the others `Adam`'s fused one;
    `amsgrad=True` falls back to Keras' Adam everywhere.

    Args: as `keras.optimizers.Adam`.

    Example:

    >>> import numpy as np
    >>> table = keras.Variable(np.ones((4, 2), "float32"))
    >>> grad = tf.IndexedSlices(tf.ones((1, 2)), tf.constant([1]), tf.constant([4, 2]))
    >>> _ = LazyAdam(0.1).apply_gradients([(grad, table)])
    >>> [[round(float(x), 3) for x in row] for row in table.numpy()]  # only row 1 moved
    [[1.0, 1.0], [0.9, 0.9], [1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(self, learning_rate=0.001, name="lazy_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position,
                                              tf.shape(rows)[0])
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(_tensor(m), rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(_tensor(v), rows) + (1 - beta_2) * tf.square(values)
        shape = tf.shape(_tensor(variable), out_type=rows.dtype)
        self.assign(m, tf.IndexedSlices(m_rows, rows, shape))
        self.assign(v, tf.IndexedSlices(v_rows, rows, shape))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype))
        self.assign_sub(variable, tf.IndexedSlices(step_rows, rows, shape))


def _tensor(variable):
    """The `tf.Variable` under a Keras variable (the optimizer sees either)."""
    return variable.value if isinstance(variable, keras.Variable) else variable
