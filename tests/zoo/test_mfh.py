"""MFH: facets, the trees' shapes, path-only gradients, routing in the exported model."""

import itertools
import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import export
import tfmtl
import zoo
from tests.helpers import roundtrip_model
from tfmtl.layers import PartitionIndex
from tfmtl.models.facet_tree import FacetTree
from tfmtl.schema import DenseFeature, Facet, FacetedTasks, Schema, SparseFeature, Task

BEHAVIOURS = [Task("like"), Task("rating", "regression")]
GROUP = Facet("group", ("new", "low", "high"), "activity", boundaries=(10, 20))
DEVICE = Facet("device", ("ios", "android"), "os", keys=("iOS", "Android"))
SMALL = dict(embedding_dim=4, tower_units=(8,),
             switchers=({"type": "shared_bottom", "units": (16,)},
                        {"type": "ple", "num_levels": 1, "expert_units": (8,)},
                        {"type": "cgc", "expert_units": (8,)}))


def data(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "user": rng.integers(0, 50, n), "item": rng.integers(0, 40, n),
        "activity": rng.integers(0, 30, n).astype("float32"),
        "os": rng.choice(["iOS", "Android", "web"], n),
    })
    signal = (frame.user % 2) * 2 - 1 + (frame.activity - 15) / 10
    frame["like"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype("int64")
    frame["rating"] = (signal + rng.normal(0, 0.3, n)).astype("float32")
    schema = Schema([
        SparseFeature("user", vocabulary=tuple(range(50)), dtype="int64"),
        SparseFeature("item", vocabulary=tuple(range(40)), dtype="int64"),
        DenseFeature("activity", mean=15.0, variance=75.0),
        SparseFeature("os", vocabulary=("iOS", "Android", "web")),
    ])
    return frame, schema


def closed_forms(sizes):
    """Codes of k facets: nodes prod(1 + n_i); an edge adds one facet's value to a code."""
    nodes = math.prod(1 + n for n in sizes)
    edges = sum(n * math.prod(1 + m for j, m in enumerate(sizes) if j != i)
                for i, n in enumerate(sizes))
    return nodes, edges


@pytest.mark.parametrize("sizes", [(2, 3), (3, 4), (2, 3, 2), (2, 2, 2, 3)])
def test_tree_node_and_edge_counts(sizes):
    tree = FacetTree(sizes, "mfh")
    assert (tree.num_nodes, tree.num_edges) == closed_forms(sizes)
    for k, level in enumerate(tree.levels):  # level k: every code of k facets
        assert len(level) == sum(math.prod(c) for c in itertools.combinations(sizes, k))
        assert all(len(tree.parents[node]) == k for node in level)
    hierarchy = FacetTree(sizes, "hmtl")
    prefixes = [math.prod(sizes[:k]) for k in range(len(sizes) + 1)]
    assert [len(level) for level in hierarchy.levels] == prefixes
    assert hierarchy.num_edges == hierarchy.num_nodes - 1  # a tree: one parent each
    flat = FacetTree(sizes, "flat")
    assert (flat.num_nodes, flat.num_edges) == (1 + math.prod(sizes), math.prod(sizes))


def test_subset_prunes_nodes_and_expansion_level_attaches_towers_higher():
    tree = FacetTree([2, 3], "mfh", task_codes=[(0, 0), (0, 1)])
    assert tree.levels == [[()], [((0, 0),), ((1, 0),), ((1, 1),)],
                           [((0, 0), (1, 0)), ((0, 0), (1, 1))]]
    shallow = FacetTree([2, 3, 2], "mfh", expansion_level=2)
    assert shallow.depth == 2 and len(shallow.task_leaves[(1, 2, 0)]) == 3  # C(3, 2) level-2 nodes


def test_built_model_matches_its_tree():
    frame, schema = data(50)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    model = zoo.build("mfh", schema, tasks, **SMALL)
    switches = [layer.name for layer in model.layers if layer.name.startswith("switch_")]
    assert sorted(switches) == sorted(["switch_root", "switch_like", "switch_rating", "switch_new",
                                       "switch_low", "switch_high"])
    assert model.facet_tree.num_nodes == 12 and model.facet_tree.num_edges == 17
    # Node (like, new) sums its two parents' branches: switch_like's branch 0 (to like_new,
    # its first child) and switch_new's branch 0 (like before rating).
    probe = keras.Model(model.inputs, [model.get_layer("switch_like").output[0],
                                       model.get_layer("switch_new").output[0],
                                       model.get_layer("node_like_new").output])
    from_like, from_new, node = (np.asarray(v) for v in probe.predict(
        tfmtl.data.features_from(frame, schema), verbose=0))
    np.testing.assert_allclose(node, from_like + from_new, atol=1e-6)
    assert model.facet_tree.children[((0, 0),)] == [((0, 0), (1, 0)), ((0, 0), (1, 1)),
                                                    ((0, 0), (1, 2))]


def test_task_output_depends_only_on_its_paths():
    frame, schema = data(64)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    keras.utils.set_random_seed(0)
    model = zoo.build("mfh", schema, tasks, **SMALL)
    x = tfmtl.data.features_from(frame, schema)
    x = {k: tf.constant(v) for k, v in x.items()}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False)["like_new"])
    grads = tape.gradient(loss, model.trainable_variables)
    norms = {}
    for variable, grad in zip(model.trainable_variables, grads):
        layer = variable.path.split("/")[0]
        norms.setdefault(layer, 0.0)
        norms[layer] += 0.0 if grad is None else float(tf.norm(tf.convert_to_tensor(grad)))
    on_path = {"embedding", "switch_root", "switch_like", "switch_new", "like_new_tower",
               "like_new"}
    assert set(norms) > on_path
    for layer, norm in norms.items():
        if layer in on_path:
            assert norm > 0, layer
        else:
            assert norm == 0, layer  # rating, low, high nodes, other towers: no path


def test_partition_index_in_the_model_equals_numpy():
    frame, _ = data(300)
    frame.loc[:5, "activity"] = np.nan
    tasks = FacetedTasks(BEHAVIOURS, [GROUP, DEVICE])
    layer = PartitionIndex(tasks.facets)
    got = layer({"activity": tf.constant(frame.activity.to_numpy("float32")),
                 "os": tf.constant(frame.os.to_numpy().astype(str))})
    np.testing.assert_array_equal(got.numpy(), tasks.partition_index(frame))
    assert set(tasks.partition_index(frame)) == set(range(6))
    # "web" is no key: such rows go to the facet's first value, NaN activity to "new".
    assert (tasks.partition_index(frame)[(frame.os == "web").to_numpy()] % 2 == 0).all()
    assert (tasks.partition_index(frame)[:6] // 2 == 0).all()


def test_masks_with_other_weight_weigh_the_loss():
    frame, schema = data(400)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP], other_weight=0.25)
    with_masks = tasks.with_masks(frame)
    groups = tasks.partition_index(frame)
    np.testing.assert_array_equal(with_masks["mask_low"], np.where(groups == 1, 1.0, 0.25))
    model = zoo.build("flat", schema, tasks, **SMALL)
    model.compile()
    logs = model.evaluate(with_masks, batch_size=400, verbose=0, return_dict=True)
    out = model.predict(with_masks, verbose=0)
    w = with_masks["mask_low"].to_numpy()
    err = (with_masks["rating"].to_numpy() - out["rating_low"][:, 0]) ** 2
    assert logs["rating_low_loss"] == pytest.approx(float((w * err).sum() / w.sum()), rel=1e-4)
    bad = with_masks.assign(mask_low=2.0)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        model.fit(bad, epochs=1, verbose=0)


@pytest.mark.parametrize("combine", ["sum", "concat", "gate"])
def test_combine_modes_train(combine):
    frame, schema = data(600)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    keras.utils.set_random_seed(0)
    model = zoo.build("mfh", schema, tasks, combine=combine, **SMALL)
    model.compile()
    history = model.fit(tasks.with_masks(frame), epochs=2, batch_size=128, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    widths = {layer.name: layer.compute_output_shape(((None, 4), [(None, 8)] * 2))[-1]
              for layer in model.layers if layer.name == "node_like_new"}
    assert widths == {"node_like_new": 16 if combine == "concat" else 8}


def test_heterogeneous_towers_and_facet_order():
    frame, schema = data(50)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    model = zoo.build("hmtl", schema, tasks, order=["group", "behaviour"],
                      tower_units={"new": (4,), "rating_high": (), "default": (12,)},
                      **{k: v for k, v in SMALL.items() if k != "tower_units"})
    widths = {layer.name: layer.units for layer in model.layers if layer.name.endswith("_tower")}
    assert widths["like_new_tower"] == [4] and widths["rating_new_tower"] == [4]
    assert widths["like_low_tower"] == [12] and "rating_high_tower" not in widths
    assert [len(level) for level in model.facet_tree.levels] == [1, 3, 6]  # groups first
    assert {layer.name for layer in model.layers} >= {"switch_new", "switch_low", "switch_high"}


def test_bad_input_is_named():
    frame, schema = data(50)
    with pytest.raises(TypeError, match="FacetedTasks go to"):
        zoo.build("mmoe", schema, FacetedTasks(BEHAVIOURS, [GROUP]))
    with pytest.raises(ValueError, match="must be features"):
        zoo.build("mfh", schema, FacetedTasks(BEHAVIOURS, [Facet("g", ("a", "b"), "age",
                                                                boundaries=(30,))]))
    with pytest.raises(ValueError, match="Unknown switcher"):
        zoo.build("mfh", schema, FacetedTasks(BEHAVIOURS, [GROUP]), switchers="moe")
    with pytest.raises(ValueError, match="unique across facets"):
        FacetedTasks(BEHAVIOURS, [GROUP, Facet("g2", ("new", "old"), "os", keys=("iOS", "x"))])
    with pytest.raises(ValueError, match="boundaries"):
        Facet("g", ("a", "b", "c"), "activity", boundaries=(20, 10))
    with pytest.raises(ValueError, match="unknown tasks"):
        FacetedTasks(BEHAVIOURS, [GROUP], subset=["like_old"])


def test_three_facet_mfh_trains_and_routes_in_the_exported_model(tmp_path):
    frame, schema = data(1500)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP, DEVICE])
    assert len(tasks.codes) == 12
    keras.utils.set_random_seed(0)
    model = zoo.build("mfh", schema, tasks, **SMALL)
    assert (model.facet_tree.num_nodes, model.facet_tree.num_edges) == closed_forms([2, 3, 2])
    model.compile()
    history = model.fit(tasks.with_masks(frame), epochs=4, batch_size=128, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["like_auc"][-1] > 0.6  # the routed output, over all rows
    frame = frame.iloc[:600]
    x = tfmtl.data.features_from(frame, schema)
    original, from_keras, _, reloaded = roundtrip_model(model, x)
    for key in original:
        np.testing.assert_allclose(from_keras[key], original[key], atol=1e-5)
    loaded = tf.saved_model.load(export.save(model, str(tmp_path / "ranker")))
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    served = {k: v.numpy() for k, v in served.items()}
    assert set(served) == {t.name for t in tasks.tasks}
    partition = tasks.partition_index(frame)
    names = [tasks.partition_values(c) for c in tasks.codes if c[0] == 0]
    for behaviour in ("like", "rating"):
        per_group = np.stack([served[f"{behaviour}_{'_'.join(v)}"] for v in names], axis=1)
        np.testing.assert_array_equal(served[behaviour], per_group[np.arange(len(frame)), partition])
        np.testing.assert_allclose(served[behaviour], original[behaviour][:, 0], atol=1e-5)
    assert len(set(partition)) == 6  # every route taken


def test_a_behaviour_mask_is_kept_within_each_group():
    frame, schema = data(300)
    frame["click"] = (frame.like | (frame.user % 3 == 0)).astype("int64")
    tasks = FacetedTasks([Task("click"), Task("like", mask="click")], [GROUP], other_weight=0.5)
    by_name = {t.name: t for t in tasks.tasks}
    assert by_name["like_low"].mask == "mask_like_low" and by_name["click_low"].mask == "mask_low"
    assert by_name["like"].mask == "click" and by_name["like"].loss_weight == 0
    masked = tasks.with_masks(frame)
    in_low = tasks.partition_index(frame) == 1
    expected = frame.click.to_numpy() * np.where(in_low, 1.0, 0.5)
    np.testing.assert_array_equal(masked["mask_like_low"], expected.astype("float32"))


def test_branch_mlps_and_expansion_level_in_the_model():
    frame, schema = data(50)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    model = zoo.build("mfh", schema, tasks, branch_units=[(6,), ()], **SMALL)
    branches = {layer.name for layer in model.layers if layer.name.startswith("branch_")}
    assert branches == {"branch_root_to_like", "branch_root_to_rating", "branch_root_to_new",
                        "branch_root_to_low", "branch_root_to_high"}  # level 1: zero layers
    shallow = zoo.build("mfh", schema, tasks, expansion_level=1, **SMALL)
    assert shallow.facet_tree.depth == 1
    names = {layer.name for layer in shallow.layers}
    assert "like_new_combine" in names and "switch_like" not in names  # towers read like + new
    x = tfmtl.data.features_from(frame, schema)
    assert shallow.predict(x, verbose=0)["like"].shape == (50, 1)
