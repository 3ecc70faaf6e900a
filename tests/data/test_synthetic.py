"""Synthetic generators: seeded, with the planted structure they document."""

import numpy as np
import pytest

import tfmtl
from tfmtl.data import fdn_synthetic


def eq_5_to_11(n, d, seed):
    """FDN's appendix Eq. 5-11 transcribed line by line, with the library's stated constants."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(3, d))
    u1, u2, us = u[0] / np.linalg.norm(u[0]), u[1] / np.linalg.norm(u[1]), u[2] / np.linalg.norm(u[2])
    w1, w2, ws = 1.0 * u1, 1.0 * u2, 1.0 * us  # Eq. 6, c1 = c2 = cs = 1
    alpha, beta = rng.normal(size=10), rng.normal(size=10)
    delta, gamma = rng.normal(size=d), rng.normal(size=d)
    x1 = rng.normal(-1, np.sqrt(0.1), (n, d))
    x2 = rng.normal(1, np.sqrt(0.1), (n, d))
    xs = rng.normal(0, 1, (n, d))
    sines = lambda z: sum(np.sin(alpha[i] * z + beta[i]) for i in range(10))  # noqa: E731
    s = xs @ ws + sines(xs @ ws)
    y1 = s + x1 @ w1 + sines(x1 @ w1) + rng.normal(0, 0.1, n)  # Eq. 7
    y2 = s + x2 @ w2 + sines(x2 @ w2) + rng.normal(0, 0.1, n)  # Eq. 8
    feature = lambda a: (np.sin(delta * a + gamma) + np.cos(delta * a + gamma)  # noqa: E731
                         + rng.normal(0, 0.1, a.shape))
    xa = feature(u1 * x1 + us * xs)  # Eq. 9
    xb = feature(u2 * x2 + us * xs)  # Eq. 10
    x = feature(u1 * x1 + u2 * x2 + us * xs)  # Eq. 11
    return x, xa, xb, y1, y2


def test_fdn_synthetic_is_eq_5_to_11():
    sets = fdn_synthetic(500, dim=8, seed=3)
    x, xa, xb, y1, y2 = eq_5_to_11(500, 8, seed=3)
    multi, schema, tasks = sets["multi"]
    assert [t.name for t in tasks] == ["y1", "y2"] and all(t.kind == "regression" for t in tasks)
    np.testing.assert_allclose(multi[[f"x_{i}" for i in range(8)]].to_numpy(), x, atol=1e-5)
    np.testing.assert_allclose(multi.y1, y1, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(multi.y2, y2, rtol=1e-5, atol=1e-4)
    a, schema_a, _ = sets["a"]
    np.testing.assert_allclose(a[[f"xa_{i}" for i in range(8)]].to_numpy(), xa, atol=1e-5)
    np.testing.assert_allclose(sets["b"][0][[f"xb_{i}" for i in range(8)]].to_numpy(), xb,
                               atol=1e-5)
    np.testing.assert_array_equal(a.y1, multi.y1)  # the same rows in every data set
    assert schema_a["xa_0"].mean == pytest.approx(float(np.float32(xa[:, 0]).mean()), rel=1e-4)


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


def test_preference_conflict_rates_and_the_rank_one_table_cannot_hold():
    """Each task's logit matrix has rank r_s + r_k + 2; both together r_s + 2 r_k + 3."""
    frame, schema, tasks = tfmtl.data.preference_conflict(
        200_000, num_users=40, num_items=50, shared_rank=2, specific_rank=3, seed=4)
    assert list(schema.names) == ["user_id", "item_id"] and [t.name for t in tasks] == ["finish", "like"]
    assert frame.p_finish.mean() == pytest.approx(0.28, abs=2e-3)
    assert frame.p_like.mean() == pytest.approx(0.016, abs=5e-4)
    assert frame.like.mean() == pytest.approx(0.016, abs=2e-3)
    cells = frame.groupby(["user_id", "item_id"])[["p_finish", "p_like"]].first()
    assert len(cells) == 40 * 50  # every pair drawn
    logits = {}
    for task in ("finish", "like"):
        p = cells[f"p_{task}"].to_numpy("float64").reshape(40, 50)
        logits[task] = np.log(p / (1 - p))

    def rank(m):
        s = np.linalg.svd(m, compute_uv=False)
        return int(np.sum(s > 1e-3 * s[0]))

    assert rank(logits["finish"]) == rank(logits["like"]) == 2 + 3 + 2
    assert rank(np.concatenate([logits["finish"], logits["like"]], axis=1)) == 2 + 2 * 3 + 3
    side, side_schema, _ = tfmtl.data.preference_conflict(5000, side_fields=True, seed=0)
    assert list(side_schema.names) == ["user_id", "item_id", "user_segment", "item_category"]
    assert side.groupby("user_id").user_segment.nunique().max() == 1  # a user attribute
    assert side.user_segment.nunique() == 32
