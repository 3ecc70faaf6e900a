"""STEM-Net: All Forward, Task-specific Backward, checked by gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.helpers import check_layer
from tests.zoo.test_zoo import frame
from tfmtl.layers import STEMLayer, TaskEmbeddings


def build(stop_gradient=True, specific_fields="all"):
    data = frame(64)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    model = zoo.build("stem", schema, tasks, expert_units=(16,), gate_units=(8,), tower_units=(8,),
                      num_shared_experts=2, stop_gradient=stop_gradient,
                      specific_fields=specific_fields)
    x = tfmtl.data.features_from(data, schema)
    y = {t: tf.constant(data[t].to_numpy(), tf.float32)[:, None] for t in ("click", "buy")}
    return model, x, y


def gradients(model, x, y, task):
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = keras.losses.binary_crossentropy(y[task], out[task])
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    # No path at all (None) is a zero gradient; an IndexedSlices is an embedding's.
    return {
        v.path: 0.0 if g is None else float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g))))
        for v, g in zip(model.trainable_variables, grads)
    }


def owned(path, task_index, other):
    """Variables belonging to task `other` (its embeddings, experts, gate)."""
    return (f"task_{other}/" in path or f"specific_experts_{other}/" in path
            or f"gate_{other}/" in path)


@pytest.mark.parametrize("task, index, other", [("click", 0, 1), ("buy", 1, 0)])
def test_other_tasks_embeddings_and_experts_get_exactly_zero_gradient(task, index, other):
    model, x, y = build()
    grads = gradients(model, x, y, task)
    others = {p: g for p, g in grads.items() if owned(p, index, other)}
    assert any("task_" in p and "embeddings" in p for p in others)
    assert any("specific_experts_" in p for p in others)
    assert all(g == 0.0 for g in others.values()), {p: g for p, g in others.items() if g}
    own = {p: g for p, g in grads.items() if owned(p, other, index)}
    shared = {p: g for p, g in grads.items()
              if "shared/" in p or "shared_experts" in p}
    assert own and shared
    for group in (own, shared):
        tables = [g for p, g in group.items() if "embeddings" in p or "kernel" in p]
        assert tables and all(g > 0 for g in tables), group


def test_without_stop_gradient_other_tasks_receive_gradient():
    model, x, y = build(stop_gradient=False)
    grads = gradients(model, x, y, "click")
    other_experts = [g for p, g in grads.items() if "specific_experts_1/" in p and "kernel" in p]
    other_tables = [g for p, g in grads.items() if "task_1/" in p]
    assert other_experts and all(g > 0 for g in other_experts)
    assert other_tables and all(g > 0 for g in other_tables)


def test_all_forward_other_experts_change_a_tasks_prediction():
    model, x, _ = build()
    before = model(x)["click"].numpy()
    layer = model.get_layer("stem_0").specific_experts[1]  # the buy task's expert
    layer.kernels[0].assign(layer.kernels[0] * 3.0 + 0.1)
    after = model(x)["click"].numpy()
    assert np.abs(after - before).max() > 1e-4


def test_only_named_fields_get_task_specific_tables():
    model, x, y = build(specific_fields=["user_id"])
    tables = {v.path for v in model.trainable_variables if "embeddings/task_" in v.path}
    assert tables == {"embeddings/task_0/table_user_id/embeddings",
                      "embeddings/task_1/table_user_id/embeddings"}
    grads = gradients(model, x, y, "click")
    assert grads["embeddings/task_1/table_user_id/embeddings"] == 0.0
    assert grads["embeddings/task_0/table_user_id/embeddings"] > 0.0
    layer = model.get_layer("embeddings")
    assert [sorted(t.tables) for t in layer.specific] == [["user_id"], ["user_id"]]
    out = layer({k: v for k, v in model.get_layer("lookup")(x).items()})
    # Field 1 (city) reads the shared table in every set; field 0 (user_id) its task's own.
    np.testing.assert_array_equal(out[0][:, 1].numpy(), out[2][:, 1].numpy())
    np.testing.assert_array_equal(out[1][:, 1].numpy(), out[2][:, 1].numpy())
    assert not np.allclose(out[0][:, 0].numpy(), out[2][:, 0].numpy())
    assert not np.allclose(out[0][:, 0].numpy(), out[1][:, 0].numpy())


def test_stem_layer_and_task_embeddings_contract():
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(5, 6)).astype("float32") for _ in range(3)]
    check_layer(STEMLayer(2, 2, 1, [8], [4]), [x], [(5, 8)] * 2)
    check_layer(STEMLayer(2, 2, 1, [8], [4], gate_input="sum", shared_output=True), [x], [(5, 8)] * 3)
    schema = tfmtl.Schema([tfmtl.SparseFeature("u", num_bins=9), tfmtl.SparseFeature("i", num_bins=7)])
    ids = {"u": np.array([1, 2, 3]), "i": np.array([4, 5, 6])}
    check_layer(TaskEmbeddings(schema, 4, 2, specific_fields=["i"]), [ids], [(3, 2, 4)] * 3)
    with pytest.raises(ValueError, match="specific_fields"):
        TaskEmbeddings(schema, 4, 2, specific_fields=["nope"])
    with pytest.raises(ValueError, match="gate_input"):
        STEMLayer(2, gate_input="mean")


@pytest.mark.parametrize("gate_input", ["task", "shared"])
def test_gate_reads_only_the_named_input(gate_input):
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(5, 6)).astype("float32") for _ in range(3)]
    layer = STEMLayer(2, 2, 1, [8], [4], gate_input=gate_input)
    check_layer(layer, [x], [(5, 8)] * 2)
    changed = list(x)
    moved = 2 if gate_input == "task" else 0  # the input the gate must not read
    changed[moved] = x[moved] + 1.0
    before = [w.numpy() for _, w in layer.gate_weights(x)]
    after = [w.numpy() for _, w in layer.gate_weights(changed)]
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)
    changed[2 - moved] = x[2 - moved] + 1.0
    assert not np.allclose(before[0], [w.numpy() for _, w in layer.gate_weights(changed)][0])


def test_no_specific_fields_every_set_is_the_shared_one():
    schema = tfmtl.Schema([tfmtl.SparseFeature("u", num_bins=9), tfmtl.SparseFeature("i", num_bins=7)])
    layer = TaskEmbeddings(schema, 4, 2, specific_fields=[])
    out = layer({"u": np.array([1, 2]), "i": np.array([3, 4])})
    assert len(out) == 3 and len(layer.trainable_variables) == 2  # the shared tables alone
    for o in out[:2]:
        np.testing.assert_array_equal(o.numpy(), out[2].numpy())


def test_me_mmoe_has_one_table_set_per_expert_and_gates_read_their_mean():
    data = frame(64)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    model = zoo.build("me_mmoe", schema, tasks, num_experts=3, expert_units=(8,), gate_units=(4,),
                      tower_units=(4,))
    sets = {v.path.split("/")[1] for v in model.trainable_variables if v.path.startswith("embeddings/")}
    assert sets == {"task_0", "task_1", "shared"}  # 3 experts, 3 table sets
    x = tfmtl.data.features_from(data, schema)
    views = [model.get_layer(f"expert_{e}").input for e in range(3)]
    probe = keras.Model(model.inputs, views + [model.get_layer("gate_input").output])
    *expert_views, gate_view = probe(x)
    np.testing.assert_allclose(gate_view.numpy(), np.mean([v.numpy() for v in expert_views], axis=0),
                               atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 experts"):
        zoo.build("me_mmoe", schema, tasks, num_experts=1)


@pytest.mark.parametrize("name", ["mmoe", "stem", "single_task"])
def test_embedding_l2_is_the_sum_of_squares_of_every_table(name):
    data = frame(64)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    small = {"single_task": dict(hidden_units=(4,)),
             "mmoe": dict(num_experts=2, expert_units=(4,)),
             "stem": dict(num_shared_experts=1, expert_units=(4,), gate_units=(4,),
                          tower_units=(4,))}[name]
    model = zoo.build(name, schema, tasks, embedding_l2=0.01, **small)
    model(tfmtl.data.features_from(data, schema))
    tables = [v.numpy() for v in model.trainable_variables if "embeddings" in v.path]
    assert tables
    expected = 0.01 * sum(float(np.sum(t.astype("float64") ** 2)) for t in tables)
    assert float(sum(np.asarray(l) for l in model.losses)) == pytest.approx(expected, rel=1e-5)
