"""FDN's Table 1 on its synthetic data: the gap of each multi-task model to
single-task oracles.

`tfmtl.data.fdn_synthetic` draws task-1-only inputs `x1`, task-2-only inputs
`x2` and shared inputs `xs`. Oracles are single-task models trained on data
set A (`x1, xs -> y1`) and B (`x2, xs -> y2`); MMoE, CGC, PLE and FDN train on
the multi-task set (all inputs, both labels). The gap of a model on task `k`
is `100 * (MSE_model - MSE_oracle) / MSE_oracle` on the same test rows. Every
seed draws its own data (80/10/10 split) and initialisation.

Settings, the paper's where it gives them: 8 experts / 4 pairs (2 per task),
experts [128, 64], 5 epochs, Adam 1e-3, batch 256. MMoE/CGC/PLE towers [64];
CGC/PLE 3 task-specific + 2 shared experts per level, PLE 2 levels; oracle
MLP [256, 128, 64]. The paper's embedding size 32 applies to no field here:
every input is numeric and fed raw. Ablation rows: FDN without the auxiliary
heads, without the orthogonality loss, without task-shared fusion, and with
L_orth exactly as written (a sum over the batch of unnormalised features,
weight 1) instead of the zoo's default normalised form.

    python bench/fdn.py [--seeds 0,1,2,3,4] [--rows 50000] [--models ...]
                        [--set fdn.orthogonal_weight=0.001] [--out FILE.md]
"""

import argparse
import ast
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import zoo  # noqa: E402
from tfmtl.data import fdn_synthetic, split, to_dataset  # noqa: E402

EXPERT = dict(expert_units=(128, 64))
MODELS = {
    "mmoe": ("mmoe", dict(num_experts=8, tower_units=(64,), **EXPERT)),
    "cgc": ("cgc", dict(num_specific_experts=3, num_shared_experts=2, tower_units=(64,), **EXPERT)),
    "ple": ("ple", dict(num_levels=2, num_specific_experts=3, num_shared_experts=2,
                        tower_units=(64,), **EXPERT)),
    "fdn": ("fdn", dict(num_pairs=2, **EXPERT)),
    "fdn w/o aux": ("fdn", dict(num_pairs=2, auxiliary_weight=0.0, **EXPERT)),
    "fdn w/o orth": ("fdn", dict(num_pairs=2, orthogonal_weight=0.0, **EXPERT)),
    "fdn w/o task-shared": ("fdn", dict(num_pairs=2, shared_fusion=False, **EXPERT)),
    "fdn L_orth as written": ("fdn", dict(num_pairs=2, normalize_orthogonal=False, **EXPERT)),
}
ORACLE = dict(hidden_units=(256, 128, 64))


def train_mse(zoo_name, hparams, data, seed, epochs, track=None):
    """Test MSE per task after `epochs` epochs; `track`: a history key to keep."""
    (train, valid, test), schema, tasks = data
    keras.utils.set_random_seed(seed)
    model = zoo.build(zoo_name, schema, tasks, **hparams)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(to_dataset(train, schema, model.tasks, 256, seed=seed), epochs=epochs,
                        verbose=0)
    out = model.predict(test, batch_size=8192, verbose=0)
    mse = {t.name: float(np.mean((test[t.name].to_numpy() - out[t.name][:, 0]) ** 2)) for t in tasks}
    return mse, history.history.get(track)


def run_seed(seed, rows, names, overrides, epochs):
    sets = fdn_synthetic(rows, seed=seed)
    data = {}
    for key, (frame, schema, tasks) in sets.items():
        data[key] = (split(frame, (0.8, 0.1, 0.1), seed=seed), schema, tasks)
    oracle = {}
    for key in ("a", "b"):
        oracle.update(train_mse("single_task", ORACLE, data[key], seed, epochs)[0])
    rows_out = [dict(model="oracle", seed=seed, **{f"mse_{k}": v for k, v in oracle.items()})]
    for name in names:
        zoo_name, hparams = MODELS[name]
        hparams = {**hparams, **overrides.get(zoo_name, {})}
        started = time.time()
        mse, orth = train_mse(zoo_name, hparams, data["multi"], seed, epochs,
                              track="pairs_orthogonal_loss")
        row = dict(model=name, seed=seed, seconds=time.time() - started)
        for task, value in mse.items():
            row[f"mse_{task}"] = value
            row[f"gap_{task}"] = 100.0 * (value - oracle[task]) / oracle[task]
        if orth:
            row["orth_first"], row["orth_last"] = orth[0], orth[-1]
        rows_out.append(row)
        print(f"  seed {seed} {name}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in row.items() if k.startswith(("mse", "gap", "orth"))),
            flush=True)
    return rows_out


def table(results):
    frame = pd.DataFrame(results)
    columns = [c for c in frame.columns if c.startswith(("mse_", "gap_"))]
    grouped = frame.groupby("model", sort=False)[columns]
    mean, spread = grouped.mean(), grouped.std()
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model in mean.index:
        cells = []
        for c in columns:
            if np.isnan(mean.loc[model, c]):
                cells.append("")
            else:
                digits = 2 if c.startswith("gap") else 4
                cells.append(f"{mean.loc[model, c]:.{digits}f} ± {spread.loc[model, c]:.{digits}f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_overrides(items):
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, param = key.partition(".")
        if not param or not value:
            raise SystemExit(f"--set wants MODEL.PARAM=VALUE. Received: {item!r}")
        overrides.setdefault(model, {})[param] = ast.literal_eval(value)
    return overrides


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                        help="override a zoo hyperparameter, e.g. fdn.orthogonal_weight=0.001")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {list(MODELS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = parse_overrides(args.set)
    results = []
    for seed in seeds:
        results += run_seed(seed, args.rows, names, overrides, args.epochs)
    text = (f"FDN synthetic data, {args.rows} rows, {args.epochs} epochs, seeds {seeds}, "
            f"overrides {overrides or 'none'}: test MSE and gap to the oracle (%), mean ± std\n\n"
            + table(results))
    frame = pd.DataFrame(results)
    if "orth_first" in frame:
        orth = frame.dropna(subset=["orth_first"]).groupby("model", sort=False)[
            ["orth_first", "orth_last"]].mean()
        text += ("\n\nL_orth (training metric, epoch 1 -> last), mean over seeds:\n\n```\n"
                 + orth.to_string() + "\n```")
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
