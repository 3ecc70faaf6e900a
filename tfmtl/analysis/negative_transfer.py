"""STEM-Net's negative-transfer analysis: AUC on A-overwhelming, comparable and
B-overwhelming samples (Su et al., AAAI 2024, Sec. 3).

Each sample's expected feedback on a task is a single-task model's
prediction for it. Predictions are cut into equal-frequency buckets per task
(10 by default); the difference of a sample's two bucket indices says which
task it leans to: `A - B >= threshold` is A-overwhelming, `B - A >=
threshold` B-overwhelming, the rest comparable.
"""

import numpy as np
import pandas as pd

from tfmtl.metrics import roc_auc

SUBSETS = ("A-overwhelming", "comparable", "B-overwhelming")


def buckets(scores, count=10):
    """Equal-frequency bucket index (0 .. count-1) of each score, by rank."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if count < 2:
        raise ValueError(f"count must be >= 2. Received: count={count}")
    ranks = np.argsort(np.argsort(scores, kind="mergesort"), kind="mergesort")
    return (ranks * count // len(scores)).astype(int)


def transfer_subsets(expected_a, expected_b, count=10, threshold=3):
    """The subset name of every sample, from two single-task models' predictions.

    Args:
        expected_a, expected_b: arrays. Expected feedback on tasks A and B.
        count: int. Equal-frequency buckets per task. Defaults to `10`.
        threshold: int. Bucket difference from which a sample leans to one
            task. Defaults to `3`.

    Returns:
        An array of `"A-overwhelming"`, `"comparable"`, `"B-overwhelming"`.
    """
    expected_a = np.asarray(expected_a).ravel()
    expected_b = np.asarray(expected_b).ravel()
    if len(expected_a) != len(expected_b):
        raise ValueError("expected_a and expected_b must have one value per sample each.")
    difference = buckets(expected_a, count) - buckets(expected_b, count)
    return np.where(difference >= threshold, SUBSETS[0],
                    np.where(-difference >= threshold, SUBSETS[2], SUBSETS[1]))


def subset_auc(labels, predictions, subsets):
    """Per-model, per-task AUC on each subset.

    Args:
        labels: dict of task name to 0/1 labels.
        predictions: dict of model name to dict of task name to scores.
        subsets: array from `transfer_subsets`.

    Returns:
        A DataFrame with columns `model, task, subset, auc, samples`.
    """
    subsets = np.asarray(subsets)
    rows = []
    for model, scores in predictions.items():
        for task, y in labels.items():
            y = np.asarray(y).ravel()
            p = np.asarray(scores[task]).ravel()
            for subset in SUBSETS + ("all",):
                keep = np.ones(len(y), bool) if subset == "all" else subsets == subset
                value = np.nan
                if keep.any() and 0 < y[keep].sum() < keep.sum():
                    value = roc_auc(y[keep], p[keep])
                rows.append({"model": model, "task": task, "subset": subset,
                             "auc": value, "samples": int(keep.sum())})
    return pd.DataFrame(rows)


def plot_subset_auc(table, path):
    """Bar chart of `subset_auc`'s table (one panel per task), saved to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"]))
    models = list(dict.fromkeys(table["model"]))
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    width = 0.8 / len(models)
    for axis, task in zip(axes[0], tasks):
        for m, model in enumerate(models):
            rows = table[(table.task == task) & (table.model == model)].set_index("subset")
            values = [rows.loc[s, "auc"] for s in SUBSETS]
            axis.bar(np.arange(len(SUBSETS)) + m * width, values, width, label=model)
        axis.set_xticks(np.arange(len(SUBSETS)) + 0.4 - width / 2, SUBSETS)
        axis.set_title(f"task {task}")
        axis.set_ylabel("AUC")
        finite = table[table.task == task]["auc"].dropna()
        if len(finite):
            axis.set_ylim(max(0.0, finite.min() - 0.05), min(1.0, finite.max() + 0.02))
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
