"""MFH's Table 6 on MovieLens-100K user-activity groups and on synthetic
groups of very unequal size: per-group like AUC and rating MSE.

Models, each with MMoE switchers and with PLE switchers:
- flat 2-task: one switcher, tasks `like`, `rating`;
- flat 6-task: one switcher, a task per behaviour x group;
- H-MTL 6-task: root switcher by behaviour, then by group (Eq. 4);
- MFH 6-task: root switcher to behaviour and group nodes, each to the
  behaviour x group nodes, summed (Eq. 5).
A 6-task model is scored on each row by its routed output (that row's group
tower). MovieLens groups: users' number of ratings in the training split,
cut at its tertiles over users into new / low / high; synthetic: `group_synthetic`
(2 % / 12 % / 86 % of the rows, each group its own interaction pattern).

Settings (reduced for a 2-core CPU): embedding 16; MMoE switchers 4 experts
[128, 64] at the root and [64] below; PLE switchers 2 extraction levels of
[128, 64] experts (1 task-specific, 2 shared) at the root and 1 level of [64]
below; towers [32]; Adam 1e-3, batch 1024, early stopping on the validation
loss (patience 2, at most 10 epochs); 80/10/10 split (split seed 0).

    python bench/mfh.py [--data movielens,synthetic] [--seeds 0,1,2] [--out DIR]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import zoo  # noqa: E402
from tfmtl.data import fetch_movielens_100k, group_synthetic, load_movielens_100k, split  # noqa: E402
from tfmtl.data import to_dataset  # noqa: E402
from tfmtl.data.movielens import movielens_schema  # noqa: E402
from tfmtl.metrics import roc_auc  # noqa: E402
from tfmtl.schema import DenseFeature, Facet, FacetedTasks, Schema, Task  # noqa: E402

GROUPS = ("new", "low", "high")
SWITCHERS = {
    "MMoE": ({"type": "mmoe", "num_experts": 4, "expert_units": (128, 64)},
             {"type": "mmoe", "num_experts": 4, "expert_units": (64,)}),
    "PLE": ({"type": "ple", "num_levels": 2, "num_specific_experts": 1, "num_shared_experts": 2,
             "expert_units": (128, 64)},
            {"type": "ple", "num_levels": 1, "num_specific_experts": 1, "num_shared_experts": 2,
             "expert_units": (64,)}),
}
STRUCTURES = {"flat 2-task": "flat", "flat 6-task": "flat", "H-MTL 6-task": "hmtl",
              "MFH 6-task": "mfh"}
BEHAVIOURS = [Task("like"), Task("rating", "regression")]


def movielens(cache=None):
    frame, _, _ = load_movielens_100k(fetch_movielens_100k(cache))
    train, valid, test = split(frame, (0.8, 0.1, 0.1), seed=0)
    counts = train.groupby("user_id").size()
    boundaries = tuple(float(b) for b in np.quantile(counts.to_numpy(), [1 / 3, 2 / 3]))
    parts = [p.assign(user_activity=p.user_id.map(counts).fillna(0).astype("float32"))
             for p in (train, valid, test)]
    schema, _ = movielens_schema(parts[0].drop(columns=["user_activity"]))
    activity = parts[0].user_activity
    schema = Schema(list(schema) + [DenseFeature("user_activity", float(activity.mean()),
                                                 float(activity.var()))])
    facet = Facet("group", GROUPS, "user_activity", boundaries=boundaries)
    return parts, schema, facet, f"user_activity tertile boundaries {boundaries}"


def synthetic():
    frame, schema, _ = group_synthetic(120_000, seed=0)
    parts = split(frame.drop(columns=["p_like"]), (0.8, 0.1, 0.1), seed=0)
    facet = Facet("group", GROUPS, "user_group")
    shares = frame.user_group.value_counts(normalize=True).reindex(list(GROUPS)).round(3).to_dict()
    return parts, schema, facet, f"row shares {shares}"


def run_one(structure, switcher, parts, schema, facet, seed):
    train, valid, test = parts
    faceted = FacetedTasks(BEHAVIOURS, [facet])
    tasks = BEHAVIOURS if structure == "flat 2-task" else faceted
    if structure != "flat 2-task":
        train, valid = faceted.with_masks(train), faceted.with_masks(valid)
    levels = SWITCHERS[switcher][:1] if STRUCTURES[structure] == "flat" else SWITCHERS[switcher]
    keras.utils.set_random_seed(seed)
    model = zoo.build(STRUCTURES[structure], schema, tasks, switchers=levels, tower_units=(32,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    started = time.time()
    history = model.fit(
        to_dataset(train, schema, model.tasks, 1024, seed=seed),
        validation_data=to_dataset(valid, schema, model.tasks, 8192, shuffle=False),
        epochs=10, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=2, restore_best_weights=True)])
    out = model.predict(test, batch_size=8192, verbose=0)
    group = faceted.partition_index(test)
    rows = []
    for g, name in enumerate(GROUPS):
        keep = group == g
        rows.append(dict(
            structure=structure, switcher=switcher, seed=seed, group=name, rows=int(keep.sum()),
            like_auc=roc_auc(test.like.to_numpy()[keep], out["like"][keep, 0]),
            rating_mse=float(np.mean((test.rating.to_numpy()[keep] - out["rating"][keep, 0]) ** 2)),
            epochs=len(history.history["loss"]), seconds=time.time() - started))
    return rows


def report(results, title):
    frame = pd.DataFrame(results)
    stats = frame.groupby(["switcher", "structure", "group"], sort=False).agg(
        like_mean=("like_auc", "mean"), like_std=("like_auc", "std"),
        mse_mean=("rating_mse", "mean"), mse_std=("rating_mse", "std"),
        rows=("rows", "first"), seconds=("seconds", "mean"))
    groups = list(dict.fromkeys(frame.group))
    rows_per_group = {g: int(stats.xs(g, level="group").rows.iloc[0]) for g in groups}
    header = ["switcher", "model"] + [f"{g} ({rows_per_group[g]} test rows) like AUC" for g in groups] \
        + [f"{g} rating MSE" for g in groups] + ["s/run"]
    lines = [title, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for (switcher, structure), block in stats.groupby(level=[0, 1], sort=False):
        block = block.droplevel([0, 1])
        cells = [f"{block.loc[g, 'like_mean']:.4f} ± {block.loc[g, 'like_std']:.4f}" for g in groups]
        cells += [f"{block.loc[g, 'mse_mean']:.4f} ± {block.loc[g, 'mse_std']:.4f}" for g in groups]
        lines.append(f"| {switcher} | {structure} | " + " | ".join(cells)
                     + f" | {block.seconds.iloc[0]:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="movielens,synthetic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cache")
    parser.add_argument("--out", help="directory for mfh_<data>.md and .csv")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for data_name in args.data.split(","):
        if data_name not in ("movielens", "synthetic"):
            raise SystemExit(f"unknown data {data_name!r}: movielens or synthetic")
        parts, schema, facet, described = movielens(args.cache) if data_name == "movielens" \
            else synthetic()
        results = []
        for seed in seeds:
            for switcher in SWITCHERS:
                for structure in STRUCTURES:
                    rows = run_one(structure, switcher, parts, schema, facet, seed)
                    results += rows
                    print(f"  {data_name} seed {seed} {switcher} {structure}: " + ", ".join(
                        f"{r['group']} {r['like_auc']:.4f}/{r['rating_mse']:.4f}" for r in rows),
                        flush=True)
        title = (f"{data_name}: per-group test like AUC and rating MSE, mean ± std over seeds "
                 f"{seeds}; {described}")
        text = report(results, title)
        print("\n" + text + "\n", flush=True)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, f"mfh_{data_name}.md"), "w") as f:
                f.write(text + "\n")
            pd.DataFrame(results).to_csv(os.path.join(args.out, f"mfh_{data_name}.csv"), index=False)


if __name__ == "__main__":
    main()
