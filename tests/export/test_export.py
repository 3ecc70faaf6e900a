"""SavedModels that TF Serving loads as they are."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import export
import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tests.zoo.test_zoo import TWO_TASK, frame

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FRESH_LOAD = """
import json, sys, numpy as np, tensorflow as tf
for path, x_file, y_file in json.load(open(sys.argv[1])):
    loaded = tf.saved_model.load(path)
    x = dict(np.load(x_file, allow_pickle=True))
    out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    np.savez(y_file, **{k: v.numpy() for k, v in out.items()})
"""


def trained(name, rows=400):
    data = frame(rows)
    labels = ["click", "buy"] if name in TWO_TASK else ["click", "buy", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels, masks={"buy": "click"})
    model = zoo.build(name, schema, tasks, **tiny_hparams(name, tasks))
    model.compile()
    model.fit(data, epochs=1, batch_size=128, verbose=0)
    return model, data


def signature_outputs(path, signature):
    """The output names of a signature as TF Serving (and `saved_model_cli show`) reads them."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return set(proto.meta_graphs[0].signature_def[signature].outputs)


@pytest.mark.parametrize("half", [0, 1])
def test_saved_models_in_a_fresh_process_equal_keras(half, tmp_path):
    """Every zoo model (in two halves): exported, loaded by one fresh process (no tfmtl, no Keras)."""
    names = zoo.list()[half::2]
    jobs, expected, models = [], {}, {}
    for name in names:
        keras.utils.set_random_seed(0)
        model, data = trained(name)
        path = export.save(model, str(tmp_path / name), sample=data)
        x = tfmtl.data.features_from(data.head(40), model.schema)
        expected[name] = model.predict(x, verbose=0)
        models[name] = model
        np.savez(tmp_path / f"{name}_x.npz", **x)
        jobs.append([path, str(tmp_path / f"{name}_x.npz"), str(tmp_path / f"{name}_y.npz")])
        keras.backend.clear_session()
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    subprocess.run([sys.executable, "-c", FRESH_LOAD, str(tmp_path / "jobs.json")], check=True,
                   cwd=str(tmp_path))
    for name, (path, _, served_file) in zip(names, jobs):
        model = models[name]
        served = dict(np.load(served_file))
        assert set(served) == {t.name for t in model.tasks if not t.auxiliary}, name
        assert not any("aux" in key for key in served), name
        for key, value in served.items():
            assert value.shape == (40,), (name, key)
            np.testing.assert_allclose(value, expected[name][key][:, 0], atol=1e-5,
                                       err_msg=f"{name}/{key}")
        for signature in ("serving_default", export.EXAMPLES_SIGNATURE):
            outputs = signature_outputs(path, signature)
            assert outputs == {t.name for t in model.tasks if not t.auxiliary}, (name, outputs)


def test_signatures_requests_and_warmup_agree(tmp_path):
    model, data = trained("ple")
    path = export.save(model, str(tmp_path / "ranker"), sample=data, warmup_rows=5)
    loaded = tf.saved_model.load(path)
    rows = data.head(7)
    x = tfmtl.data.features_from(rows, model.schema)
    expected = {t.name: model.predict(x, verbose=0)[t.name][:, 0] for t in model.tasks}

    # A PredictRequest from Python values, decoded as TF Serving decodes it.
    specs = {f.name: tf.as_dtype(f.dtype) for f in model.schema}
    plain = {c: rows[c].tolist() for c in model.schema.names}
    request = export.build_request(plain, specs, "ranker")
    decoded = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    out = loaded.signatures["serving_default"](**decoded)
    for key in expected:
        np.testing.assert_allclose(out[key].numpy(), expected[key], atol=1e-5)

    # The tf.Example signature; multi-valued features as bytes lists.
    examples = []
    for i in range(len(rows)):
        feature = {}
        for f in model.schema:
            value = rows[f.name].iloc[i]
            if isinstance(f, tfmtl.SequenceFeature):
                values = [v.encode() for v in value.split("|") if v]
                feature[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
            elif isinstance(f, tfmtl.DenseFeature):
                feature[f.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            elif f.dtype == "int64":
                feature[f.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                feature[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    out = loaded.signatures[export.EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    for key in expected:
        np.testing.assert_allclose(out[key].numpy(), expected[key], atol=1e-5)

    # Warm-up records: real rows, served with the same outputs.
    warmup = export.read_warmup(path)
    assert len(warmup) == 1 and warmup[0].model_spec.name == "ranker"
    decoded = {k: tf.constant(tf.make_ndarray(v)) for k, v in warmup[0].inputs.items()}
    out = loaded.signatures["serving_default"](**decoded)
    for key in expected:
        np.testing.assert_allclose(out[key].numpy(), expected[key][:5], atol=1e-5)


def test_unseen_values_empty_batch_and_batch_of_one(tmp_path):
    model, data = trained("mmoe")
    loaded = tf.saved_model.load(export.save(model, str(tmp_path / "m")))
    serve = loaded.signatures["serving_default"]
    odd = {"user_id": tf.constant([99999], tf.int64), "city": tf.constant(["atlantis"]),
           "genres": tf.constant(["zz|yy"]), "price": tf.constant([np.nan], tf.float32)}
    one = serve(**odd)
    assert all(v.shape == (1,) and np.isfinite(v.numpy()).all() for v in one.values())
    empty = serve(**{k: v[:0] for k, v in odd.items()})
    assert all(v.shape == (0,) for v in empty.values())
    none = loaded.signatures[export.EXAMPLES_SIGNATURE](examples=tf.constant([b""]))
    assert all(np.isfinite(v.numpy()).all() for v in none.values())  # every feature missing


def test_warmup_without_a_sample_is_made_from_the_schema(tmp_path):
    model, data = trained("mmoe")
    path = export.save(model, str(tmp_path / "m"), warmup_rows=6)
    warmup = export.read_warmup(path)
    assert len(warmup) == 1
    decoded = {k: tf.constant(tf.make_ndarray(v)) for k, v in warmup[0].inputs.items()}
    assert set(decoded) == set(model.schema.internal_names.values())
    assert all(v.shape == (6,) for v in decoded.values())
    assert set(decoded["city"].numpy().astype(str)) <= set(model.schema["city"].vocabulary)
    np.testing.assert_allclose(decoded["price"].numpy(), model.schema["price"].mean)
    out = tf.saved_model.load(path).signatures["serving_default"](**decoded)
    assert all(np.isfinite(v.numpy()).all() and v.shape == (6,) for v in out.values())
    with pytest.raises(ValueError, match=r"Feature column\(s\) missing from the data: \['price'\]"):
        export.save(model, str(tmp_path / "m"), sample=data.drop(columns=["price"]))
    assert export.versions(str(tmp_path / "m")) == [1]  # checked before anything is written


def test_versions_are_numbered_and_never_overwritten(tmp_path):
    model, _ = trained("shared_bottom")
    base = str(tmp_path / "ranker")
    assert export.save(model, base).endswith("/1")
    assert export.save(model, base).endswith("/2")
    assert export.save(model, base, version=7).endswith("/7")
    assert export.save(model, base).endswith("/8")
    with pytest.raises(FileExistsError, match="Version 2 already exists"):
        export.save(model, base, version=2)
    assert export.versions(base) == [1, 2, 7, 8]
    assert sorted(os.listdir(base)) == ["1", "2", "7", "8"]  # no temporary left


KILLED_EXPORT = """
import sys, time
sys.path.insert(0, sys.argv[3])
import keras, export, export.saved_model as sm
model = keras.models.load_model(sys.argv[1])
write = sm._write
def slow(model, path):
    write(model, path)
    print("written", flush=True)
    time.sleep(60)
sm._write = slow
export.save(model, sys.argv[2])
"""


def test_a_killed_export_leaves_no_version(tmp_path):
    model, _ = trained("mmoe")
    model.save(tmp_path / "m.keras")
    base = tmp_path / "ranker"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(tmp_path / "m.keras"), str(base), ROOT],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "written"  # the SavedModel is on disk...
    os.kill(process.pid, signal.SIGKILL)  # ...and the exporter dies before the rename
    process.wait()
    assert export.versions(str(base)) == []
    assert all(not name.isdigit() for name in os.listdir(base))
    assert export.save(model, str(base)).endswith("/1")  # the next export is unaffected


def test_model_config_and_batching_file(tmp_path):
    config = export.model_config({"ranker": tmp_path / "ranker", "ads": "/models/ads"},
                                 tmp_path / "models.config", batching_path=tmp_path / "batching.txt",
                                 max_batch_size=128, allowed_batch_sizes=[32, 64, 128])
    parsed = text_format.Parse((tmp_path / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert parsed == config
    assert [(c.name, c.base_path, c.model_platform) for c in parsed.model_config_list.config] == [
        ("ranker", str(tmp_path / "ranker"), "tensorflow"), ("ads", "/models/ads", "tensorflow")]
    batching = (tmp_path / "batching.txt").read_text()
    assert "max_batch_size { value: 128 }" in batching
    assert batching.count("allowed_batch_sizes") == 3
    with pytest.raises(ValueError, match="Repeated model names"):
        export.model_config([("a", "/x"), ("a", "/y")], tmp_path / "c")


def test_cli_export_and_serve_check(tmp_path):
    model, data = trained("cgc")
    model.save(tmp_path / "model.keras")
    data.to_parquet(tmp_path / "sample.parquet")
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = lambda *a: subprocess.run([sys.executable, "-m", "tfmtl", *a], capture_output=True,  # noqa: E731
                                    text=True, env=env, cwd=ROOT)
    done = run("export", "--model-dir", str(tmp_path), "--base-dir", str(tmp_path / "served"),
               "--sample", str(tmp_path / "sample.parquet"))
    assert done.returncode == 0, done.stderr[-2000:]
    checked = run("serve-check", "--base-dir", str(tmp_path / "served"))
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert "signature serving_default:" in checked.stdout
    assert "signature predict_examples:" in checked.stdout
    assert "ok: 1 warm-up request(s) served" in checked.stdout
    for task in model.tasks:
        assert f"output {task.name}: float32 (None,)" in checked.stdout
    missing = run("serve-check", "--base-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no versions under" in missing.stderr
