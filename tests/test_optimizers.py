"""Adam: Keras' update in one fused kernel. LazyAdam: Adam's update on the rows a batch
touches, nothing on the others."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tfmtl.models.multi_task_model import MultiTaskModel
from tfmtl.optimizers import Adam, LazyAdam


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
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(LazyAdam(0.02)))
    assert isinstance(restored, LazyAdam)
    assert float(restored.learning_rate) == pytest.approx(0.02)


def adam_numpy(start, gradients, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """Adam on dense gradients, in float64."""
    w, m, v = start.astype("float64"), np.zeros(start.shape), np.zeros(start.shape)
    for t, g in enumerate(gradients, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("compiled", ["eager", "graph", "xla"])
def test_adam_matches_numpy_and_keras_adam(compiled):
    rng = np.random.default_rng(3)
    start = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(4)]
    ours, theirs = [keras.Variable(w) for w in start], [keras.Variable(w) for w in start]
    adam, reference = Adam(0.01), keras.optimizers.Adam(0.01)

    def step(g):
        adam.apply_gradients(zip(g, ours))

    if compiled != "eager":
        adam.build(ours)
        step = tf.function(step, jit_compile=compiled == "xla")
        graph = step.get_concrete_function([tf.TensorSpec(w.shape) for w in start]).graph
        assert "ResourceApplyAdam" in {op.type for op in graph.get_operations()}
    for g in grads:
        step([tf.constant(x) for x in g])
        reference.apply_gradients(zip([tf.constant(x) for x in g], theirs))
    for k, w in enumerate(start):
        expected = adam_numpy(w, [g[k] for g in grads])
        np.testing.assert_allclose(ours[k].numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].numpy(), rtol=1e-5, atol=1e-6)
    assert int(adam.iterations) == 4


def test_adam_keeps_keras_schedules_clipping_and_weight_decay():
    rng = np.random.default_rng(4)
    start = rng.normal(size=(4, 2)).astype("float32")
    grads = [rng.normal(size=(4, 2)).astype("float32") * 5 for _ in range(5)]
    options = dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.5),
                   clipnorm=1.0, weight_decay=0.1)
    a, b = keras.Variable(start), keras.Variable(start)
    ours, theirs = Adam(**options), keras.optimizers.Adam(**options)
    for g in grads:
        ours.apply_gradients([(tf.constant(g), a)])
        theirs.apply_gradients([(tf.constant(g), b)])
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.numpy(), adam_numpy(start, grads, lr=0.05), atol=1e-3)


def test_adam_sums_duplicate_ids_before_the_moments():
    """An embedding gradient (`IndexedSlices` with a repeated id) is Adam on the dense
    gradient: the repeated row's gradients are summed, then squared."""
    rng = np.random.default_rng(5)
    start = rng.normal(size=(4, 2)).astype("float32")
    steps = [(np.array([1, 1, 2]), rng.normal(size=(3, 2))), (np.array([0, 1]), rng.normal(size=(2, 2)))]
    table, dense = keras.Variable(start), []
    adam = Adam(0.01)
    for ids, values in steps:
        adam.apply_gradients([(tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(ids),
                                                tf.constant([4, 2])), table)])
        g = np.zeros_like(start, "float64")
        np.add.at(g, ids, values)
        dense.append(g)
    np.testing.assert_allclose(table.numpy(), adam_numpy(start, dense), rtol=1e-5, atol=1e-6)


def test_compile_with_adam_by_name_uses_the_fused_adam():
    data = pd.DataFrame({"user": ["a", "b", "c", "a"] * 8, "click": [1, 0, 1, 0] * 8})
    schema, tasks = tfmtl.infer_schema(data, labels=["click"])
    model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(4,), tower_units=(2,))
    assert isinstance(model, MultiTaskModel)
    for name in ("adam", "Adam"):
        model.compile(optimizer=name)
        assert type(model.optimizer) is Adam
    model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 1
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(Adam(0.02))), Adam)
