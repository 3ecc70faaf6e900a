"""Outputs equal NumPy forward passes of the papers' equations (atol 1e-5)."""

import keras
import numpy as np
import tensorflow as tf

import zoo
from tfmtl.layers import CGC, PLE, LabelConstraint, MMoE
from tfmtl.schema import DenseFeature, Schema, SparseFeature, Task

rng = np.random.default_rng(7)
X = rng.normal(size=(16, 6)).astype("float32")


def relu(v):
    return np.maximum(v, 0.0)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def softmax(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_of(variable):
    return keras.ops.convert_to_numpy(variable)


def randomize(layer, scale=0.5):
    """Sets every weight of `layer` to fresh random values (biases too)."""
    layer.set_weights([rng.normal(size=w.shape) * scale for w in layer.get_weights()])


def experts_np(x, experts):
    """f_i(x) for every expert of an `Experts` layer: (batch, experts, units)."""
    outputs = []
    for e in range(experts.num_experts):
        h = x
        for kernel, bias in zip(experts.kernels, experts.biases):
            h = relu(h @ numpy_of(kernel)[e] + numpy_of(bias)[e])
        outputs.append(h)
    return np.stack(outputs, axis=1)


def gate_np(x, gate, experts):
    """sum_i softmax(W_g x)_i f_i(x)."""
    weights = softmax(x @ numpy_of(gate.dense.kernel))
    return np.einsum("be,beu->bu", weights, experts)


def mlp_np(x, mlp):
    for dense in mlp.dense_layers:
        x = relu(x @ numpy_of(dense.kernel) + numpy_of(dense.bias))
    return x


def head_np(x, head, binary=True):
    logit = x @ numpy_of(head.dense.kernel) + numpy_of(head.dense.bias)
    return sigmoid(logit) if binary else logit


def test_mmoe_matches_equations_7_and_8():
    layer = MMoE(3, num_experts=4, expert_units=[8, 5])
    layer(X)
    randomize(layer)
    f = experts_np(X, layer.experts)
    expected = [gate_np(X, g, f) for g in layer.gates]
    for got, want in zip(layer(X), expected):
        np.testing.assert_allclose(numpy_of(got), want, atol=1e-5)


def cgc_np(branch_inputs, shared_input, layer):
    shared = experts_np(shared_input, layer.shared_experts)
    specific = [experts_np(x, e) for x, e in zip(branch_inputs, layer.specific_experts)]
    outputs = [
        gate_np(x, g, np.concatenate([own, shared], axis=1))
        for x, g, own in zip(branch_inputs, layer.gates, specific)
    ]
    if layer.shared_output:
        every = np.concatenate(specific + [shared], axis=1)
        outputs.append(gate_np(shared_input, layer.shared_gate, every))
    return outputs


def test_cgc_matches_ple_equations_2_to_4():
    layer = CGC(2, num_specific_experts=2, num_shared_experts=3, expert_units=[7])
    layer(X)
    randomize(layer)
    for got, want in zip(layer(X), cgc_np([X, X], X, layer)):
        np.testing.assert_allclose(numpy_of(got), want, atol=1e-5)


def test_ple_two_levels_match_equation_5():
    layer = PLE(2, num_levels=2, num_specific_experts=2, num_shared_experts=2, expert_units=[6, 4])
    layer(X)
    randomize(layer, 0.4)
    first, second = layer.levels
    level_1 = cgc_np([X, X], X, first)  # two task outputs and the shared gate's
    assert len(level_1) == 3
    expected = cgc_np(level_1[:2], level_1[2], second)
    got = layer(X)
    assert len(got) == 2
    for g, want in zip(got, expected):
        np.testing.assert_allclose(numpy_of(g), want, atol=1e-5)


SCHEMA = Schema(
    [
        SparseFeature("user", vocabulary=tuple(range(20)), dtype="int64"),
        SparseFeature("item", vocabulary=tuple("abcdefgh")),
        DenseFeature("price", mean=1.0, variance=2.0),
    ]
)
RAW = {
    "user": rng.integers(0, 25, 32).astype("int64"),
    "item": np.array(list("abcdefghxy"))[rng.integers(0, 10, 32)].astype(object),
    "price": rng.normal(1, 2, 32).astype("float32"),
}


def tower_input(model, tower):
    """The shared representation a tower reads, from the model itself."""
    probe = keras.Model(model.inputs, model.get_layer(tower).input)
    return keras.ops.convert_to_numpy(probe(RAW))


def randomize_model(model):
    for layer in model.layers:
        if layer.weights and not layer.name.startswith(("embedding", "lookup")):
            randomize(layer, 0.3)


def test_esmm_matches_its_equations():
    model = zoo.build("esmm", SCHEMA, [Task("ctr", label="click"), Task("cvr", label="buy")],
                      tower_units=(12, 6))
    randomize_model(model)
    x = tower_input(model, "ctr_tower")
    p_ctr = head_np(mlp_np(x, model.get_layer("ctr_tower")), model.get_layer("ctr"))
    p_cvr = head_np(mlp_np(x, model.get_layer("cvr_tower")), model.get_layer("cvr"))
    out = model(RAW)
    np.testing.assert_allclose(numpy_of(out["ctr"]), p_ctr, atol=1e-5)
    np.testing.assert_allclose(numpy_of(out["cvr"]), p_cvr, atol=1e-5)
    np.testing.assert_allclose(numpy_of(out["ctcvr"]), p_ctr * p_cvr, atol=1e-5)  # Eq. 2
    trained = {t.name: t for t in model.tasks}
    assert trained["cvr"].loss_weight == 0.0  # CVR learns only through CTCVR
    assert trained["ctcvr"].label == ("click", "buy")


def ait_np(q, p, layer):
    u = np.stack([q, p], axis=1)
    query = u @ numpy_of(layer.query.kernel)
    key = u @ numpy_of(layer.key.kernel)
    value = u @ numpy_of(layer.value.kernel)
    w = softmax((query * key).sum(-1) / np.sqrt(query.shape[-1]))
    return (w[..., None] * value).sum(axis=1)


def test_aitm_matches_its_equations_for_three_steps():
    tasks = [Task("click"), Task("cart"), Task("buy")]
    model = zoo.build("aitm", SCHEMA, tasks, tower_units=(10, 6), tower_dropout=0.0)
    randomize_model(model)
    x = tower_input(model, "click_tower")
    q = [mlp_np(x, model.get_layer(f"{t.name}_tower")) for t in tasks]
    z = [q[0]]
    for t in (1, 2):
        p = mlp_np(z[-1], model.get_layer(f"{tasks[t - 1].name}_transfer"))
        z.append(ait_np(q[t], p, model.get_layer(f"{tasks[t].name}_ait")))
    heads = [model.get_layer("click")] + [model.get_layer(f"{n}_head") for n in ("cart", "buy")]
    expected = [head_np(zt, h) for zt, h in zip(z, heads)]
    out = model(RAW)
    for task, want in zip(tasks, expected):
        np.testing.assert_allclose(numpy_of(out[task.name]), want, atol=1e-5)

    # Label constraint (Eq. 6): alpha * sum max(yhat_t - yhat_{t-1}, 0), per step.
    penalty = sum(
        0.6 * relu(expected[t] - expected[t - 1]).sum() for t in (1, 2)
    )
    np.testing.assert_allclose(float(sum(numpy_of(v) for v in model.losses)), penalty, rtol=1e-5)


def test_label_constraint_reaches_the_training_loss():
    tasks = [Task("click"), Task("buy")]
    model = zoo.build("aitm", SCHEMA, tasks, constraint_weight=2.0)
    model.compile()
    labels = {"click": rng.integers(0, 2, 32), "buy": rng.integers(0, 2, 32)}
    logs = model.evaluate({**RAW, **labels}, batch_size=32, verbose=0, return_dict=True)
    out = model.predict(RAW, verbose=0)
    penalty = 2.0 * relu(out["buy"] - out["click"]).sum()
    np.testing.assert_allclose(
        logs["loss"], logs["click_loss"] + logs["buy_loss"] + penalty, rtol=1e-4
    )


def test_label_constraint_layer_alone():
    layer = LabelConstraint(0.5)
    previous = np.array([[0.2], [0.9]], "float32")
    current = np.array([[0.5], [0.1]], "float32")
    layer(previous, current)
    np.testing.assert_allclose(float(numpy_of(layer.losses[0])), 0.5 * 0.3, atol=1e-6)


def test_cgc_one_input_runs_every_group_in_one_product_with_the_same_result():
    """One input: the groups' experts are fused; per-branch views (the same tensor) are not."""
    layer = CGC(3, num_specific_experts=2, num_shared_experts=1, expert_units=[5, 4],
                dropout=0.0, shared_output=True)
    fused = [o.numpy() for o in layer(X)]
    separate = [o.numpy() for o in layer([X] * 4)]
    for a, b in zip(fused, separate):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as tape:
        total = sum(tf.reduce_sum(o) for o in layer(X))
    grads = tape.gradient(total, layer.trainable_variables)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
