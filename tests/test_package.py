"""The package imports with KERAS_BACKEND unset or tensorflow, and says why not otherwise."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = "import tfmtl, zoo, export, keras; print(keras.backend.backend(), len(zoo.list()))"


@pytest.mark.parametrize("backend", [None, "tensorflow"])
def test_imports(backend):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend:
        env["KERAS_BACKEND"] = backend
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env={**env, "PYTHONPATH": ROOT}, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-1500:]
    import zoo

    assert result.stdout.split() == ["tensorflow", str(len(zoo.list()))]


def test_other_backend_is_refused_with_a_reason():
    env = {**os.environ, "KERAS_BACKEND": "numpy", "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-c", "import tfmtl"], capture_output=True, text=True,
                            env=env, cwd=ROOT)
    assert result.returncode != 0
    assert "tfmtl runs on the TensorFlow backend of Keras 3" in result.stderr
