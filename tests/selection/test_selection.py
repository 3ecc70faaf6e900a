"""MultiSFS: saliency against finite differences, the GNN against NumPy, planted fields, models."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tests.zoo.test_zoo import frame
from tfmtl.data import selection_synthetic
from tfmtl.mfh import Facet, FacetedTasks
from tfmtl.selection import (FieldwiseSAGE, Selection, chi2_scores, field_saliency,
                             label_relations, lasso_scores, learn_relations, make_selection,
                             merge, resolve_k, select_fields, stability, top_k)
from tfmtl.selection.saliency import _batches, masked_loss


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")  # loss differences of 1e-6 need more than float32
    yield
    keras.config.set_floatx("float32")


@pytest.mark.parametrize("name", ["mmoe", "ple", "esmm"])
def test_saliency_is_the_derivative_of_eq_9_for_every_task_and_field(name, float64):
    data = frame(300)
    labels = ["click", "buy"] if name == "esmm" else ["click", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels)
    keras.utils.set_random_seed(0)
    model = zoo.build(name, schema, tasks, field_mask=True, **tiny_hparams(name))
    s = field_saliency(model, data, batch_size=300, signed=True, scale=None, calibrate=False)
    x, y, w = next(_batches(model, data, 300, 1, 0))
    mask = model.get_layer("field_mask")
    base = float(masked_loss(model, x, y, w))
    eps = 1e-5
    finite = np.zeros_like(s)
    for t in range(len(mask.tasks)):
        for n in range(len(mask.fields)):
            m = np.ones((len(mask.tasks), len(mask.fields)))
            m[t, n] -= eps
            mask.mask.assign(m)
            finite[t, n] = (base - float(masked_loss(model, x, y, w))) / eps  # Eq. 9 / eps
    mask.mask.assign(np.ones_like(m))
    assert np.abs(s).max() > 1e-4
    np.testing.assert_allclose(finite, s, rtol=1e-3, atol=1e-4 * np.abs(s).max())


def test_the_gnn_layer_is_eq_16_to_18_by_hand():
    rng = np.random.default_rng(0)
    batch, tasks, fields, dim = 5, 3, 4, 6
    data = rng.normal(size=(batch, fields, dim)).astype("float32")
    nodes = rng.normal(size=(tasks, fields, dim)).astype("float32")
    edges = (rng.random((batch, tasks)) < 0.4).astype("float32")
    edges[0] = 0  # a sample with no neighbour
    layer = FieldwiseSAGE(fields, dim)
    new_data, new_tasks = [v.numpy() for v in layer(data, nodes, edges)]
    wt, wd, u = (v.numpy() for v in (layer.task_message, layer.data_message, layer.update))
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    for n in range(fields):
        for i in range(batch):
            neighbours = [relu(nodes[t, n] @ wt[n]) for t in range(tasks) if edges[i, t]]
            message = np.mean(neighbours, axis=0) if neighbours else np.zeros(dim)
            expected = np.concatenate([message, data[i, n]]) @ u[n]  # Eq. 18
            np.testing.assert_allclose(new_data[i, n], expected, rtol=1e-4, atol=1e-5)
        for t in range(tasks):
            neighbours = [relu(data[i, n] @ wd[n]) for i in range(batch) if edges[i, t]]
            message = np.mean(neighbours, axis=0) if neighbours else np.zeros(dim)
            expected = np.concatenate([message, nodes[t, n]]) @ u[n]
            np.testing.assert_allclose(new_tasks[t, n], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_planted_fields_are_recovered():
    data, schema, tasks, planted = selection_synthetic(20_000, vocabulary=10, seed=0)
    hparams = {"num_experts": 4, "expert_units": (64,)}
    selection = select_fields("mmoe", schema, tasks, data, k=4, method="multisfs-3",
                              hparams=hparams, batches=2, inits=32, seed=0)
    for task, fields in planted.items():
        found = set(selection.task_fields[task]) & set(fields)
        assert len(found) / len(fields) >= 0.9, (task, selection.task_fields[task], fields)
    for scores in (chi2_scores(data, schema, tasks), lasso_scores(data, schema, tasks)):
        chosen = top_k(scores, {"a": 4, "b": 4}, ["a", "b"], list(schema.names))
        for task, fields in planted.items():
            assert set(chosen[task]) == set(fields), (task, chosen[task])


def test_relations_merge_top_k_and_json():
    r = np.array([[[1.0, 0.5], [0.5, 1.0]], [[1.0, -1.0], [-1.0, 1.0]]])  # 2 fields, 2 tasks
    s = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(merge(s, r), [[1 + 0.5 * 3, 2 - 4], [3 + 0.5 * 1, 4 - 2]])
    np.testing.assert_allclose(merge(s, r, "as_printed"), [[1.5, 0.0], [4.5, 0.0]])
    np.testing.assert_allclose(merge(s, None), s)
    assert resolve_k(0.7, 8, ["a"]) == {"a": 5} and resolve_k(3, 8, ["a"]) == {"a": 3}
    assert resolve_k({"a": 0.5, "b": 2}, 8, ["a", "b"]) == {"a": 4, "b": 2}
    with pytest.raises(ValueError, match="k must be"):
        resolve_k(0, 8, ["a"])
    assert top_k(np.array([[1.0, 3.0, 3.0, 0.5]]), {"a": 2}, ["a"], list("wxyz")) == {
        "a": ["x", "y"]}
    selection = make_selection(np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]]), ["f", "g", "h"],
                               ["a", "b"], 2, "multisfs", "ple", "intersection",
                               relations=np.stack([np.eye(2)] * 3))
    assert selection.task_fields == {"a": ["f", "g"], "b": ["g", "h"]}
    assert selection.shared_fields == ["g"] and selection.used_fields == ["f", "g", "h"]
    again = Selection.from_json(selection.to_json())
    assert again == selection and json.loads(selection.to_json())["relations"]["g"] == [
        [1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="none in common"):
        make_selection(np.array([[1.0, 0.0], [0.0, 1.0]]), ["f", "g"], ["a", "b"], 1, "x",
                       sharing="intersection")


def test_label_relations_are_the_labels_pearson_correlation():
    data = frame(500)
    tasks = [tfmtl.Task("click"), tfmtl.Task("rating", "regression")]
    r = label_relations(data, tasks, 3)
    expected = np.corrcoef(data.click, data.rating)[0, 1]
    assert r.shape == (3, 2, 2)
    np.testing.assert_allclose(r[:, 0, 1], expected, rtol=1e-5)
    np.testing.assert_allclose(r[:, 0, 0], 1.0)


def test_the_gnn_learns_relations_of_every_field():
    data, schema, tasks, _ = selection_synthetic(4000, seed=1)
    relations, info = learn_relations(schema, tasks, data, dim=8, epochs=3, batch_size=512)
    assert relations.shape == (len(schema), 2, 2)
    np.testing.assert_allclose(relations[:, 0, 0], 1.0)
    np.testing.assert_allclose(relations[:, 0, 1], relations[:, 1, 0])
    assert np.all(np.abs(relations) <= 1.0 + 1e-6)
    assert info["losses"][-1] < info["losses"][0]  # the test labels' BCE falls


def selection_for(schema, tasks, task_fields, backbone="ple", sharing="intersection"):
    fields = list(schema.names)
    return Selection(tasks=[t.name for t in tasks], fields=fields, task_fields=task_fields,
                     k={t: len(f) for t, f in task_fields.items()}, backbone=backbone,
                     sharing=sharing)


@pytest.mark.parametrize("name", zoo.list())
def test_every_model_builds_on_a_selection_and_drops_unselected_fields(name, tmp_path):
    data = frame(300)
    labels = ["click", "buy"] if name in ("esmm", "aitm") else ["click", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels)
    chosen = {tasks[0].name: ["user_id", "city", "price"], tasks[1].name: ["user_id", "genres"]}
    selection = selection_for(schema, tasks, chosen)
    model = zoo.build(name, schema, tasks, selection=selection, **tiny_hparams(name, tasks))
    assert model.schema.names == ("user_id", "city", "genres", "price")  # rating: dropped
    tables = {v.path.split("/")[-2] for v in model.weights if "table_" in v.path}
    assert all("rating" not in t for t in tables)
    views = {layer.name: layer.chosen for layer in model.layers if layer.name.startswith("view_")}
    rule = zoo.sharing(name)
    if rule == "union":
        assert views == {}
    else:
        assert views[f"view_{tasks[0].name}"] == chosen[tasks[0].name]
        assert views[f"view_{tasks[1].name}"] == chosen[tasks[1].name]
        assert ("view_shared" in views) == (rule == "intersection")
        if rule == "intersection":
            assert views["view_shared"] == ["user_id"]
    model.compile()
    history = model.fit(data, epochs=1, batch_size=100, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    x = data.head(10)
    for key, value in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(reloaded.predict(x, verbose=0)[key], value, atol=1e-5)


def test_a_task_specific_part_reads_only_its_fields():
    data = frame(200)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "rating"])
    selection = selection_for(schema, tasks, {"click": ["user_id", "city"],
                                              "rating": ["user_id", "price"]})
    keras.utils.set_random_seed(0)
    model = zoo.build("cgc", schema, tasks, selection=selection, **tiny_hparams("cgc"))
    x = data.head(50)
    before = model.predict(x, verbose=0)
    # city feeds click's experts and gate only; price rating's; user_id both and the shared experts.
    changed = model.predict(x.assign(city="nowhere"), verbose=0)
    assert not np.allclose(changed["click"], before["click"])
    np.testing.assert_allclose(changed["rating"], before["rating"], atol=1e-6)
    changed = model.predict(x.assign(price=x.price + 5), verbose=0)
    np.testing.assert_allclose(changed["click"], before["click"], atol=1e-6)
    assert not np.allclose(changed["rating"], before["rating"])


def test_selection_on_tf_data_stem_and_facet_tasks():
    data = frame(600)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    keras.utils.set_random_seed(0)
    probe = zoo.build("stem", schema, tasks, field_mask=True, **tiny_hparams("stem"))
    columns = {c: data[c].to_numpy() for c in data.columns}
    scores = field_saliency(probe, tf.data.Dataset.from_tensor_slices(columns).batch(200), batches=2)
    assert scores.shape == (2, 5) and np.all(scores > 0)
    selection = select_fields("stem", schema, tasks, data, k=3, batches=1, batch_size=300,
                              hparams=tiny_hparams("stem"), gnn={"epochs": 1, "dim": 4})
    model = zoo.build("stem", schema, tasks, selection=selection, **tiny_hparams("stem"))
    assert set(model.schema.names) == set(selection.used_fields)
    # MFH: one row per facet task; the tree's root reads the union, the facet column stays.
    facets = FacetedTasks([tfmtl.Task("click"), tfmtl.Task("buy")],
                          [Facet("grp", ("low", "high"), "price", boundaries=(10.0,))])
    schema, _ = tfmtl.infer_schema(data, labels=["click", "buy"])
    selection = select_fields("mfh", schema, facets, data, k=2, method="multisfs-2",
                              batches=1, batch_size=300, hparams=tiny_hparams("mfh"))
    assert selection.tasks == ["click_low", "click_high", "buy_low", "buy_high"]
    model = zoo.build("mfh", schema, facets, selection=selection, **tiny_hparams("mfh"))
    assert "price" in model.schema.names


def test_stability_is_measured_across_batches_and_initialisations():
    data, schema, tasks, _ = selection_synthetic(3000, seed=2)
    result = stability("mmoe", schema, tasks, data, k=4, batch_size=500,
                       runs=((0, 0, 1), (0, 1, 1), (1, 0, 1)), hparams=tiny_hparams("mmoe"))
    assert set(result["per_task"]) == {"a", "b"} and 0.0 <= result["mean_jaccard"] <= 1.0
    assert len(result["sets"]) == 3


def test_bad_arguments_are_named():
    data = frame(100)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    with pytest.raises(ValueError, match="method must be one of"):
        select_fields("mmoe", schema, tasks, data, method="snip")
    selection = selection_for(schema, tasks, {"click": ["city"], "buy": ["user_id"]},
                              backbone="mmoe", sharing="union")
    with pytest.raises(ValueError, match=r"The selection is for tasks \['click', 'buy'\]"):
        zoo.build("mmoe", schema, [tasks[0]], selection=selection)
    with pytest.raises(ValueError, match="none in common"):
        zoo.build("ple", schema, tasks, selection=selection)
    with pytest.raises(ValueError, match="needs the data in memory"):
        columns = {c: data[c].to_numpy() for c in data.columns}
        select_fields("mmoe", schema, tasks, tf.data.Dataset.from_tensor_slices(columns).batch(50),
                      batch_size=50, batches=1)
    with pytest.raises(ValueError, match="multisfs-1 trains the probe first"):
        select_fields("mmoe", schema, tasks, tf.data.Dataset.from_tensor_slices(columns).batch(50),
                      method="multisfs-1", batch_size=50, batches=1)


def test_cli_selects_with_plots_and_trains_the_selection(tmp_path, capsys):
    from tfmtl.cli import main

    data, _, _, planted = selection_synthetic(3000, vocabulary=5, seed=0)
    data = data.rename(columns={"s0": "shared field 0", "a0": "a-0 (specific)"})
    path = tmp_path / "rows.parquet"
    data.to_parquet(path)
    common = ["--data", str(path), "--labels", "a,b", "--model", "mmoe", "--set", "num_experts=2",
              "--set", "expert_units=[8]"]
    assert main(["select", *common, "--k", "4", "--batches", "1", "--batch-size", "500",
                 "--out", str(tmp_path / "selection.json"), "--plot", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out
    selection = Selection.load(str(tmp_path / "selection.json"))
    assert {len(f) for f in selection.task_fields.values()} == {4}
    assert set(selection.shared_fields) == set().union(*map(set, selection.task_fields.values()))
    assert all(field in printed for field in selection.task_fields["a"])
    for name in ("importance.png", "relations.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 5_000, name
    assert main(["train", *common, "--select", "4", "--epochs", "1", "--quiet"]) == 0
    assert "Test metrics" in capsys.readouterr().out
