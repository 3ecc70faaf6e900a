"""bench/stem.py's `--resume`: a run that adds seeds to one part keeps every other part's report."""

import json
import sys

import numpy as np

from bench import stem


def rows_for(models, seed, data, rng):
    rows = []
    for model in models:
        for rule in ("paper", "independent", "oracle"):
            for threshold in (2, 3, 4):
                for task in ("finish", "like"):
                    row = dict(model=model, seed=seed, rule=rule, threshold=threshold, task=task,
                               data=data, epochs=3, all=rng.uniform(0.7, 0.9))
                    for name in stem.NAMES.values():
                        row[name], row[f"n_{name}"] = rng.uniform(0.7, 0.9), 100
                    rows.append(row)
    return rows


def test_resume_keeps_the_parts_it_is_not_asked_for(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    results = []
    for seed in (0, 1):
        results += rows_for(stem.MAIN, seed, "ids", rng)
        results += rows_for(stem.TABLE6, seed, "ids", rng)
        results += rows_for(["Single-Task", *stem.TABLE5], seed, "side fields", rng)
    # The file as an earlier `--table6` run left it: Table 5's rows there, its seed list empty.
    (tmp_path / "stem.json").write_text(json.dumps(dict(
        seeds=[0, 1], table6=[0, 1], table5=[], rows=1000, size="stem_small", results=results,
        seconds=10.0)))
    # Every seed asked for is in the file, so nothing trains.
    monkeypatch.setattr(sys, "argv", ["stem.py", "--seeds", "0,1", "--rows", "1000", "--table6",
                                      "0,1", "--resume", "--out", str(tmp_path)])
    stem.main()
    text = (tmp_path / "stem.md").read_text()
    assert "## Table 6: gate input x stop-gradient (seeds [0, 1])" in text
    assert "## Table 5: which fields get task-specific tables (side fields; seeds [0, 1])" in text
    saved = json.loads((tmp_path / "stem.json").read_text())
    assert (saved["seeds"], saved["table6"], saved["table5"]) == ([0, 1], [0, 1], [0, 1])
    assert len(saved["results"]) == len(results)
