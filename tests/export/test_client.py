"""Clients against a local stand-in server (and a real one when installed)."""

import shutil
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

import export
from tests.export.fake_server import FakeServing, start_grpc, start_rest
from tests.export.test_export import trained


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("served")
    model, data = trained("mmoe")
    path = export.save(model, str(base / "ranker"), sample=data)
    rows = data.head(6)
    expected = {k: v[:, 0] for k, v in model.predict(rows, verbose=0).items()}
    features = {c: rows[c].tolist() for c in model.schema.names}
    return path, features, expected, model


@pytest.fixture(params=["grpc", "rest"])
def server(request, served):
    path = served[0]
    servicer = FakeServing("ranker", path)
    if request.param == "grpc":
        handle, target = start_grpc(servicer)
        yield servicer, target
        handle.stop(0)
    else:
        handle, target = start_rest(servicer)
        yield servicer, target
        handle.shutdown()


def test_client_predicts_per_task(server, served):
    _, target = server
    _, features, expected, _ = served
    client = export.Client(target, "ranker")  # input dtypes from the server's metadata
    outputs = client.predict(features)
    assert set(outputs) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(outputs[key], value, atol=1e-5)
    one = client.predict({k: v[0] for k, v in features.items()})  # scalars: a batch of one
    assert all(v.shape == (1,) for v in one.values())
    client.close()


def test_client_errors_are_clear(server, served):
    servicer, target = server
    _, features, _, model = served
    specs = {f.name: tf.as_dtype(f.dtype) for f in model.schema}
    client = export.Client(target, "ranker", specs=specs, timeout=1.0)
    with pytest.raises(ValueError, match=r"Missing feature\(s\) \['city'\]"):
        client.predict({k: v for k, v in features.items() if k != "city"})
    with pytest.raises(ValueError, match=r"Unknown feature\(s\) \['colour'\]"):
        client.predict({**features, "colour": ["red"] * 6})
    with pytest.raises(ValueError, match="Feature 'user_id' takes integers"):
        client.predict({**features, "user_id": [str(v) for v in features["user_id"]]})
    with pytest.raises(ValueError, match="Feature 'city' takes strings"):
        client.predict({**features, "city": list(range(6))})
    with pytest.raises(ValueError, match=r"Feature 'price' takes numbers \(float32\)"):
        client.predict({**features, "price": ["cheap"] * 6})
    with pytest.raises(ValueError, match=r"'price' must be one value per row.*\(3, 2\)"):
        client.predict({**features, "price": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"Features have different lengths: .*'price': 5"):
        client.predict({**features, "price": features["price"][:5]})
    with pytest.raises(export.ServingError, match="has no model 'ranker2'"):
        export.Client(target, "ranker2", specs=specs).predict(features)
    servicer.delay = 2.0
    try:
        with pytest.raises(export.ServingError, match="did not answer within 1 s"):
            client.predict(features)
    finally:
        servicer.delay = 0.0


def test_no_server_answers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on
    with pytest.raises(export.ServingError, match="No server answers|did not answer"):
        export.Client(f"127.0.0.1:{port}", "ranker", specs={"a": tf.int64}, timeout=1).predict({"a": [1]})
    with pytest.raises(export.ServingError, match="No server answers"):
        export.Client(f"http://127.0.0.1:{port}", "ranker", specs={"a": tf.int64}, timeout=1).predict({"a": [1]})


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="no tensorflow_model_server on PATH (not installable from PyPI or Debian)")
def test_real_tensorflow_model_server(served, tmp_path):
    path, features, expected, _ = served
    base = str(tmp_path / "ranker")
    shutil.copytree(path, f"{base}/1")
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0)), b.bind(("127.0.0.1", 0))
        grpc_port, rest_port = a.getsockname()[1], b.getsockname()[1]
    server = subprocess.Popen(["tensorflow_model_server", f"--port={grpc_port}",
                               f"--rest_api_port={rest_port}", "--model_name=ranker",
                               f"--model_base_path={base}"])
    try:
        client = export.Client(f"127.0.0.1:{grpc_port}", "ranker", timeout=5)
        for _ in range(60):
            try:
                outputs = client.predict(features)
                break
            except export.ServingError:
                time.sleep(1)
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[key], value, atol=1e-5)
        rest = export.Client(f"http://127.0.0.1:{rest_port}", "ranker").predict(features)
        for key, value in expected.items():
            np.testing.assert_allclose(rest[key], value, atol=1e-5)
    finally:
        server.kill()
