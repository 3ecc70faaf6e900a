"""Nothing silently wrong: bad numbers, odd columns, CLI input, resume after a kill, TensorBoard."""

import os
import signal
import subprocess
import sys
import re
import time

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import export
import export.serve_check
import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tfmtl.checkpoint import completed_steps
from tfmtl.cli import main as cli_main
from tfmtl.models.multi_task_model import TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shop(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user": rng.integers(0, 60, n), "price": rng.gamma(2.0, 5.0, n),
                          "city": rng.choice(["a", "b", "c"], n)})
    signal_ = (frame.user % 3 - 1) + (frame.price - 10) / 5
    frame["click"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal_))).astype(int)
    return frame


def build(frame, name="mmoe", **hparams):
    keras.utils.set_random_seed(0)
    schema, tasks = tfmtl.infer_schema(frame, labels=["click"])
    model = zoo.build(name, schema, tasks, **{**tiny_hparams(name), **hparams})
    model.compile()
    return model


def test_inf_in_a_feature_is_named_and_treated_as_missing():
    frame = shop()
    frame.loc[:2, "price"] = np.inf
    schema, tasks = tfmtl.infer_schema(frame, labels=["click"])
    assert np.isfinite(schema["price"].mean)  # statistics of the finite values
    assert "price: 3 inf value(s)" in "\n".join(schema.report.warnings)
    model = build(frame)
    with pytest.warns(UserWarning, match=r"Feature 'price' has 3 inf value\(s\) in 3000 rows"):
        model.fit(frame, epochs=2, batch_size=256, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    scores = model.predict(frame, verbose=0)["click"][:, 0]
    assert np.isfinite(scores).all() and scores.std() > 0.01  # not one constant score
    odd = frame.iloc[[5] * 4].assign(price=[np.inf, -np.inf, np.nan, 7.0])  # one row, 4 prices
    out = model.predict(odd, verbose=0)["click"][:, 0]
    assert out[0] == pytest.approx(out[2], abs=1e-6) and out[1] == pytest.approx(out[2], abs=1e-6)


def test_a_weight_or_loss_going_non_finite_stops_training_with_a_message():
    frame = shop(600)
    model = build(frame)
    model.compile(optimizer=keras.optimizers.SGD(1e12))
    with pytest.raises(TrainingDiverged, match="Training diverged in epoch 1.*Lower the learning"):
        model.fit(frame, epochs=3, batch_size=100, verbose=0)


def test_a_constant_training_column_is_centred_not_blown_up():
    frame = shop(1000).assign(size=3.0)
    schema, _ = tfmtl.infer_schema(frame, labels=["click"])
    assert "size: constant" in "\n".join(schema.report.warnings)
    model = build(frame)
    model.fit(frame, epochs=1, verbose=0)
    a = model.predict(frame.head(50), verbose=0)["click"]
    b = model.predict(frame.head(50).assign(size=3.001), verbose=0)["click"]
    np.testing.assert_allclose(a, b, atol=1e-3)  # 1/sqrt(1e-12) made this 0 or 1
    assert not np.allclose(b, np.round(b))


def test_the_schema_report_names_suspect_columns():
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({
        "item_id": np.where(rng.random(n) < 0.05, np.nan, rng.integers(0, 40, n)),
        "event_time": 1.6e9 + rng.integers(0, 10**7, n).astype(float),
        "order_id": np.arange(n), "flag": 1, "city": rng.choice(["x", "y"], n),
    })
    frame["click"] = (rng.random(n) < 0.3).astype(int)
    frame["buy"] = frame["click"]  # an outcome left in as a feature
    frame["returned"] = frame["click"] * (rng.random(n) < 0.3)  # a later step of the funnel
    frame["promo"] = (rng.random(n) < 0.3).astype(int)  # 0/1, independent of the label
    schema, _ = tfmtl.infer_schema(frame, labels=["click"])
    text = str(schema.report)
    warned = dict(w.split(": ", 1) for w in schema.report.warnings)
    assert "integer-valued floats with NaN" in warned["item_id"]
    assert "timestamp" in warned["event_time"]
    assert "near-unique" in warned["order_id"] and "constant" in warned["flag"]
    assert "alone predicts label 'click'" in warned["buy"] and "city" not in warned
    assert "1 only where label 'click' is 1" in warned["returned"] and "promo" not in warned
    missing = f"{100 * frame.item_id.isna().mean():.1f}%"
    row = next(line for line in text.splitlines() if line.startswith("item_id"))
    assert missing in row.split()


def test_the_report_reads_integer_ids_as_their_strings_would_read():
    # Integer and boolean columns are counted and grouped as they are, not one string per row
    # (memory); the report must not change: the same details and warnings as the strings give.
    rng = np.random.default_rng(1)
    n = 3000
    ids = {"user": rng.integers(0, 50, n), "order": np.arange(n) * 7, "flag": np.full(n, 3),
           "seen": rng.random(n) < 0.5}
    click = (rng.random(n) < 0.3).astype(int)
    leak = click * 5 + 1
    as_is = pd.DataFrame({**ids, "leak": leak, "click": click})
    as_text = pd.DataFrame({**{k: v.astype(str) for k, v in ids.items()},
                            "leak": leak.astype(str), "click": click})
    reports = [tfmtl.infer_schema(f, labels=["click"], categorical=list(ids) + ["leak"])[0].report
               for f in (as_is, as_text)]
    rows = [[(c.column, c.detail, c.warnings) for c in r.columns] for r in reports]
    assert rows[0] == rows[1]
    warned = dict(w.split(": ", 1) for w in reports[0].warnings)
    assert "near-unique" in warned["order"] and "constant" in warned["flag"]
    assert "alone predicts label 'click'" in warned["leak"] and "user" not in warned


def test_text_and_fractions_in_typed_columns_are_named():
    frame = shop(300)
    model = build(frame)
    with pytest.raises(ValueError, match=r"Feature 'price' is numeric but has 2 value\(s\) that "
                                         r"are not numbers, e.g. \['n/a'\]"):
        model.fit(frame.assign(price=["n/a", "n/a"] + list(frame.price[2:])), verbose=0)
    with pytest.raises(ValueError, match=r"Feature 'price' is numeric"):
        model.predict(frame.head(3).assign(price=["1.5", "n/a", ""]), verbose=0)
    with pytest.raises(ValueError, match=r"Feature 'user' holds integer ids but has 1 value\(s\) "
                                         r"with a fraction, e.g. \[12.5\]"):
        model.predict(frame.head(3).assign(user=[1.0, 12.5, np.nan]), verbose=0)
    one = model.predict({"user": 3, "price": 9.5, "city": "a"}, verbose=0)  # a row of scalars
    assert one["click"].shape == (1, 1)


def test_a_serving_error_names_the_feature(tmp_path, capsys):
    frame = shop(300)
    model = build(frame)
    version = export.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(version)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        loaded.signatures["serving_default"](city=tf.constant(["a"]), price=tf.constant(["x"]),
                                             user=tf.constant([1], tf.int64))
    keys = sorted(model.schema.internal_names.values())
    assert "[feature 'price']" in export.client.name_inputs(error.value.message, keys)
    # serve-check names it too (its own copy of the rule: it imports no tfmtl code).
    bad = export.predict_request({"city": ["a"], "price": ["x"], "user": [1]}, "m")
    export.warmup.write_warmup(version, [bad])
    assert export.serve_check.main(version) == 1
    assert "[feature 'price']" in capsys.readouterr().out
    # inf and -inf are missing values in the SavedModel too: the mean, as NaN is.
    outputs = loaded.signatures["serving_default"](
        city=tf.constant(["a"] * 3), price=tf.constant([np.inf, -np.inf, np.nan], tf.float32),
        user=tf.constant([1] * 3, tf.int64))
    for scores in outputs.values():
        assert np.isfinite(scores.numpy()).all()
        np.testing.assert_allclose(scores.numpy()[:2], scores.numpy()[[2, 2]], rtol=1e-6)


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "tfmtl", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_cli_parses_strictly_and_warns_of_leaks(tmp_path, capsys):
    frame = shop(2000)
    frame["buy"] = (frame.click * (np.random.default_rng(1).random(len(frame)) < 0.4)).astype(int)
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path)
    # Exit status 2 through `python -m tfmtl` once; the other bad inputs in-process.
    bad = cli("train", "--data", str(path), "--labels", "click,buy", "--masks", "buy:click")
    assert bad.returncode == 2 and "--masks takes task=mask_column pairs" in bad.stderr

    def refused(*args):
        try:
            code = cli_main(["train", "--data", str(path), "--labels", "click", *args])
        except SystemExit as stop:  # argparse's own refusals
            code = stop.code
        out, err = capsys.readouterr()
        assert code == 2, (out, err)
        return out, err

    assert "not in --labels" in refused("--masks", "buy=click")[1]
    every = refused("--checkpoint-every", "often")[1]
    assert "--checkpoint-every takes 'epoch' or a number" in every
    (tmp_path / "taken").write_text("x")
    out, err = refused("--export", str(tmp_path / "taken"))
    assert "is a file" in err and "Epoch" not in out
    for option in ("--checkpoint-dir", "--tensorboard"):
        taken = str(tmp_path / "taken")
        assert f"{option} {taken} is a file" in refused(option, taken)[1]
    (tmp_path / "kept.keras").write_text("x")
    out, err = refused("--save", str(tmp_path / "kept.keras"))
    assert "exists; remove it or choose another path" in err and "Epoch" not in out
    leaky = cli("train", "--data", str(path), "--labels", "click", "--model", "mmoe", "--epochs",
                "1", "--quiet", "--set", "num_experts=2", "--set", "expert_units=[8]")
    assert leaky.returncode == 0, leaky.stderr[-1500:]
    # buy: not a perfect predictor, but a later outcome of the click (1 only where click is 1)
    assert "a leak? exclude it" not in leaky.stdout
    assert re.search(r"buy.*1 only where label 'click' is 1", leaky.stdout), leaky.stdout[-2000:]
    excluded = cli("train", "--data", str(path), "--labels", "click", "--exclude", "buy",
                   "--model", "mmoe", "--epochs", "1", "--quiet", "--set", "num_experts=2")
    assert excluded.returncode == 0 and "\nbuy " not in excluded.stdout
    # One label: the metrics table still has its rows (Keras drops the task prefix).
    table = excluded.stdout.split("Test metrics")[1]
    assert re.search(r"click\s+binary\s+auc\s+0\.\d{4}", table), table
    assert re.search(r"click\s+binary\s+logloss\s+0\.\d{4}", table), table
    frame["buy"] = frame["click"]  # a perfect proxy
    frame.to_parquet(path)
    leak = cli("train", "--data", str(path), "--labels", "click", "--epochs", "1", "--quiet",
               "--set", "num_experts=2", "--model", "mmoe")
    assert "buy" in leak.stdout and "a leak? exclude it" in leak.stdout


SCRIPT = """
import sys
import numpy as np, pandas as pd
import tfmtl, zoo
rng = np.random.default_rng(0)
n = 3000
frame = pd.DataFrame({"user": rng.integers(0, 60, n), "price": rng.gamma(2.0, 5.0, n)})
frame["click"] = (rng.random(n) < 1 / (1 + np.exp(-((frame.user % 3 - 1) + (frame.price - 10) / 5)))).astype(int)
schema, tasks = tfmtl.infer_schema(frame, labels=["click"])
import keras
keras.utils.set_random_seed(0)
model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(8,))
history = tfmtl.fit(model, frame, epochs=6, batch_size=64, verbose=0, seed=0,
                    checkpoint_dir=sys.argv[1], checkpoint_every=7)
np.savez(sys.argv[2], *model.get_weights())
print("epochs", len(history.history["loss"]))
"""


def test_training_resumes_after_sigkill_on_the_same_steps(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    # The working tree's tfmtl, not an installed copy (the script's folder comes first).
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    reference = subprocess.run([sys.executable, str(script), str(tmp_path / "ref_ckpt"),
                                str(tmp_path / "ref.npz")], env=env, capture_output=True,
                               text=True)
    assert reference.returncode == 0, reference.stderr[-1500:]
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "ckpt"),
                                str(tmp_path / "run.npz")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once a checkpoint within epoch 3 or later exists
        state = completed_steps(tmp_path / "ckpt")
        if state is not None and state >= (2, 1):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = completed_steps(tmp_path / "ckpt")
    assert killed_at is not None and killed_at[0] >= 2, killed_at
    assert not (tmp_path / "run.npz").exists()
    resumed = subprocess.run([sys.executable, str(script), str(tmp_path / "ckpt"),
                              str(tmp_path / "run.npz")], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert "epochs 6" in resumed.stdout  # the history of the killed run is kept
    a, b = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "run.npz")
    for key in a.files:
        np.testing.assert_allclose(b[key], a[key], atol=1e-5)
    assert completed_steps(tmp_path / "ckpt") is None  # removed when training ended


class _Interrupt(keras.callbacks.Callback):
    """Counts the batches of each epoch and the train begins/ends; raises at `at`."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.batches, self.begins, self.ends = at, {}, 0, 0

    def on_train_begin(self, logs=None):
        self.begins += 1

    def on_train_end(self, logs=None):
        self.ends += 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches[self.epoch] = self.batches.get(self.epoch, 0) + 1
        if self.at == (self.epoch, batch):
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):  # runs before the checkpoint's epoch-end save
        if self.at == (epoch, "end"):
            raise KeyboardInterrupt


def _model(frame, variant):
    if variant == "dropout":  # masks drawn from the saved seed state
        return build(frame, dropout=0.3, tower_dropout=0.3)
    model = build(frame)
    if variant == "ema":  # the averages written into the model at the very end only
        model.compile(optimizer=keras.optimizers.Adam(use_ema=True, ema_overwrite_frequency=None))
    return model


@pytest.mark.parametrize("every, at, saved, variant", [
    (7, (2, 10), (2, 7), ""),    # mid-epoch
    (7, (2, 10), (2, 7), "dropout"),
    (7, (2, 10), (2, 7), "ema"),
    (7, (2, 42), (2, 42), ""),   # one batch of the epoch left
    (43, (2, "end"), (2, 0), ""),  # after the last batch, before the epoch's end: no step save
])
def test_a_run_resumed_mid_epoch_ends_as_an_uninterrupted_run(tmp_path, every, at, saved,
                                                               variant):
    frame = shop(3000)  # 2,700 training rows: 43 batches of 64 an epoch
    options = dict(epochs=5, batch_size=64, verbose=0, seed=0, checkpoint_every=every)
    model = lambda: _model(frame, variant)  # noqa: E731
    reference = model()
    expected = tfmtl.fit(reference, frame, checkpoint_dir=tmp_path / "reference", **options)
    with pytest.raises(KeyboardInterrupt):
        tfmtl.fit(model(), frame, checkpoint_dir=tmp_path / "run", callbacks=[_Interrupt(at)],
                  **options)
    assert completed_steps(tmp_path / "run") == saved
    resumed, seen = model(), _Interrupt()
    history = tfmtl.fit(resumed, frame, checkpoint_dir=tmp_path / "run", callbacks=[seen],
                        **options)
    # Keras takes an epoch's length from the first one where the data states none: the later
    # epochs must not shrink to the resumed one's.
    assert seen.batches == {2: 43 - saved[1], 3: 43, 4: 43}
    assert (seen.begins, seen.ends) == (1, 1) and seen.params["epochs"] == 5
    assert seen.params["steps"] == 43 and not resumed.stop_training
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5)
    # The resumed epoch's logged training metrics cover the batches before the kill too.
    assert history.history.keys() == expected.history.keys()
    for key, values in expected.history.items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-4, err_msg=key)


def test_a_mid_epoch_checkpoint_resumed_with_other_batches_is_refused(tmp_path):
    frame = shop(3000)
    options = dict(epochs=2, verbose=0, seed=0, checkpoint_dir=tmp_path, checkpoint_every=7)
    with pytest.raises(KeyboardInterrupt):
        tfmtl.fit(build(frame), frame, batch_size=64, callbacks=[_Interrupt((0, 10))], **options)
    with pytest.raises(ValueError, match="written after step 7 of epoch 1; resume it with the "
                                         "training data and batch_size it was written with"):
        tfmtl.fit(build(frame), frame, batch_size=512, **options)  # 6 steps an epoch


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one(tmp_path):
    frame = shop(600)
    model = build(frame)
    tfmtl.fit(model, frame, epochs=1, batch_size=100, verbose=0)
    from tfmtl.checkpoint import Checkpoints

    keeper = Checkpoints(tmp_path, every=5)
    keeper.set_model(model)
    keeper.save(1, 0)
    (tmp_path / "state.npz.tmp.npz").write_bytes(b"half a file")  # a write cut short
    assert completed_steps(tmp_path) == (1, 0)
    fresh = build(frame)
    keeper = Checkpoints(tmp_path, every=5)
    keeper.set_model(fresh)
    assert keeper.restore() == (1, 0)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tensorboard_logs_per_task_curves(tmp_path):
    frame = shop(600)
    schema, _ = tfmtl.infer_schema(frame, labels=["click"])
    frame["rating"] = frame.price / 5
    schema, tasks = tfmtl.infer_schema(frame, labels=["click", "rating"])
    keras.utils.set_random_seed(0)
    model = zoo.build("mmoe", schema, tasks, **tiny_hparams("mmoe"))
    tfmtl.fit(model, frame, epochs=2, verbose=0, tensorboard=tmp_path / "logs")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for sub in ("train", "validation"):
        events = EventAccumulator(str(tmp_path / "logs" / sub))
        events.Reload()
        tags |= set(events.Tags()["scalars"]) | set(events.Tags().get("tensors", []))
    assert {"epoch_click_auc", "epoch_rating_mse"} <= tags, tags


def test_an_outside_script_imports_tfmtl_and_zoo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", "import tfmtl, zoo, export; "
                           "print(len(zoo.list()), tfmtl.__version__)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1500:]
    assert int(done.stdout.split()[0]) >= 16
