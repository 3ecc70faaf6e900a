"""The command line: training end to end, and bad input as one clear line."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "tfmtl", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=600)


def assert_one_clear_line(result, message):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tfmtl: error: ") and message in last, last


def test_models_lists_the_zoo():
    result = run("models")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.strip().splitlines()]
    import zoo

    assert names == zoo.list() and "mmoe" in names and "stem" in names


def test_unknown_model():
    assert_one_clear_line(run("train", "--model", "mmeo"), "unknown model 'mmeo'; known models: aitm")


def test_missing_file():
    assert_one_clear_line(run("train", "--data", "/no/such/file.parquet", "--labels", "y"),
                          "no data '/no/such/file.parquet'")


@pytest.fixture
def parquet(tmp_path):
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"user": rng.integers(0, 30, 3000), "price": rng.normal(size=3000)})
    data["click"] = ((data.user % 2 == 0) ^ (rng.random(3000) < 0.1)).astype(int)
    data["score"] = data.price * 2 + rng.normal(0, 0.1, 3000)
    path = tmp_path / "rows.parquet"
    data.to_parquet(path)
    return path, data


def test_label_column_that_does_not_exist(parquet):
    path, _ = parquet
    assert_one_clear_line(run("train", "--data", str(path), "--labels", "click,clicks"),
                          "label column(s) ['clicks'] not in rows.parquet")


def test_parquet_with_nan_labels(parquet, tmp_path):
    _, data = parquet
    data.loc[[3, 7, 11], "click"] = np.nan
    path = tmp_path / "nan.parquet"
    data.to_parquet(path)
    assert_one_clear_line(run("train", "--data", str(path), "--labels", "click,score"),
                          "label column 'click' has 3 NaN/inf value(s)")


def test_bad_hyperparameter(parquet):
    path, _ = parquet
    assert_one_clear_line(
        run("train", "--data", str(path), "--labels", "click", "--set", "num_expert=2"),
        "no hyperparameters ['num_expert']")


def test_train_a_parquet_file_end_to_end(parquet, tmp_path):
    path, _ = parquet
    result = run("train", "--model", "mmoe", "--data", str(path), "--labels", "click,score",
                 "--epochs", "4", "--batch-size", "64", "--set", "num_experts=2", "--set", "expert_units=[16]",
                 "--export", str(tmp_path / "served"), "--save", str(tmp_path / "m.keras"),
                 "--jit-compile")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Test metrics (300 held-out rows" in out
    table = {tuple(line.split()[:3]): float(line.split()[3]) for line in out.splitlines()
             if line.startswith(("click ", "score "))}
    assert table[("click", "binary", "auc")] > 0.8
    assert ("score", "regression", "mse") in table
    assert os.path.exists(tmp_path / "served" / "1" / "saved_model.pb")
    import keras

    import tfmtl  # noqa: F401  (registers the model's classes)

    assert keras.saving.load_model(tmp_path / "m.keras").jit_compile  # trained with XLA steps


def test_train_a_directory_of_parquet_files_streamed(parquet, tmp_path):
    _, data = parquet
    folder = tmp_path / "rows"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(data)), 3)):
        data.iloc[part].to_parquet(folder / f"part-{i}.parquet", row_group_size=400)
    result = run("train", "--model", "mmoe", "--data", str(folder), "--labels", "click,score",
                 "--epochs", "4", "--batch-size", "64", "--chunk-rows", "500", "--set",
                 "num_experts=2", "--set", "expert_units=[16]", "--export", str(tmp_path / "served"),
                 "--precision", "mixed_bfloat16")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    from tfmtl.data.pipeline import _split_rule, split_draws

    # The parts are drawn per row (seed 0, per file and row group): count them the same way.
    sizes = [0, 0, 0]
    for i in range(3):
        for g, rows in enumerate((400, 400, 200)):
            draws = split_draws(0, f"part-{i}.parquet", g, rows)
            for part in range(3):
                sizes[part] += int(_split_rule(((0.8, 0.1, 0.1), part))(draws).sum())
    assert f"inferred in one pass over the {sizes[0]} training rows of 3 file(s)" in out
    assert (f"{sizes[0]} train / {sizes[1]} validation / {sizes[2]} test rows, 2 features, "
            "tasks ['click', 'score']; mixed_bfloat16") in out
    assert f"Test metrics ({sizes[2]} held-out rows" in out
    table = {tuple(line.split()[:3]): float(line.split()[3]) for line in out.splitlines()
             if line.startswith(("click ", "score "))}
    assert table[("click", "binary", "auc")] > 0.8
    assert os.path.exists(tmp_path / "served" / "1" / "saved_model.pb")


def in_process(capsys, *args):
    """`python -m tfmtl ARGS` in this process (for input errors, caught before any training)."""
    from tfmtl.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def test_multi_worker_without_tf_config(parquet, capsys, monkeypatch):
    path, _ = parquet
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert_one_clear_line(in_process(capsys, "train", "--data", str(path), "--labels", "click",
                                     "--strategy", "multi-worker"), "TF_CONFIG")


def test_schema_inferred_once_as_json_then_given_to_train(parquet, tmp_path, capsys):
    path, data = parquet
    out = tmp_path / "schema.json"
    result = run("schema", "--data", str(path), "--labels", "click,score", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    import tfmtl
    from tfmtl.data import split

    train, _, _ = split(data, (0.8, 0.1, 0.1), seed=0)
    schema, tasks = tfmtl.infer_schema(train, labels=["click", "score"])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps({"schema": schema.get_config(),
                                           "tasks": [t.get_config() for t in tasks]}))
    assert_one_clear_line(in_process(capsys, "train", "--data", str(path), "--labels", "click",
                                     "--schema", str(out)), "differ from the tasks of")
