"""Bad input refused in one clear message that names it: the command line (exit status 2,
`tfmtl: error: ...`, before any training) and the library's entry points."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tfmtl.cli import main as cli_main
from tfmtl.schema import Task


def rows(n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user": rng.integers(0, 30, n), "price": rng.normal(size=n)})
    frame["click"] = ((frame.user % 2 == 0) ^ (rng.random(n) < 0.1)).astype(int)
    frame["buy"] = (frame.click * (rng.random(n) < 0.5)).astype(int)
    return frame


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "rows.parquet"
    rows().to_parquet(path)
    return path


@pytest.fixture
def refused(capsys):
    """Runs `python -m tfmtl ARGS` in-process; returns its one error line (status 2 asserted)."""
    def run(*args):
        try:
            code = cli_main([str(a) for a in args])
        except SystemExit as stop:  # argparse's own refusals
            code = stop.code
        out, err = capsys.readouterr()
        assert code == 2, (out, err)
        assert "Traceback" not in err and "Epoch" not in out, (out, err)
        return err.strip().splitlines()[-1]
    return run


def test_train_refusals_name_the_bad_option(data, tmp_path, refused):
    assert "--labels is needed with a data file (rows.parquet)" in refused("train", "--data", data)
    (tmp_path / "rows.json").write_text("{}")
    assert "unsupported file type '.json': use .parquet or .csv" in refused(
        "train", "--data", tmp_path / "rows.json", "--labels", "click")
    train = ("train", "--data", data, "--labels", "click")
    assert "--epochs and --batch-size must be positive" in refused(*train, "--epochs", "0")
    assert "--set takes NAME=VALUE; received 'num_experts'" in refused(
        *train, "--set", "num_experts")
    assert "the dtype policy is --precision, not --set dtype=..." in refused(
        *train, "--set", "dtype=mixed_bfloat16")
    assert "invalid choice: 'bfloat16'" in refused(*train, "--precision", "bfloat16")
    assert "--save writes a .keras file; received" in refused(*train, "--save", tmp_path / "m.h5")
    missing = tmp_path / "no_such_folder" / "m.keras"
    assert f"--save: the folder {missing.parent} does not exist" in refused(
        *train, "--save", missing)
    assert "--exclude names column(s) ['colour'] not in rows.parquet" in refused(
        *train, "--exclude", "colour")
    assert "--masks names column 'bought', which is not in the data" in refused(
        "train", "--data", data, "--labels", "click,buy", "--masks", "buy=bought")
    assert "give --select or --selection, not both" in refused(
        *train, "--select", "1", "--selection", tmp_path / "s.json")
    assert f"no architecture file {tmp_path / 'a.json'}" in refused(
        *train, "--architecture", tmp_path / "a.json")
    assert "--architecture trains the automtl model, not 'mmoe'" in refused(
        *train, "--model", "mmoe", "--architecture", tmp_path / "a.json")


def test_schema_file_refusals(data, tmp_path, refused):
    train = ("train", "--data", data, "--labels", "click")
    assert f"no schema file {tmp_path / 's.json'}" in refused(
        *train, "--schema", tmp_path / "s.json")
    (tmp_path / "other.json").write_text(json.dumps({"features": []}))
    assert "is not a schema file from `python -m tfmtl schema`" in refused(
        *train, "--schema", tmp_path / "other.json")


def test_parquet_directory_refusals(tmp_path, refused):
    folder = tmp_path / "parts"
    folder.mkdir()
    rows().to_parquet(folder / "a.parquet")
    assert f"--labels is needed with parquet files ({folder})" in refused(
        "train", "--data", folder)
    assert "--chunk-rows must be positive" in refused(
        "train", "--data", folder, "--labels", "click", "--chunk-rows", "0")
    assert "--exclude names column(s) ['colour'] not in" in refused(
        "train", "--data", folder, "--labels", "click", "--exclude", "colour")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"No .parquet files in {empty}" in refused("train", "--data", empty, "--labels", "click")


def test_search_refusals_come_before_the_data_is_read(tmp_path, refused):
    # A data path that does not exist: the warm-up check must answer first.
    assert "--warmup 5 must be at least 0 and below --epochs 3" in refused(
        "search", "--data", tmp_path / "missing.parquet", "--labels", "click", "--epochs", "3")


def test_search_names_the_default_chosen_that_does_not_fit(data, refused):
    line = refused("search", "--data", data, "--labels", "click,buy", "--experts", "4",
                   "--epochs", "2", "--warmup", "1")
    assert ("chosen (experts kept per task) must be in [1, num_experts=4]. Received: 6 "
            "(the default for 2 tasks)") in line


def test_export_refusals(tmp_path, refused):
    base = ("export", "--base-dir", tmp_path / "served")
    assert f"no model at {tmp_path / 'm.keras'}" in refused(
        *base, "--model-dir", tmp_path / "m.keras")
    assert "must hold exactly one .keras file; found 0" in refused(*base, "--model-dir", tmp_path)


def test_library_entry_points_name_the_mistake():
    frame = rows()
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "buy"])
    with pytest.raises(TypeError, match=r"Received: tuple \(tfmtl.infer_schema returns "
                                        r"\(schema, tasks\): unpack it\)"):
        zoo.build("mmoe", tfmtl.infer_schema(frame, labels=["click"]), tasks)
    with pytest.raises(TypeError, match=r"one tfmtl.Task per label: Task\('click'\)"):
        zoo.build("mmoe", schema, ["click", "buy"])
    with pytest.raises(ValueError, match=r"Repeated task names: \['click'\]"):
        zoo.build("mmoe", schema, [Task("click"), Task("click")])
    with pytest.raises(ValueError, match="infer_schema needs at least one label column"):
        tfmtl.infer_schema(frame, labels=[])
    with pytest.raises(TypeError, match="infer_schema needs a pandas DataFrame"):
        tfmtl.infer_schema(frame.to_dict("list"), labels=["click"])
    with pytest.raises(KeyError, match=r"No feature 'usr' in the schema. Known: \['user', "):
        schema["usr"]
    with pytest.raises(ValueError, match=r"Task 'ctr': label must be a column name or a "
                                         r"non-empty tuple of column names. Received: label=\(\)"):
        Task("ctr", label=[])
    with pytest.raises(ValueError, match=r"Task 'buy': mask must be a column name. "
                                         r"Received: mask=\['click'\]"):
        Task("buy", mask=["click"])


def test_saliency_on_too_few_rows_says_what_to_change():
    from tfmtl.selection import field_saliency

    frame = rows()
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "buy"])
    model = zoo.build("mmoe", schema, tasks, field_mask=True, **tiny_hparams("mmoe"))
    with pytest.raises(ValueError, match=r"5 batches of 200 rows need 1000 rows; the data has "
                                         r"600: pass fewer batches or a smaller batch_size"):
        field_saliency(model, frame, batch_size=200, batches=5)


def test_fit_refusals_name_the_mistake():
    frame = rows()
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "buy"])
    model = zoo.build("mmoe", schema, tasks, **tiny_hparams("mmoe"))
    dataset = tf.data.Dataset.from_tensor_slices(dict(frame)).batch(64)
    with pytest.raises(ValueError, match="A fraction of a dataset cannot be held out: pass "
                                         "validation data"):
        tfmtl.fit(model, dataset, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"validation=0.5 of 1 rows leaves no rows"):
        tfmtl.fit(model, frame.head(1), validation=0.5, epochs=1, verbose=0)
    model.compile()
    with pytest.raises(ValueError, match="`y` must be a dict of label columns for a model that "
                                         "reads several"):
        model.fit(frame[["user", "price"]], frame["click"].to_numpy(), epochs=1, verbose=0)


def test_training_export_and_hyperparameter_refusals(tmp_path):
    import keras

    import export
    from tfmtl.data import split

    frame = rows()
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "buy"])
    with pytest.raises(ValueError, match=r"num_experts must be >= 1. Received: num_experts=0"):
        zoo.build("mmoe", schema, tasks, **{**tiny_hparams("mmoe"), "num_experts": 0})
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\). Received: dropout=1.0"):
        zoo.build("mmoe", schema, tasks, **{**tiny_hparams("mmoe"), "dropout": 1.0})
    with pytest.raises(ValueError, match=r"fractions must sum to 1. Received: \(0.5, 0.4\)"):
        split(frame, (0.5, 0.4))
    model = zoo.build("mmoe", schema, tasks, **tiny_hparams("mmoe"))
    dataset = tf.data.Dataset.from_tensor_slices(dict(frame)).batch(100)
    with pytest.raises(ValueError, match="Step checkpoints need in-memory training data"):
        tfmtl.fit(model, dataset, validation=dataset, epochs=1, verbose=0,
                  checkpoint_dir=tmp_path / "states", checkpoint_every=3)
    with pytest.raises(ValueError, match="every must be 'epoch' or a positive number of steps. "
                                         "Received: 0"):
        tfmtl.fit(model, frame, epochs=1, verbose=0, checkpoint_dir=tmp_path / "states",
                  checkpoint_every=0)
    model.compile()
    with pytest.raises(ValueError, match=r"sample_weight names unknown tasks \['clik'\]. "
                                         r"Tasks: \['click', 'buy'\]"):
        model.fit(frame, sample_weight={"clik": np.ones(len(frame))}, epochs=1, verbose=0)
    without_price = tf.data.Dataset.from_tensor_slices(
        dict(frame.drop(columns=["price"]))).batch(100)
    with pytest.raises(ValueError, match=r"Feature column\(s\) missing from the dataset: "
                                         r"\['price'\]"):
        model.predict(without_price, verbose=0)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="export.save needs a tfmtl model with its schema and "
                                         "tasks"):
        export.save(plain, str(tmp_path / "served"))
    with pytest.raises(ValueError, match=r"version must be >= 0. Received: version=-1"):
        export.save(model, str(tmp_path / "served"), version=-1)
    assert not (tmp_path / "served").exists()  # refused before anything was written


def test_facet_refusals_name_the_facet():
    from tfmtl.mfh import Facet, FacetedTasks

    behaviours = [Task("like"), Task("rating", "regression")]
    group = Facet("group", ("new", "low", "high"), "activity", boundaries=(10, 20))
    cases = [
        (lambda: Facet("group", ("new", "new"), "activity", boundaries=(10,)),
         r"Facet 'group': values must be unique and non-empty"),
        (lambda: Facet("group", ("new", "old"), "activity", boundaries=(10,), keys=("a", "b")),
         r"Facet 'group': give boundaries or keys, not both"),
        (lambda: Facet("group", ("new", "low", "high"), "activity", boundaries=(20, 10)),
         r"Facet 'group': boundaries must be 2 finite, strictly increasing numbers. "
         r"Received: \(20, 10\)"),
        (lambda: Facet("os", ("ios", "android"), "os", keys=("iOS",)),
         r"Facet 'os': keys must be 2 unique column values"),
        (lambda: FacetedTasks(behaviours, [group, group]),
         r"Facet names must be unique \(and not 'behaviour'\)"),
        (lambda: FacetedTasks([Task("like"), Task("new")], [group]),
         r"Behaviour names and facet values must be unique across facets"),
        (lambda: FacetedTasks(behaviours, [group], other_weight=1.0),
         r"other_weight must be in \[0, 1\). Received: 1.0"),
        (lambda: FacetedTasks(behaviours, [group], sharing="both"),
         r"sharing must be one of .* Received: 'both'"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_an_architecture_refuses_tasks_it_was_not_searched_for(tmp_path, refused, data):
    from tfmtl.search import Architecture

    spec = dict(tasks=["ok", "like"], interaction="skip", experts=[["mlp_16"], ["skip"]],
                task_experts={"ok": [0, 1], "like": [1]}, embedding_dim=4, units=8,
                tower_units=(8,))
    with pytest.raises(ValueError, match=r"No experts selected for tasks \['like'\]"):
        Architecture(**{**spec, "task_experts": {"ok": [0]}})
    with pytest.raises(ValueError, match=r"Task 'like': expert indices must be in 0..1. "
                                         r"Received: \[2\]"):
        Architecture(**{**spec, "task_experts": {"ok": [0], "like": [2]}})
    Architecture(**spec).save(tmp_path / "arch.json")
    assert ("The architecture has no experts for ['buy', 'click']; it was searched for "
            "['ok', 'like']") in refused("train", "--data", data, "--labels", "click,buy",
                                         "--architecture", tmp_path / "arch.json", "--epochs", "1")


def test_datasets_of_the_wrong_shape_are_named():
    frame = rows()
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "buy"])
    model = zoo.build("mmoe", schema, tasks, **tiny_hparams("mmoe"))
    model.compile()
    features = {c: frame[c].to_numpy() for c in ("user", "price")}
    labels = {c: frame[c].to_numpy() for c in ("click", "buy")}

    def dataset(*parts):
        return tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0]).batch(100)

    with pytest.raises(ValueError, match=r"A dataset for a tfmtl model must hold dicts of "
                                         r"columns, or \(x, y\[, sample_weight\]\) tuples"):
        model.fit(dataset(frame[["user", "price"]].to_numpy()), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"A dataset of tuples must hold \(x, y\) or "
                                         r"\(x, y, sample_weight\) with x a dict of columns"):
        model.fit(dataset(frame[["user", "price"]].to_numpy(), labels), epochs=1, verbose=0)
    text = {**labels, "click": np.where(labels["click"] == 1, "yes", "no")}
    with pytest.raises(ValueError, match="Column 'click' must be numeric. Received a string "
                                         "column."):
        model.fit(dataset(features, text), epochs=1, verbose=0)
    # Integer ids given as their digits read as the ids; other text is named.
    as_text = model.predict({**features, "user": frame.user.astype(str).to_numpy()}, verbose=0)
    np.testing.assert_array_equal(as_text["click"], model.predict(features, verbose=0)["click"])
    with pytest.raises(ValueError, match=r"Feature 'user' is numeric but has 600 value\(s\) that "
                                         r"are not numbers, e.g. \['u25'"):
        model.predict({**features, "user": np.array([f"u{u}" for u in frame.user])}, verbose=0)
