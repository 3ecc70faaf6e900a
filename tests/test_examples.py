"""The quick-start notebook runs top to bottom (in its small setting)."""

import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TFMTL_QUICK", "1")
    monkeypatch.setenv("TFMTL_EXAMPLES_OUT", str(tmp_path))
    with open(os.path.join(ROOT, "examples", "quickstart.ipynb")) as file:
        notebook = json.load(file)
    namespace = {"__name__": "__main__"}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)
    assert namespace["served_equals_keras"]
    assert set(namespace["results"]) == {"like", "rating"}
    for name in ("quickstart_curves.png", "quickstart_gates.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
