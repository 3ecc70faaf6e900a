"""Metrics computed on NumPy arrays (for benchmarks and analyses)."""

import numpy as np


def roc_auc(labels, scores):
    """Area under the ROC curve, by ranks (ties count half).

    Example:

    >>> float(roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = labels.sum()
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both positive and negative labels.")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based mean rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return (ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives)
