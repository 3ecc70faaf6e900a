"""Plots of a `Selection`: the task-by-field importance and the field-wise relations."""

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_importance(selection, path, merged=True):
    """Heatmap of the `T x N` importance (merged by default), selected fields outlined."""
    plt = _pyplot()
    scores = selection.score_matrix(merged)
    shown = scores / np.maximum(np.abs(scores).max(axis=1, keepdims=True), 1e-12)
    figure, axis = plt.subplots(figsize=(max(4, 0.6 * len(selection.fields) + 2),
                                         0.6 * len(selection.tasks) + 1.6))
    image = axis.imshow(shown, cmap="viridis", aspect="auto")
    for t, task in enumerate(selection.tasks):
        for n, field in enumerate(selection.fields):
            if field in selection.task_fields[task]:
                axis.add_patch(plt.Rectangle((n - 0.5, t - 0.5), 1, 1, fill=False, lw=2,
                                             edgecolor="red"))
    axis.set_xticks(range(len(selection.fields)), selection.fields, rotation=60, ha="right")
    axis.set_yticks(range(len(selection.tasks)), selection.tasks)
    kind = "merged importance s'" if merged and selection.merged_scores else "importance s"
    axis.set_title(f"{selection.method} ({selection.backbone}): {kind}, per task / max; "
                   "red = selected", fontsize=9)
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_relations(selection, path):
    """One `T x T` heatmap of `r_n^{t1,t2}` (Eq. 23) per field."""
    if not selection.relations:
        raise ValueError(f"The {selection.method} selection has no relations to plot.")
    plt = _pyplot()
    fields = selection.fields
    columns = min(len(fields), 6)
    rows = -(-len(fields) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.2 * rows + 0.4),
                                squeeze=False)
    for axis, field in zip(axes.flat, fields):
        image = axis.imshow(np.array(selection.relations[field]), vmin=-1, vmax=1, cmap="coolwarm")
        axis.set_title(field, fontsize=8)
        axis.set_xticks(range(len(selection.tasks)), selection.tasks, fontsize=6, rotation=45)
        axis.set_yticks(range(len(selection.tasks)), selection.tasks, fontsize=6)
    for axis in list(axes.flat)[len(fields):]:
        axis.axis("off")
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    figure.suptitle("field-wise task relations r_n (cosine of the task nodes' field vectors)",
                    fontsize=9)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
