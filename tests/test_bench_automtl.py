"""bench/automtl.py's report of the search's own spread (`--search-seed`)."""

import json
import sys

import pandas as pd
import pytest

from bench import automtl
from tfmtl.schema import Task


def test_search_seed_names_the_model_only_when_not_zero():
    assert automtl.label_of("automtl") == "automtl"
    assert automtl.label_of("automtl", 2) == "automtl (search seed 2)"
    assert automtl.label_of("w/o JSD", 1) == "w/o JSD (search seed 1)"
    assert automtl.label_of_base("automtl (search seed 12)") == "automtl"
    assert automtl.label_of_base("w/o JSD") == "w/o JSD"
    bf16 = automtl.label_of("automtl", 0, "mixed_bfloat16")
    assert bf16 == "automtl (mixed_bfloat16 search)"
    assert automtl.label_of("automtl", 3, "mixed_bfloat16") == (
        "automtl (search seed 3, mixed_bfloat16 search)")
    assert automtl.label_of_base(bf16) == "automtl"
    assert automtl.label_of_base("automtl (search seed 3, mixed_bfloat16 search)") == "automtl"
    assert automtl.float32_search("automtl (search seed 3)") and automtl.float32_search("automtl")
    assert not automtl.float32_search(bf16) and not automtl.float32_search("w/o JSD")


def test_search_spread_places_each_model_against_the_searches_range():
    rows = []
    means = {"automtl": 0.80, "automtl (search seed 1)": 0.82, "automtl (search seed 2)": 0.81,
             "mmoe": 0.83, "w/o JSD": 0.815, "w/o INT": 0.79}
    for model, mean in means.items():
        for seed, offset in enumerate((-0.001, 0.0, 0.001)):
            rows.append(dict(model=model, seed=seed, ok_auc=mean + offset, mtl_loss=1 - mean))
    frame = pd.DataFrame(rows)
    searched = {m: {"architecture": {"interaction": "cross_1", "task_experts": {"ok": [0, 1]},
                                     "info": {"seconds": 60.0, "peak_rss_mib": 100.0}}}
                for m in means if m.startswith("automtl")}
    lines = automtl.search_spread(frame, ["ok_auc", "mtl_loss"], searched)
    text = "\n".join(lines)
    assert "AutoMTL searched 3 times" in text
    assert "| automtl (search seed 1) | 0.8200 | 0.1800 | 60 | 100 | cross_1 | ok [0, 1] |" in text
    across = next(line for line in lines if line.startswith("| across searches"))
    assert "0.8100 ± 0.0100" in across and "0.1900 ± 0.0100" in across
    placed = {line.split(":")[0][2:]: line for line in lines
              if line.startswith("- ") and line.endswith("]")}
    assert set(placed) == {"mmoe", "w/o JSD", "w/o INT"}
    assert "- w/o JSD (1 search against 3): ok_auc -0.0050, p=0.750" in text
    assert "ok_auc 0.8300 above [0.8000, 0.8200]" in placed["mmoe"]
    assert "ok_auc 0.8150 inside [0.8000, 0.8200]" in placed["w/o JSD"]
    assert "mtl_loss 0.2100 above [0.1800, 0.2000]" in placed["w/o INT"]


def test_search_spread_is_silent_with_one_search():
    frame = pd.DataFrame([dict(model="automtl", seed=0, ok_auc=0.8),
                          dict(model="mmoe", seed=0, ok_auc=0.81)])
    assert automtl.search_spread(frame, ["ok_auc"], {}) == []


def test_search_spread_sets_each_ablations_searches_against_automtls():
    searches = {"automtl": (0.80, 0.47), "automtl (search seed 1)": (0.81, 0.46),
                "automtl (search seed 2)": (0.82, 0.48)}
    ablation = {"w/o INT": (0.78, 0.49), "w/o INT (search seed 1)": (0.79, 0.45),
                "w/o JSD": (0.70, 0.60)}  # searched once
    rows = [dict(model=m, seed=s, ok_auc=auc + d, mtl_loss=loss - d)
            for m, (auc, loss) in {**searches, **ablation}.items()
            for s, d in enumerate((-0.002, 0.002))]
    rows.append(dict(model="w/o INT (mixed_bfloat16 search)", seed=0, ok_auc=0.9, mtl_loss=0.1))
    lines = automtl.search_spread(pd.DataFrame(rows), ["ok_auc", "mtl_loss"], {})
    found = [line for line in lines if line.startswith("- w/o INT (2 searches")]
    assert len(found) == 1
    # One search: the smallest p is 1/4, reached here (0.70 below every AutoMTL search).
    once = [line for line in lines if line.startswith("- w/o JSD (1 search against 3)")]
    assert len(once) == 1 and "ok_auc +0.1100, p=0.250" in once[0]
    assert "mtl_loss -0.1300, p=0.250" in once[0]
    # ok: every AutoMTL search above both (1/C(5,3) = 0.1); MTL-Loss: 0.45 lies below
    # all three, 0.49 above: U = 3 of 6 pairs ahead, p = P(U >= 3) over the 10 splits.
    assert "ok_auc +0.0250, p=0.100" in found[0]
    assert "mtl_loss +0.0000, p=0.600" in found[0]
    assert found[0].startswith("- w/o INT (2 searches against 3)")


@pytest.mark.parametrize("value", ["0.8000", "0.8200"])
def test_search_spread_counts_the_range_ends_as_inside(value):
    frame = pd.DataFrame([dict(model="automtl", seed=0, ok_auc=0.80),
                          dict(model="automtl (search seed 1)", seed=0, ok_auc=0.82),
                          dict(model="cgc", seed=0, ok_auc=float(value))])
    lines = automtl.search_spread(frame, ["ok_auc"], {})
    assert f"- cgc: ok_auc {value} inside [0.8000, 0.8200]" in lines


class FakeArchitecture:
    """Stands in for a searched `Architecture`: what `run_data` reads and writes of one."""

    info = {"seconds": 1.0, "peak_rss_mib": 2.0}

    def __init__(self, seed):
        self.seed = seed

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text)["seed"])

    def to_json(self):
        return json.dumps({"seed": self.seed, "interaction": f"cross_{self.seed + 1}",
                           "experts": [["skip"]], "task_experts": {"ok": [0]}, "info": self.info})

    def summary(self):
        return f"searched with seed {self.seed}"

    def save(self, path):
        with open(path, "w") as f:
            f.write(self.to_json())

    def draw(self, path):
        with open(path, "w") as f:
            f.write("drawing")


@pytest.fixture
def earlier_run(tmp_path, monkeypatch):
    """An earlier run in `tmp_path` (AutoMTL searched with seed 0, MMoE), and `bench.automtl`
    with its data, search and retraining replaced by fakes; returns the searches' calls."""
    calls = []

    def search(schema, tasks, train, valid, variant, seed, verbose, checkpoint, dtype,
               **sizes):
        calls.append((variant, seed, checkpoint) + ((dtype,) if dtype != "float32" else ()))
        return FakeArchitecture(seed), {"loss": [1.0]}

    def evaluate(name, schema, tasks, parts, seed, architecture=None, **hparams):
        searched = -1 if architecture is None else architecture.seed
        return dict(epochs=1, seconds=1.0, parameters=10, ok_auc=0.9 + searched / 100 + seed / 1000,
                    mtl_loss=0.5)

    monkeypatch.setattr(automtl, "movielens", lambda cache=None: ([None] * 3, None, [Task("ok")]))
    monkeypatch.setattr(automtl, "search", search)
    monkeypatch.setattr(automtl, "evaluate", evaluate)
    monkeypatch.setattr(automtl, "Architecture", FakeArchitecture)
    monkeypatch.setattr(automtl, "BASELINES", {"mmoe": {}})
    rows = [dict(data="movielens", model=m, seed=s, epochs=1, seconds=1.0, parameters=10,
                 ok_auc=auc + s / 1000, mtl_loss=0.5)
            for m, auc in (("automtl", 0.5), ("mmoe", 0.6)) for s in (0, 1)]
    pd.DataFrame(rows).to_csv(tmp_path / "automtl_movielens.csv", index=False)
    record = {"architecture": json.loads(FakeArchitecture(0).to_json()), "history": {}}
    (tmp_path / "automtl_movielens.json").write_text(json.dumps({"movielens": {"automtl": record}}))
    (tmp_path / "automtl_movielens_architecture.json").write_text("the main search's")
    return calls


def test_a_search_seed_is_added_beside_the_main_run(tmp_path, earlier_run):
    frame, searched, _ = automtl.run_data(
        "movielens", [0, 1], ("automtl",) + automtl.ABLATIONS, str(tmp_path), None,
        only={"automtl"}, checkpoint=str(tmp_path / "states"), search_seed=1)
    state = tmp_path / "states" / "movielens_automtl_search_seed_1"
    assert earlier_run == [("automtl", 1, str(state))]
    assert sorted(searched) == ["automtl", "automtl (search seed 1)"]
    by_model = {m: list(block.ok_auc) for m, block in frame.groupby("model")}
    assert by_model == {"automtl": [0.5, 0.501], "mmoe": [0.6, 0.601],
                        "automtl (search seed 1)": [0.91, 0.911]}
    assert pd.read_csv(tmp_path / "automtl_movielens.csv").shape[0] == 6
    assert (tmp_path / "automtl_movielens_architecture.json").read_text() == "the main search's"
    saved = json.loads((tmp_path / "automtl_movielens_search_seed1_architecture.json").read_text())
    assert saved["seed"] == 1


def test_reuse_search_keeps_the_other_search_seeds(tmp_path, earlier_run):
    _, searched, _ = automtl.run_data("movielens", [0, 1], ("automtl",) + automtl.ABLATIONS,
                                      str(tmp_path), None, only={"automtl"}, search_seed=2)
    automtl.write_results(str(tmp_path), "automtl_movielens", "report", {"movielens": searched})
    frame, searched, _ = automtl.run_data("movielens", [0], ("automtl",), str(tmp_path), None,
                                          reuse=True)
    assert earlier_run == [("automtl", 2, None)]  # reused, not searched again
    assert sorted(searched) == ["automtl", "automtl (search seed 2)"]
    by_model = {m: list(block.ok_auc) for m, block in frame.groupby("model")}
    assert by_model == {"automtl": [0.9], "mmoe": [0.89],
                        "automtl (search seed 2)": [0.92, 0.921]}


def test_search_seed_needs_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["automtl.py", "--out", str(tmp_path), "--search-seed", "1"])
    with pytest.raises(SystemExit):
        automtl.main()
    assert "--search-seed and --search-precision need --only" in capsys.readouterr().err


def test_a_bfloat16_search_is_added_beside_the_main_run_outside_the_spread(tmp_path, earlier_run):
    frame, searched, _ = automtl.run_data(
        "movielens", [0, 1], ("automtl",) + automtl.ABLATIONS, str(tmp_path), None,
        only={"automtl"}, precision="mixed_bfloat16")
    assert earlier_run == [("automtl", 0, None, "mixed_bfloat16")]
    label = "automtl (mixed_bfloat16 search)"
    assert sorted(searched) == ["automtl", label]
    assert sorted(frame.model.unique()) == ["automtl", label, "mmoe"]
    assert (tmp_path / "automtl_movielens_architecture.json").read_text() == "the main search's"
    assert (tmp_path / "automtl_movielens_bf16_architecture.json").exists()
    # One float32 search: no spread table; the bfloat16 search is not counted as one.
    assert automtl.search_spread(frame, ["ok_auc"], searched) == []
