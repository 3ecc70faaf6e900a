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
from tfmtl.mfh import Facet, FacetedTasks, FacetTree, PartitionIndex
from tfmtl.schema import DenseFeature, Schema, SparseFeature, Task

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
    """MFH (Eq. 5, Sec. 4.2): the root, N facet nodes, then every code of j facets' values.

    Nodes N + prod(1 + n_i): the root and the codes are prod(1 + n_i) (a value or
    none per facet), plus the N facet nodes. Edges: N from the root, then a code
    of j values has j parents (a code of one value: its facet node).
    """
    nodes = len(sizes) + math.prod(1 + n for n in sizes)
    edges = len(sizes) + sum(n * math.prod(1 + m for j, m in enumerate(sizes) if j != i)
                             for i, n in enumerate(sizes))
    return nodes, edges


@pytest.mark.parametrize("sizes", [(2, 3), (3, 3), (6, 2), (3, 4), (2, 3, 2), (3, 3, 2),
                                   (2, 2, 2, 3)])
def test_tree_node_and_edge_counts(sizes):
    tree = FacetTree(sizes, "mfh")
    assert (tree.num_nodes, tree.num_edges) == closed_forms(sizes)
    n = len(sizes)
    assert len(tree.levels) == n + 2 and tree.levels[0] == [()] and len(tree.levels[1]) == n
    assert tree.children[()] == tree.levels[1]  # the root branches once per facet
    for f, node in enumerate(tree.levels[1]):
        assert node == ((f, None),) and tree.parents[node] == [()]
        assert len(tree.children[node]) == sizes[f]  # a facet node branches per value
    for j, level in enumerate(tree.levels[2:], start=1):  # codes of j facets' values
        assert len(level) == sum(math.prod(c) for c in itertools.combinations(sizes, j))
        for node in level:
            expected = [((node[0][0], None),)] if j == 1 else [
                sub for sub in itertools.combinations(node, j - 1)]
            assert tree.parents[node] == expected
            if j < n:  # branches of a code's switcher: one per value of each other facet
                others = sum(sizes[f] for f in range(n) if f not in {g for g, _ in node})
                assert len(tree.children[node]) == others
    hierarchy = FacetTree(sizes, "hmtl")
    prefixes = [math.prod(sizes[:k]) for k in range(len(sizes) + 1)]
    assert [len(level) for level in hierarchy.levels] == prefixes
    assert hierarchy.num_edges == hierarchy.num_nodes - 1  # a tree: one parent each
    flat = FacetTree(sizes, "flat")
    assert (flat.num_nodes, flat.num_edges) == (1 + math.prod(sizes), math.prod(sizes))


def test_the_two_facet_tree_is_the_papers_figure_6():
    tree = FacetTree([2, 3], "mfh")  # behaviour (like, rating) x group (new, low, high)
    assert tree.levels == [
        [()], [((0, None),), ((1, None),)],
        [((0, 0),), ((0, 1),), ((1, 0),), ((1, 1),), ((1, 2),)],
        [((0, b), (1, g)) for b in range(2) for g in range(3)]]
    assert tree.parents[((0, 0), (1, 2))] == [((0, 0),), ((1, 2),)]
    assert (tree.num_nodes, tree.num_edges) == (14, 19)


def test_subset_prunes_nodes_and_expansion_level_attaches_towers_higher():
    tree = FacetTree([2, 3], "mfh", task_codes=[(0, 0), (0, 1)])
    assert tree.levels == [[()], [((0, None),), ((1, None),)], [((0, 0),), ((1, 0),), ((1, 1),)],
                           [((0, 0), (1, 0)), ((0, 0), (1, 1))]]
    shallow = FacetTree([2, 3, 2], "mfh", expansion_level=2)
    assert shallow.depth == 3 and len(shallow.task_leaves[(1, 2, 0)]) == 3  # C(3, 2) nodes


def test_built_model_matches_its_tree():
    frame, schema = data(50)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    model = zoo.build("mfh", schema, tasks, **SMALL)
    switches = {layer.name: layer for layer in model.layers if layer.name.startswith("switch_")}
    assert sorted(switches) == sorted(["switch_root", "switch_behaviour", "switch_group",
                                       "switch_like", "switch_rating", "switch_new",
                                       "switch_low", "switch_high"])
    assert model.facet_tree.num_nodes == 14 and model.facet_tree.num_edges == 19
    branches = {name: layer.num_branches for name, layer in switches.items()}
    assert branches == {"switch_root": 2, "switch_behaviour": 2, "switch_group": 3,
                        "switch_like": 3, "switch_rating": 3, "switch_new": 2, "switch_low": 2,
                        "switch_high": 2}
    # The paper's switchers by level (Sec. 5.1.2): Shared-Bottom, PLE, CGC.
    default = zoo.build("mfh", schema, tasks)
    kinds = {layer.name: type(layer).__name__ for layer in default.layers
             if layer.name.startswith("switch_")}
    assert kinds["switch_root"] == "SharedBottom" and kinds["switch_group"] == "PLE"
    assert kinds["switch_like"] == "CGC" and kinds["switch_new"] == "CGC"
    assert default.get_layer("switch_group").levels[0].expert_units == [256]
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
    on_path = {"embedding", "switch_root", "switch_behaviour", "switch_group", "switch_like",
               "switch_new", "like_new_tower", "like_new"}
    assert set(norms) > on_path
    for layer, norm in norms.items():
        if layer in on_path:
            assert norm > 0, layer
        else:
            assert norm == 0, layer  # rating, low, high nodes, other towers: no path


def partition(tasks, frame):
    return tasks.partition(frame).numpy()


def test_partition_index_in_the_model_equals_the_rule_by_hand():
    frame, _ = data(300)
    frame.loc[:5, "activity"] = np.nan
    tasks = FacetedTasks(BEHAVIOURS, [GROUP, DEVICE])
    layer = PartitionIndex(tasks.facets)
    got = layer({"activity": tf.constant(frame.activity.to_numpy("float32")),
                 "os": tf.constant(frame.os.to_numpy().astype(str))}).numpy()
    # By hand: group by the boundaries (10, 20), NaN to "new"; os by key, "web" to "ios".
    activity = frame.activity.to_numpy()
    group = np.where(activity >= 20, 2, np.where(activity >= 10, 1, 0))
    device = np.where(frame.os.to_numpy() == "Android", 1, 0)
    np.testing.assert_array_equal(got, group * 2 + device)
    np.testing.assert_array_equal(partition(tasks, frame), got)
    assert set(got) == set(range(6))


def test_facet_weights_are_made_from_the_model_and_weigh_the_loss():
    frame, schema = data(400)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP], other_weight=0.25)
    groups = partition(tasks, frame)
    model = zoo.build("flat", schema, tasks, **SMALL)
    model.compile()
    _, weights = model.targets(frame)
    np.testing.assert_array_equal(weights["rating_low"].numpy(), np.where(groups == 1, 1.0, 0.25))
    np.testing.assert_array_equal(weights["rating"].numpy(), np.ones(len(frame)))  # routed
    logs = model.evaluate(frame, batch_size=400, verbose=0, return_dict=True)
    out = model.predict(frame, verbose=0)
    w = np.where(groups == 1, 1.0, 0.25)
    err = (frame["rating"].to_numpy() - out["rating_low"][:, 0]) ** 2
    assert logs["rating_low_loss"] == pytest.approx(float((w * err).sum() / w.sum()), rel=1e-4)


@pytest.mark.parametrize("combine", ["sum", "concat", "gate"])
def test_combine_modes_train(combine):
    frame, schema = data(600)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    keras.utils.set_random_seed(0)
    model = zoo.build("mfh", schema, tasks, combine=combine, **SMALL)
    model.compile()
    history = model.fit(frame, epochs=2, batch_size=128, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    node = model.get_layer("node_like_new")  # two parents (like, new) of 8 units each
    probe = keras.Model(model.inputs, node.output)
    width = probe.predict(tfmtl.data.features_from(frame.head(3), schema), verbose=0).shape[-1]
    assert width == (16 if combine == "concat" else 8)


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
    history = model.fit(frame, epochs=4, batch_size=128, verbose=0)
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
    rows = partition(tasks, frame)
    names = [tasks.partition_values(c) for c in tasks.codes if c[0] == 0]
    for behaviour in ("like", "rating"):
        per_group = np.stack([served[f"{behaviour}_{'_'.join(v)}"] for v in names], axis=1)
        np.testing.assert_array_equal(served[behaviour], per_group[np.arange(len(frame)), rows])
        np.testing.assert_allclose(served[behaviour], original[behaviour][:, 0], atol=1e-5)
    assert len(set(rows)) == 6  # every route taken


def test_a_behaviour_mask_is_kept_within_each_group():
    frame, schema = data(300)
    frame["click"] = (frame.like | (frame.user % 3 == 0)).astype("int64")
    tasks = FacetedTasks([Task("click"), Task("like", mask="click")], [GROUP], other_weight=0.5)
    by_name = {t.name: t for t in tasks.tasks}
    assert by_name["like_low"].mask == "click" and by_name["click_low"].mask is None
    assert by_name["like"].mask == "click" and by_name["like"].loss_weight == 0
    model = zoo.build("mfh", schema, tasks, **SMALL)
    _, weights = model.targets(frame)
    in_low = partition(tasks, frame) == 1
    expected = frame.click.to_numpy() * np.where(in_low, 1.0, 0.5)
    np.testing.assert_array_equal(weights["like_low"].numpy(), expected.astype("float32"))
    np.testing.assert_array_equal(weights["click_low"].numpy(), np.where(in_low, 1.0, 0.5))


def test_node_mlps_and_expansion_level_in_the_model():
    frame, schema = data(50)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP])
    model = zoo.build("mfh", schema, tasks, node_units=[(), (6,), ()], **SMALL)
    mlps = {layer.name: layer.units for layer in model.layers if layer.name.startswith("mlp_")}
    assert mlps == {"mlp_behaviour": [6], "mlp_group": [6]}  # level 1's nodes; level 2: none
    shallow = zoo.build("mfh", schema, tasks, expansion_level=1, **SMALL)
    assert shallow.facet_tree.depth == 2
    names = {layer.name for layer in shallow.layers}
    assert "like_new_combine" in names and "switch_like" not in names  # towers read like + new
    x = tfmtl.data.features_from(frame, schema)
    assert shallow.predict(x, verbose=0)["like"].shape == (50, 1)


@pytest.mark.parametrize("name", ["flat", "hmtl", "mfh"])
def test_fit_on_a_frame_needs_no_mask_step_before_and_after_reload(name, tmp_path):
    frame, schema = data(600)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP], other_weight=0.1)
    keras.utils.set_random_seed(0)
    model = zoo.build(name, schema, tasks, **SMALL)
    model.compile()
    first = model.fit(frame, epochs=1, batch_size=200, verbose=0, shuffle=False)
    assert np.isfinite(first.history["loss"][0])
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.facets.get_config() == tasks.get_config()
    expected = model.evaluate(frame, batch_size=200, verbose=0, return_dict=True)
    again = reloaded.evaluate(frame, batch_size=200, verbose=0, return_dict=True)
    for key, value in expected.items():
        assert again[key] == pytest.approx(value, rel=1e-5), key
    second = reloaded.fit(frame, epochs=1, batch_size=200, verbose=0)
    assert np.isfinite(second.history["loss"][0])


def test_paper_sharing_and_per_sample_loss():
    frame, schema = data(400)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP], sharing="paper")
    assert [tasks.partition_weights(f"like_{g}").tolist() for g in ("new", "low", "high")] == [
        [1, 0, 0], [1, 1, 0], [1, 1, 1]]  # new users' rows everywhere, low in high
    model = zoo.build("mfh", schema, tasks, **SMALL)
    assert model.loss_normalization == "per_sample"
    model.compile()
    x, y, w = model.prepare(frame)
    out = model(x, training=False)
    total, count = 0.0, 0
    for task in model.loss_tasks:
        k = model.output_keys[task.name]
        p, t, weight = out[k].numpy()[:, 0], y[k][:, 0], w[k]
        rows = (-(t * np.log(np.clip(p, 1e-7, 1 - 1e-7)) + (1 - t) * np.log(
            np.clip(1 - p, 1e-7, 1 - 1e-7))) if task.kind == "binary" else (t - p) ** 2)
        total += task.loss_weight * (weight * rows).sum()
        count += (weight > 0).sum()
    got = float(model.compute_loss(x, y, out, w, training=False))
    assert got == pytest.approx(total / count, rel=1e-5)
    per_task = zoo.build("mfh", schema, tasks, loss_normalization="per_task", **SMALL)
    per_task.set_weights(model.get_weights())
    per_task.compile()
    logs = per_task.evaluate(frame, batch_size=400, verbose=0, return_dict=True)
    expected = sum(logs[f"{model.output_keys[t.name]}_loss"] for t in model.loss_tasks)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)  # each task's own mean
    assert logs["loss"] > 1.5 * got  # per-task means weigh the small groups' rows up


def test_facet_tasks_give_the_same_loss_from_every_form_of_data():
    name = "mfh"  # flat and hmtl share its data path (FacetedTasks -> Targets)
    frame, schema = data(400)
    tasks = FacetedTasks(BEHAVIOURS, [GROUP], sharing="paper")
    labels = ["like", "rating"]
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    x = {c: v for c, v in columns.items() if c not in labels}
    y = {c: columns[c] for c in labels}
    weight = np.where(frame.user.to_numpy() % 3 == 0, 0.5, 1.0)
    forms = {
        "frame": ((frame,), {"batch_size": 100}),
        "x, y": ((x, y), {"batch_size": 100}),
        "dataset of dicts": ((tf.data.Dataset.from_tensor_slices(columns).batch(100),), {}),
        "dataset of (x, y)": ((tf.data.Dataset.from_tensor_slices((x, y)).batch(100),), {}),
    }
    weighted = {
        "x, y, sample_weight": ((x, y), {"batch_size": 100, "sample_weight": weight}),
        "dataset of (x, y, sample_weight)": (
            (tf.data.Dataset.from_tensor_slices((x, y, weight)).batch(100),), {}),
    }
    losses = {}
    for form, (args, kwargs) in {**forms, **weighted}.items():
        keras.utils.set_random_seed(0)
        model = zoo.build(name, schema, tasks, **SMALL)  # facet weights made inside the model
        model.compile(run_eagerly=True)
        losses[form] = model.fit(*args, epochs=1, shuffle=False, verbose=0,
                                 **kwargs).history["loss"][0]
    for form in forms:
        assert losses[form] == pytest.approx(losses["frame"], rel=1e-5), (form, losses)
    for form in weighted:
        assert losses[form] == pytest.approx(losses["x, y, sample_weight"], rel=1e-5), losses
    assert losses["x, y, sample_weight"] != pytest.approx(losses["frame"], rel=1e-4)
