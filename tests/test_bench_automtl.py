"""bench/automtl.py's report of the search's own spread (`--search-seed`)."""

import pandas as pd
import pytest

from bench import automtl


def test_search_seed_names_the_model_only_when_not_zero():
    assert automtl.label_of("automtl") == "automtl"
    assert automtl.label_of("automtl", 2) == "automtl (search seed 2)"
    assert automtl.label_of("w/o JSD", 1) == "w/o JSD (search seed 1)"


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
    placed = {line.split(":")[0][2:]: line for line in lines if line.startswith("- ")}
    assert set(placed) == {"mmoe", "w/o JSD", "w/o INT"}
    assert "ok_auc 0.8300 above [0.8000, 0.8200]" in placed["mmoe"]
    assert "ok_auc 0.8150 inside [0.8000, 0.8200]" in placed["w/o JSD"]
    assert "mtl_loss 0.2100 above [0.1800, 0.2000]" in placed["w/o INT"]


def test_search_spread_is_silent_with_one_search():
    frame = pd.DataFrame([dict(model="automtl", seed=0, ok_auc=0.8),
                          dict(model="mmoe", seed=0, ok_auc=0.81)])
    assert automtl.search_spread(frame, ["ok_auc"], {}) == []


@pytest.mark.parametrize("value", ["0.8000", "0.8200"])
def test_search_spread_counts_the_range_ends_as_inside(value):
    frame = pd.DataFrame([dict(model="automtl", seed=0, ok_auc=0.80),
                          dict(model="automtl (search seed 1)", seed=0, ok_auc=0.82),
                          dict(model="cgc", seed=0, ok_auc=float(value))])
    lines = automtl.search_spread(frame, ["ok_auc"], {})
    assert f"- cgc: ok_auc {value} inside [0.8000, 0.8200]" in lines
