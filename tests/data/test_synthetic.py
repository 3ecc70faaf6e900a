"""Synthetic generators: seeded, with the planted structure they document."""

import numpy as np
import pytest

from tfmtl.data import fdn_synthetic


def test_fdn_synthetic_blocks_labels_and_data_sets():
    sets = fdn_synthetic(20000, dim=6, seed=1)
    multi, schema, tasks = sets["multi"]
    assert [t.name for t in tasks] == ["y1", "y2"] and all(t.kind == "regression" for t in tasks)
    x = {b: multi[[f"x{b}_{i}" for i in range(6)]].to_numpy() for b in ("1", "2", "s")}
    for block, mean, variance in (("1", -1.0, 0.1), ("2", 1.0, 0.1), ("s", 0.0, 1.0)):
        np.testing.assert_allclose(x[block].mean(), mean, atol=0.02)
        np.testing.assert_allclose(x[block].var(), variance, rtol=0.05)
    # y1 is a function of x1 and xs only: least squares on x2 explains nothing, on x1 + xs a lot.
    def r2(inputs, y):
        design = np.column_stack([inputs, np.ones(len(y))])
        residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        return 1 - residual.var() / y.var()
    y1 = multi["y1"].to_numpy()
    assert r2(x["2"], y1) < 0.002
    assert r2(np.hstack([x["1"], x["s"]]), y1) > 0.05  # linear part; the sines hold the rest
    # A and B are the same rows with only their task's inputs and label.
    a, schema_a, tasks_a = sets["a"]
    assert [f.name for f in schema_a.dense] == [c for c in multi.columns if c[:2] in ("x1", "xs")]
    assert list(a.columns[-1:]) == ["y1"] and [t.name for t in tasks_a] == ["y1"]
    np.testing.assert_array_equal(a["y1"], multi["y1"])
    b = sets["b"][0]
    assert {c[:2] for c in b.columns if c.startswith("x")} == {"x2", "xs"}
    np.testing.assert_array_equal(b["y2"], multi["y2"])


def test_fdn_synthetic_is_seeded():
    first, again, other = (fdn_synthetic(100, dim=4, seed=s)["multi"][0] for s in (3, 3, 4))
    assert first.equals(again) and not first.equals(other)
    with pytest.raises(ValueError, match="dim"):
        fdn_synthetic(10, dim=1)


def test_group_synthetic_groups_are_unequal_and_differ():
    from tfmtl.data import group_synthetic

    frame, schema, tasks = group_synthetic(60000, seed=0)
    shares = frame.user_group.value_counts(normalize=True)
    assert shares["new"] < 0.05 and 0.06 < shares["low"] < 0.2 and shares["high"] > 0.75
    # The same (segment, category) cell has a different preference in each group.
    cell = frame.groupby(["user_group", "user_segment", "item_category"]).p_like.mean()
    wide = cell.unstack("user_group").dropna()
    assert len(wide) > 20
    assert (wide["new"] - wide["high"]).abs().mean() > 0.1
    assert {"user_group", "user_segment", "item_category"} <= set(schema.names)
    assert [t.name for t in tasks] == ["like", "rating"]
