"""How each task uses the experts: mean gate weights of a model's switcher."""

import keras
import numpy as np
import pandas as pd

from tfmtl.layers.switchers.switcher import Switcher


def gate_weights(model, data, batch_size=4096):
    """Mean gate weight of every expert for every task on `data`: a DataFrame.

    Runs the model up to its (first) switcher, then the switcher's gates
    (`Switcher.gate_weights`; the last level's for PLE). Columns: `task`,
    `expert`, `weight` (mean over the rows), `std` (over the rows).

    Args:
        model: a `MultiTaskModel` with a gated switcher (MMoE, OMoE, CGC,
            PLE, STEM-Net, an AutoMTL architecture).
        data: a DataFrame or dict of feature columns.
    """
    switchers = [layer for layer in model.layers if isinstance(layer, Switcher)]
    if not switchers:
        raise ValueError(f"Model {model.name!r} has no switcher with gates.")
    switcher = switchers[0]
    probe = keras.Model(model.inputs, switcher.input)
    inputs = probe.predict(_features(model, data), batch_size=batch_size, verbose=0)
    tasks = [t for t in model.tasks if t.loss_weight > 0 or not t.auxiliary][:switcher.num_branches]
    rows = []
    for task, (names, weights) in zip(tasks, switcher.gate_weights(inputs)):
        weights = keras.ops.convert_to_numpy(weights)
        for name, column in zip(names, weights.T):
            rows.append({"task": task.name, "expert": name, "weight": float(column.mean()),
                         "std": float(column.std())})
    return pd.DataFrame(rows)


def plot_gate_weights(table, path):
    """Heatmap of `gate_weights`' table: tasks by experts, saved to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = table.pivot(index="task", columns="expert", values="weight")
    grid = grid[list(dict.fromkeys(table.expert))].loc[list(dict.fromkeys(table.task))]
    figure, axis = plt.subplots(figsize=(1.0 * grid.shape[1] + 2.5, 0.7 * grid.shape[0] + 1.5))
    image = axis.imshow(grid.to_numpy(dtype=float), cmap="Blues", vmin=0, aspect="auto")
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
    axis.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right")
    axis.set_yticks(range(grid.shape[0]), grid.index)
    axis.set_title("mean gate weight per task and expert")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _features(model, data):
    from tfmtl.data.arrays import columns_of, features_from

    return features_from(columns_of(data), model.schema)
