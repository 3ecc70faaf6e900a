"""Every layer: config round trip, symbolic/eager shapes, .keras reload."""

import keras
import numpy as np
import pytest

from tests.helpers import check_layer
from tfmtl.layers import (
    CGC,
    MLP,
    PLE,
    AdaptiveInformationTransfer,
    Experts,
    FeatureLookup,
    FieldEmbedding,
    LabelConstraint,
    MMoE,
    NumericFeatures,
    OMoE,
    SharedBottom,
    SoftmaxGate,
    TaskHead,
)
from tfmtl.schema import DenseFeature, Schema, SequenceFeature, SparseFeature

rng = np.random.default_rng(0)
X = rng.normal(size=(6, 5)).astype("float32")


def schema():
    return Schema(
        [
            SparseFeature("user", vocabulary=(1, 2, 3), dtype="int64"),
            SparseFeature("item", vocabulary=("a", "b"), shared_embedding="items"),
            SequenceFeature("history", vocabulary=("a", "b", "c"), shared_embedding="items"),
            SequenceFeature("tags", num_bins=7, combiner="sum"),
            DenseFeature("price", mean=2.0, variance=4.0),
        ]
    )


RAW = {
    "user": np.array([1, 3, 9], "int64"),
    "item": np.array(["a", "zzz", ""], object),
    "history": np.array(["a|c", "", "b|b|zzz"], object),
    "tags": np.array(["x|y", "", "z"], object),
    "price": np.array([2.0, np.nan, 6.0], "float32"),
}


@pytest.mark.parametrize(
    "layer, args, shape, weights",
    [
        (MLP([8, 4], dropout=0.1, batch_norm=True), [X], (6, 4), 2 + 8),
        (MLP([]), [X], (6, 5), 0),
        (Experts(3, [8, 4]), [X], (6, 3, 4), 4),
        (Experts(2, [4], batch_norm=True, dropout=0.2), [X], (6, 2, 4), 5),
        (SoftmaxGate(3), [X, rng.normal(size=(6, 3, 4)).astype("float32")], (6, 4), 1),
        (SoftmaxGate(3, hidden_units=[8]), [X, rng.normal(size=(6, 3, 4)).astype("float32")],
         (6, 4), 3),
        (TaskHead("binary"), [X], (6, 1), 2),
        (TaskHead("regression"), [X], (6, 1), 2),
        (SharedBottom(3, [8]), [X], [(6, 8)] * 3, 2),
        (OMoE(2, 3, [8]), [X], [(6, 8)] * 2, 3),
        (MMoE(2, 3, [8, 4]), [X], [(6, 4)] * 2, 6),
        (CGC(2, 1, 2, [8]), [X], [(6, 8)] * 2, 3 * 2 + 2),
        (CGC(2, 1, 2, [8], shared_output=True), [X], [(6, 8)] * 3, 3 * 2 + 3),
        (PLE(2, 2, 1, 1, [8]), [X], [(6, 8)] * 2, (3 * 2 + 3) + (3 * 2 + 2)),
        (PLE(3, 3, 2, 1, [8]), [X], [(6, 8)] * 3, 2 * (4 * 2 + 4) + (4 * 2 + 3)),
        (AdaptiveInformationTransfer(), [X, X], (6, 5), 3),
        (LabelConstraint(0.6), [X[:, :1], X[:, 1:2]], (6, 1), 0),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, keras.layers.Layer) else None,
)
def test_layer_contract(layer, args, shape, weights):
    check_layer(layer, args, shape, weights)


def test_cgc_takes_one_input_per_branch_plus_shared():
    inputs = [X, X * 2, X * 3]
    check_layer(CGC(2, 1, 1, [8], shared_output=True), [inputs], [(6, 8)] * 3)


def test_feature_layers_contract():
    s = schema()
    lookup = FeatureLookup(s)
    indices = check_layer(
        lookup,
        [RAW],
        {"user": (3,), "item": (3,), "history": (3, 4), "tags": (3, 3)},
        symbolic_shape={"user": (None,), "item": (None,), "history": (None, None), "tags": (None, None)},
    )
    ids = {k: keras.ops.convert_to_numpy(v) for k, v in indices.items()}
    # int table: 0 = OOV, vocabulary from 1; string tables: 0 = "", 1 = OOV.
    assert ids["user"].tolist() == [1, 3, 0]
    assert ids["item"].tolist() == [2, 1, 0]
    assert ids["history"].tolist() == [[2, 4, 0, 0], [0, 0, 0, 0], [3, 3, 1, 0]]
    assert (ids["tags"][1] == 0).all() and (ids["tags"][0][:2] > 0).all()

    embedding = FieldEmbedding(s, 4)
    check_layer(embedding, [ids], (3, 4, 4), 3)
    dense = check_layer(NumericFeatures(s), [RAW], (3, 1), 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dense)[:, 0], [0.0, 0.0, 2.0], atol=1e-6)


def test_field_embedding_pools_like_numpy():
    s = schema()
    layer = FieldEmbedding(s, 4)
    ids = {
        "user": np.array([1, 2]),
        "item": np.array([2, 3]),
        "history": np.array([[2, 4, 0], [0, 0, 0]]),
        "tags": np.array([[1, 5, 0], [6, 0, 0]]),
    }
    out = keras.ops.convert_to_numpy(layer(ids))
    items = keras.ops.convert_to_numpy(layer.tables["items"].embeddings)
    tags = keras.ops.convert_to_numpy(layer.tables["tags"].embeddings)
    np.testing.assert_allclose(out[0, 1], items[2], atol=1e-6)
    np.testing.assert_allclose(out[0, 2], (items[2] + items[4]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[1, 2], np.zeros(4), atol=1e-6)  # no values
    np.testing.assert_allclose(out[0, 3], tags[1] + tags[5], atol=1e-6)  # sum
    assert len(layer.tables) == 3  # "item" and "history" share one table


@pytest.mark.parametrize("units", [(8,), (8, 4), (8, 6, 4)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_experts_of_any_depth_match_numpy_with_their_gradients(units, batch_norm):
    """Every depth and the batch-normalised form: outputs against NumPy, and the
    kernels' gradients against the einsum form of the same experts."""
    layer = Experts(3, list(units), activation="tanh", batch_norm=batch_norm)
    layer(X)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 + (
        1.0 if "variance" in w.path else 0.0) for w in layer.weights])
    for norm in layer.norm_layers:  # a positive variance
        norm.moving_variance.assign(np.abs(norm.moving_variance.numpy()) + 0.5)
    x = keras.ops.convert_to_tensor(X)

    def reference(x, tf):
        h = x
        for i, kernel in enumerate(layer.kernels):
            h = tf.einsum("bi,eio->beo" if i == 0 else "bei,eio->beo", h, kernel)
            if batch_norm:
                norm = layer.norm_layers[i]
                shape = (-1, 3, units[i])
                h = ((h - tf.reshape(norm.moving_mean, shape[1:]))
                     / tf.sqrt(tf.reshape(norm.moving_variance, shape[1:]) + norm.epsilon)
                     * tf.reshape(norm.gamma, shape[1:]) + tf.reshape(norm.beta, shape[1:]))
            else:
                h = h + layer.biases[i]
            h = tf.tanh(h)
        return h

    import tensorflow as tf

    weights = [np.asarray(w.numpy()) for w in layer.weights]
    expected = X
    for i in range(len(units)):  # NumPy, expert by expert
        kernel = weights[[w.path for w in layer.weights].index(layer.kernels[i].path)]
        outs = []
        for e in range(3):
            h = (expected[:, e] if i else expected) @ kernel[e]
            if batch_norm:
                norm = layer.norm_layers[i]
                columns = slice(e * units[i], (e + 1) * units[i])
                h = ((h - norm.moving_mean.numpy()[columns])
                     / np.sqrt(norm.moving_variance.numpy()[columns] + norm.epsilon)
                     * norm.gamma.numpy()[columns] + norm.beta.numpy()[columns])
            else:
                h = h + layer.biases[i].numpy()[e]
            outs.append(np.tanh(h))
        expected = np.stack(outs, axis=1)
    np.testing.assert_allclose(layer(x, training=False).numpy(), expected, atol=1e-5)
    with tf.GradientTape(persistent=True) as tape:
        ours = tf.reduce_sum(layer(x, training=False) ** 2)
        theirs = tf.reduce_sum(reference(x, tf) ** 2)
    for kernel in layer.kernels:
        np.testing.assert_allclose(tape.gradient(ours, kernel).numpy(),
                                   tape.gradient(theirs, kernel).numpy(), rtol=1e-4, atol=1e-5)


def test_experts_start_independent_and_match_numpy():
    layer = Experts(4, [16, 8])
    out = keras.ops.convert_to_numpy(layer(X))
    k0 = keras.ops.convert_to_numpy(layer.kernels[0])
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.allclose(k0[a], k0[b]), "experts start identical"
    # Per-expert Glorot limit: sqrt(6 / (in + out)) for each (in, out) slice.
    assert np.abs(k0).max() <= np.sqrt(6 / (5 + 16)) + 1e-6
    assert np.abs(k0).max() > 0.8 * np.sqrt(6 / (5 + 16))
    w = [keras.ops.convert_to_numpy(v) for v in layer.weights]
    for e in range(4):
        h = np.maximum(X @ w[0][e] + w[1][e], 0)
        h = np.maximum(h @ w[2][e] + w[3][e], 0)
        np.testing.assert_allclose(out[:, e], h, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Experts(0, [4]), "num_experts"),
        (lambda: MLP([4, 0]), "units"),
        (lambda: MLP([4], dropout=1.5), "dropout"),
        (lambda: MMoE(0), "num_branches"),
        (lambda: CGC(2, 0, 0), "expert"),
        (lambda: PLE(2, num_levels=0), "num_levels"),
        (lambda: TaskHead("classification"), "kind"),
        (lambda: SoftmaxGate(0), "num_experts"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
