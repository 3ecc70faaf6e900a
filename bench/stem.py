"""STEM-Net's negative-transfer analysis: per-subset AUC of shared- and
multi-embedding models, on planted-conflict synthetic data and MovieLens-100K.

Samples are split by two single-task models' predictions (equal-frequency
buckets, 10 per task) into A-overwhelming, comparable and B-overwhelming
subsets (`tfmtl.analysis`); each model's per-task test AUC on each subset is
averaged over seeds. Every model uses the same reduced size so that the run
fits a 2-core CPU: embedding 16, experts [256, 128] (4 shared, 1 per task;
MMoE/ME-MMoE 6 experts), gates and towers [128, 64], Adam 1e-3, batch 1024,
early stopping on validation (patience 1, at most 8 epochs).

MovieLens tasks: `like` (rating >= 4) and `above_mean` (rating above the
user's mean rating in the training split): a generous user's 4 is a like but
not above their mean, a harsh user's 3 may be above theirs.

    python bench/stem.py [--seeds 0,1,2] [--data synthetic,movielens] [--out bench/results]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import pandas as pd  # noqa: E402

import zoo  # noqa: E402
from tfmtl.analysis import SUBSETS, plot_subset_auc, subset_auc, transfer_subsets  # noqa: E402
from tfmtl.data import conflict_synthetic, fetch_movielens_100k, load_movielens_100k, split, to_dataset  # noqa: E402
from tfmtl.data.movielens import movielens_schema  # noqa: E402
from tfmtl.schema import Task  # noqa: E402

MODELS = {
    "single_task": dict(hidden_units=(256, 128, 64)),
    "mmoe": dict(num_experts=6, expert_units=(256, 128), tower_units=(128, 64)),
    "ple": dict(num_specific_experts=1, num_shared_experts=4, expert_units=(256, 128),
                tower_units=(128, 64)),
    "me_mmoe": dict(num_experts=6, expert_units=(256, 128)),
    "me_ple": dict(num_shared_experts=4, expert_units=(256, 128)),
    "stem": dict(num_shared_experts=4, expert_units=(256, 128)),
}


def synthetic(seed):
    frame, schema, tasks = conflict_synthetic(120_000, seed=0)
    frame = frame.drop(columns=["conflict"])
    return split(frame, (0.8, 0.1, 0.1), seed=0), schema, tasks


def movielens(seed, cache=None):
    frame, _, _ = load_movielens_100k(fetch_movielens_100k(cache))
    train, valid, test = split(frame, (0.8, 0.1, 0.1), seed=0)
    means = train.groupby("user_id")["rating"].mean()
    for part in (train, valid, test):
        part["above_mean"] = (part["rating"] > part["user_id"].map(means).fillna(3.5)).astype("int64")
    parts = [p.drop(columns=["rating"]) for p in (train, valid, test)]
    schema, _ = movielens_schema(parts[0].assign(rating=0.0).drop(columns=["above_mean"]))
    return parts, schema, [Task("like"), Task("above_mean")]


def fit_predict(name, schema, tasks, parts, seed):
    train, valid, test = parts
    keras.utils.set_random_seed(seed)
    model = zoo.build(name, schema, tasks, **MODELS[name])
    model.compile()
    model.fit(to_dataset(train, schema, tasks, 1024, seed=seed),
              validation_data=to_dataset(valid, schema, tasks, 8192, shuffle=False),
              epochs=8, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=1,
                                                       restore_best_weights=True)])
    out = model.predict(test, batch_size=8192, verbose=0)
    return {t.name: out[t.name][:, 0] for t in tasks}


def run(data_name, seeds, out_dir):
    tables = []
    for seed in seeds:
        parts, schema, tasks = synthetic(seed) if data_name == "synthetic" else movielens(seed)
        test = parts[2]
        predictions = {name: fit_predict(name, schema, tasks, parts, seed) for name in MODELS}
        single = predictions["single_task"]
        subsets = transfer_subsets(single[tasks[0].name], single[tasks[1].name])
        labels = {t.name: test[t.name].to_numpy() for t in tasks}
        table = subset_auc(labels, predictions, subsets)
        table["seed"] = seed
        tables.append(table)
        print(f"  {data_name} seed {seed}: subsets "
              f"{ {s: int((subsets == s).sum()) for s in SUBSETS} }", flush=True)
    table = pd.concat(tables).groupby(["model", "task", "subset"], sort=False).agg(
        auc=("auc", "mean"), spread=("auc", "std"), samples=("samples", "mean")).reset_index()
    pivot = table.pivot_table(index=["task", "model"], columns="subset", values="auc", sort=False)
    pivot = pivot[list(SUBSETS) + ["all"]]
    text = pivot.round(4).to_string()
    print(f"\n{data_name}: per-subset test AUC, mean over seeds {seeds}\n{text}\n", flush=True)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        plot_subset_auc(table, os.path.join(out_dir, f"stem_{data_name}.png"))
        table.to_csv(os.path.join(out_dir, f"stem_{data_name}.csv"), index=False)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="synthetic,movielens")
    parser.add_argument("--out", default=None, help="directory for the plot and CSV of each data set")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for data_name in args.data.split(","):
        run(data_name, seeds, args.out)


if __name__ == "__main__":
    main()
