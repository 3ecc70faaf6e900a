"""LazyAdam: Adam's update on the rows a batch touches, nothing on the others."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tfmtl.optimizers import LazyAdam


def lazy_adam_numpy(table, steps, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """Reference: per step, duplicate ids summed, moments and weights moved at those rows only."""
    w, m, v = table.astype("float64"), np.zeros_like(table, "float64"), np.zeros_like(table, "float64")
    for t, (ids, values) in enumerate(steps, start=1):
        g = np.zeros_like(w)
        np.add.at(g, ids, values)
        rows = np.unique(ids)
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w[rows] -= alpha * m[rows] / (np.sqrt(v[rows]) + eps)
    return w


def test_matches_the_numpy_reference_with_duplicates_and_absent_rows():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype("float32")
    steps = [(np.array([1, 3, 1]), rng.normal(size=(3, 3))), (np.array([3, 4]), rng.normal(size=(2, 3))),
             (np.array([0, 1]), rng.normal(size=(2, 3)))]
    table = keras.Variable(start)
    optimizer = LazyAdam(0.01)
    for ids, values in steps:
        grad = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(ids), tf.constant([6, 3]))
        optimizer.apply_gradients([(grad, table)])
    np.testing.assert_allclose(table.numpy(), lazy_adam_numpy(start, steps), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table.numpy()[[2, 5]], start[[2, 5]])  # never in a batch


class DenseAdam(keras.optimizers.Adam):
    """Adam on the dense gradient (duplicate ids summed before the moments)."""

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(tf.convert_to_tensor(gradient), variable, learning_rate)


def test_equals_adam_on_the_dense_gradient_when_every_row_is_in_every_batch():
    """A model whose batches hold every id: LazyAdam and Adam give the same weights.

    Adam on the dense gradient: Keras' own Adam squares an embedding gradient's
    `IndexedSlices` before summing duplicate ids, so its second moment is the sum
    of the per-occurrence squares, not the square of the row's gradient.
    """
    rng = np.random.default_rng(1)
    items = rng.integers(0, 4, 512)
    items[:4] = np.arange(4)
    data = pd.DataFrame({"user": np.tile(np.arange(8), 64).astype(str), "item": items.astype(str),
                         "click": rng.integers(0, 2, 512)})
    schema, tasks = tfmtl.infer_schema(data, labels=["click"])
    weights = {}
    for name, optimizer in (("adam", DenseAdam(0.01)), ("lazy", LazyAdam(0.01))):
        keras.utils.set_random_seed(0)
        model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(8,), tower_units=(4,))
        model.compile(optimizer=optimizer)
        model.fit(data, batch_size=512, epochs=3, verbose=0, shuffle=False)
        weights[name] = [w.numpy() for w in model.weights]
        tables = [v for v in model.trainable_variables if "embeddings" in v.path]
        assert tables
    for a, b in zip(weights["adam"], weights["lazy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_dense_variables_and_amsgrad_take_adams_path():
    rng = np.random.default_rng(2)
    start = rng.normal(size=(3, 2)).astype("float32")
    grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    for amsgrad in (False, True):
        a, b = keras.Variable(start), keras.Variable(start)
        adam, lazy = keras.optimizers.Adam(0.01, amsgrad=amsgrad), LazyAdam(0.01, amsgrad=amsgrad)
        for g in grads:
            adam.apply_gradients([(tf.constant(g), a)])
            lazy.apply_gradients([(tf.constant(g), b)])
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(LazyAdam(0.02)))
    assert isinstance(restored, LazyAdam)
    assert float(restored.learning_rate) == pytest.approx(0.02)
