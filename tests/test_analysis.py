import numpy as np

from tfmtl.analysis import SUBSETS, buckets, plot_subset_auc, subset_auc, transfer_subsets
from tfmtl.data import conflict_synthetic


def test_equal_frequency_buckets():
    scores = np.random.default_rng(0).random(1000)
    b = buckets(scores, 10)
    assert np.bincount(b).tolist() == [100] * 10
    assert (np.diff(b[np.argsort(scores)]) >= 0).all()  # monotone in the score


def test_subsets_follow_the_bucket_difference():
    a = np.array([0.9, 0.1, 0.5, 0.55, 0.2, 0.8] * 10)
    b = np.array([0.1, 0.9, 0.5, 0.45, 0.8, 0.2] * 10)
    subsets = transfer_subsets(a, b, count=10, threshold=3)
    assert subsets[:6].tolist() == ["A-overwhelming", "B-overwhelming", "comparable",
                                    "comparable", "B-overwhelming", "A-overwhelming"]


def test_subset_auc_table_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    y = {"a": rng.integers(0, 2, 600), "b": rng.integers(0, 2, 600)}
    perfect = {k: v + rng.random(600) * 0.1 for k, v in y.items()}
    noise = {k: rng.random(600) for k in y}
    subsets = transfer_subsets(noise["a"], noise["b"])
    table = subset_auc(y, {"perfect": perfect, "noise": noise}, subsets)
    assert set(table.subset) == set(SUBSETS) | {"all"}
    assert (table[table.model == "perfect"].auc == 1.0).all()
    assert table[table.model == "noise"].auc.between(0.3, 0.7).all()
    assert table.groupby(["model", "task"]).samples.sum().eq(1200).all()  # subsets + all
    path = plot_subset_auc(table, tmp_path / "auc.png")
    assert path.exists() and path.stat().st_size > 1000


def test_conflict_data_plants_disagreement():
    frame, schema, tasks = conflict_synthetic(40_000, seed=0)
    agree = frame[~frame.conflict]
    clash = frame[frame.conflict]
    assert 0.1 < frame.conflict.mean() < 0.5
    assert np.corrcoef(agree.a, agree.b)[0, 1] > 0.15
    assert np.corrcoef(clash.a, clash.b)[0, 1] < -0.15
    assert [t.name for t in tasks] == ["a", "b"] and "conflict" not in schema
