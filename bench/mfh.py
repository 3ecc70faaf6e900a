"""MFH's Table 6 on MovieLens-100K: per user-activity group, like AUC and rating
MSE of the flat 2-task, flat 6-task, H-MTL 6-task and MFH 6-task models,
with MMoE and with PLE switchers.

The paper's setting (Sec. 5.2.2-5.2.3): users grouped by their number of
ratings, new 20-36, low 37-99, high > 99 (27.12 / 34.90 / 37.98 % of
MovieLens-20M's users); tasks ctr (rating >= 4) and rate (the rating,
regression) per group; towers (64, 32) for every task; switchers by level
(Sec. 5.1.2): Shared-Bottom at level 0, PLE at level 1, CGC at level 2 in
H-MTL and MFH, PLE in the flat models, at the sizes of appendix A.4 (root
512; PLE 2 extraction levels of 2 + 2 experts, 256 then 128; CGC 1 + 1 of
128). The MMoE rows replace the intra-facet switchers (levels >= 1) by MMoE
and the flat models' PLE by MMoE; the root stays Shared-Bottom (our reading:
the paper names only the "micro structure"). The loss: every task's row
losses summed over the number of (row, task) pairs in the batch (the
authors' code, `loss_normalization="per_sample"`), for every model.

Ours, where the paper is silent or impossible here: MovieLens-100K (no
larger MovieLens ships in any package this machine can install; the paper's
group boundaries applied to each user's number of ratings in the whole data
set); an 80/10/10 split per seed; embedding 16; MMoE 4 experts of one 256
layer at level 1 (and in the flat models) and 2 of one 128 layer at level 2;
Adam 1e-3, batch 1024, early stopping on the validation loss (patience 2, at
most 20 epochs); seeds 0-4. One more row, ours: MFH with the "lessons
learned" sharing of Sec. 5.1.4 (a group's tasks also train on the rows of
less active groups).

    python bench/mfh.py [--seeds 0,1,2,3,4] [--switchers MMoE,PLE] [--out DIR] [--resume]

`--resume` keeps the seeds already in `--out`'s mfh.json (same switchers and models) and runs
the others, so seeds can be added in several runs.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tfmtl  # noqa: E402
import zoo  # noqa: E402
from bench.output import write_results  # noqa: E402
from bench.stats import paired  # noqa: E402
from tfmtl.data import fetch_movielens_100k, load_movielens_100k, split  # noqa: E402
from tfmtl.data.movielens import movielens_schema  # noqa: E402
from tfmtl.metrics import roc_auc  # noqa: E402
from tfmtl.mfh import Facet, FacetedTasks  # noqa: E402
from tfmtl.schema import DenseFeature, Schema, Task  # noqa: E402
from zoo.mfh import DEFAULT_SWITCHERS  # noqa: E402

GROUPS = ("new", "low", "high")
BOUNDARIES = (37.0, 100.0)  # new 20-36, low 37-99, high >= 100 ratings
PAPER_USER_SHARES = {"new": 27.12, "low": 34.90, "high": 37.98}
BEHAVIOURS = [Task("like"), Task("rating", "regression")]
MMOE_LEVEL_1 = zoo.switcher_spec("mmoe", "mfh_level_1")  # MMoE 4 x [256]
MMOE_LEVEL_2 = zoo.switcher_spec("mmoe", "mfh_level_2")  # MMoE 2 x [128]
TREE_SWITCHERS = {"PLE": DEFAULT_SWITCHERS,
                  "MMoE": (DEFAULT_SWITCHERS[0], MMOE_LEVEL_1, MMOE_LEVEL_2)}
FLAT_SWITCHER = {"PLE": DEFAULT_SWITCHERS[1], "MMoE": MMOE_LEVEL_1}
MODELS = ("Flat 2-task", "Flat 6-task", "H-MTL 6-task", "MFH 6-task", "MFH 6-task + sharing")
# Table 6: (ctr AUC, rate MSE) for new, low, high.
PAPER = {
    ("MMoE", "Flat 2-task"): ((.7035, .9670), (.7194, .9145), (.7373, .8082)),
    ("MMoE", "Flat 6-task"): ((.7044, .9627), (.7194, .9113), (.7370, .8040)),
    ("MMoE", "H-MTL 6-task"): ((.7050, .9537), (.7205, .9018), (.7415, .8068)),
    ("MMoE", "MFH 6-task"): ((.7072, .9517), (.7232, .8988), (.7422, .7960)),
    ("PLE", "Flat 2-task"): ((.7049, .9604), (.7209, .9116), (.7390, .7957)),
    ("PLE", "Flat 6-task"): ((.7065, .9581), (.7213, .9102), (.7412, .7958)),
    ("PLE", "H-MTL 6-task"): ((.7091, .9576), (.7245, .9047), (.7440, .7925)),
    ("PLE", "MFH 6-task"): ((.7098, .9476), (.7260, .8926), (.7468, .7898)),
}
COMPARISONS = (("MFH 6-task", "Flat 6-task"), ("MFH 6-task", "H-MTL 6-task"),
               ("H-MTL 6-task", "Flat 6-task"), ("Flat 6-task", "Flat 2-task"),
               ("MFH 6-task + sharing", "MFH 6-task"))


def movielens(cache=None):
    """ML-100K with `user_activity` (the user's number of ratings in the whole data set)."""
    frame, _, _ = load_movielens_100k(fetch_movielens_100k(cache))
    counts = frame.groupby("user_id").size()
    frame = frame.assign(user_activity=frame.user_id.map(counts).astype("float32"))
    group = np.digitize(counts.to_numpy(), BOUNDARIES)
    shares = {g: 100.0 * float(np.mean(group == i)) for i, g in enumerate(GROUPS)}
    return frame, shares


def schema_of(train):
    schema, _ = movielens_schema(train.drop(columns=["user_activity"]))
    activity = train.user_activity
    return Schema(list(schema) + [DenseFeature("user_activity", float(activity.mean()),
                                               float(activity.var()))])


def build(model_name, switcher, schema):
    facet = Facet("group", GROUPS, "user_activity", boundaries=BOUNDARIES)
    sharing = "paper" if model_name.endswith("sharing") else None
    faceted = FacetedTasks(BEHAVIOURS, [facet], sharing=sharing)
    if model_name == "Flat 2-task":
        return zoo.build("flat", schema, BEHAVIOURS, switchers=FLAT_SWITCHER[switcher]), faceted
    if model_name == "Flat 6-task":
        return zoo.build("flat", schema, faceted, switchers=FLAT_SWITCHER[switcher]), faceted
    kind = "hmtl" if model_name.startswith("H-MTL") else "mfh"
    return zoo.build(kind, schema, faceted, switchers=TREE_SWITCHERS[switcher]), faceted


def run_one(model_name, switcher, parts, schema, seed):
    train, valid, test = parts
    keras.utils.set_random_seed(seed)
    model, faceted = build(model_name, switcher, schema)
    started = time.time()
    history = tfmtl.fit(model, train, validation=valid, epochs=20, batch_size=1024, patience=2,
                        learning_rate=1e-3, seed=seed, verbose=0)
    seconds = time.time() - started
    out = model.predict(test, batch_size=8192, verbose=0)
    group = faceted.partition(test).numpy()
    row = dict(switcher=switcher, model=model_name, seed=seed, epochs=len(history.epoch),
               seconds=seconds, params=model.count_params())
    for g, name in enumerate(GROUPS):
        keep = group == g
        row[f"{name}_rows"] = int(keep.sum())
        row[f"{name}_auc"] = roc_auc(test.like.to_numpy()[keep], out["like"][keep, 0])
        row[f"{name}_mse"] = float(np.mean((test.rating.to_numpy()[keep]
                                            - out["rating"][keep, 0]) ** 2))
    return row


def results_table(frame):
    header = ["switcher", "model"] + [f"{g} {m}" for g in GROUPS for m in ("ctr AUC", "rate MSE")]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for (switcher, model), block in frame.groupby(["switcher", "model"], sort=False):
        base = frame[(frame.switcher == switcher) & (frame.model == "Flat 2-task")]
        paper = PAPER.get((switcher, model))
        paper_base = PAPER.get((switcher, "Flat 2-task"))
        cells = []
        for i, g in enumerate(GROUPS):
            for j, metric in enumerate(("auc", "mse")):
                values = block[f"{g}_{metric}"]
                change = 100.0 * (values.mean() / base[f"{g}_{metric}"].mean() - 1.0)
                cell = f"{values.mean():.4f} ± {values.std():.4f} ({change:+.2f}%)"
                if paper:
                    paper_change = 100.0 * (paper[i][j] / paper_base[i][j] - 1.0)
                    cell += f"; paper {paper[i][j]:.4f} ({paper_change:+.2f}%)"
                cells.append(cell)
        lines.append(f"| {switcher} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(frame):
    """Per seed a - b (AUC) and b - a (MSE): positive = `a` better, as in the paper's signs."""
    header = ["switcher", "a - b"] + [f"{g} {m}" for g in GROUPS for m in ("ctr AUC", "rate MSE")]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for switcher in dict.fromkeys(frame.switcher):
        for a, b in COMPARISONS:
            x = frame[(frame.switcher == switcher) & (frame.model == a)].sort_values("seed")
            y = frame[(frame.switcher == switcher) & (frame.model == b)].sort_values("seed")
            if x.empty or y.empty:
                continue
            cells = []
            for i, g in enumerate(GROUPS):
                for j, metric in enumerate(("auc", "mse")):
                    d = x[f"{g}_{metric}"].to_numpy() - y[f"{g}_{metric}"].to_numpy()
                    d = d if metric == "auc" else -d
                    s = paired(d)
                    cell = (f"{s['mean']:+.4f} [{s['low']:+.4f}, {s['high']:+.4f}] "
                            f"{s['wins']}/{s['n']}")
                    pa, pb = PAPER.get((switcher, a)), PAPER.get((switcher, b))
                    if pa and pb:
                        paper = pa[i][j] - pb[i][j]
                        cell += f"; paper {paper if metric == 'auc' else -paper:+.4f}"
                    cells.append(cell)
            lines.append(f"| {switcher} | {a} - {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--switchers", default="MMoE,PLE")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--cache")
    parser.add_argument("--out", help="a directory for mfh.md, mfh.csv and mfh.json")
    parser.add_argument("--resume", action="store_true",
                        help="keep the seeds already in --out's mfh.json and run only the others")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    switchers, models = args.switchers.split(","), args.models.split(",")
    bad = [s for s in switchers if s not in TREE_SWITCHERS] + [m for m in models if m not in MODELS]
    if bad:
        raise SystemExit(f"unknown {bad}: switchers {list(TREE_SWITCHERS)}, models {list(MODELS)}")
    frame, shares = movielens(args.cache)
    results = []
    done = set()
    if args.resume:
        results, done = earlier_results(args.out, switchers, models)
    for seed in seeds:
        if seed in done:
            continue
        parts = split(frame, (0.8, 0.1, 0.1), seed=seed)
        schema = schema_of(parts[0])
        for switcher in switchers:
            for model_name in models:
                row = run_one(model_name, switcher, parts, schema, seed)
                results.append(row)
                print(f"  seed {seed} {switcher} {model_name}: " + ", ".join(
                    f"{g} {row[f'{g}_auc']:.4f}/{row[f'{g}_mse']:.4f}" for g in GROUPS)
                    + f" ({row['epochs']} epochs, {row['seconds']:.0f} s)", flush=True)
        # Written after every seed: a run cut short keeps the seeds it finished.
        report(results, seeds[:seeds.index(seed) + 1], shares, args.out)


def earlier_results(out, switchers, models):
    """`--resume`: the rows of `out`'s mfh.json and the seeds they hold in full."""
    path = os.path.join(out or ".", "mfh.json")
    if not os.path.exists(path):
        return [], set()
    with open(path) as f:
        earlier = json.load(f)["results"]
    runs = {(r["seed"], r["switcher"], r["model"]) for r in earlier}
    done = {s for s, _, _ in runs
            if all((s, w, m) in runs for w in switchers for m in models)}
    print(f"resuming: {path} holds seeds {sorted(done)}", flush=True)
    return [r for r in earlier if r["seed"] in done], done


def report(results, seeds, shares, out):
    table = pd.DataFrame(results)
    rows = {g: int(table[f"{g}_rows"].mean()) for g in GROUPS}
    text = (
        f"# MFH Table 6 on MovieLens-100K\n\nSeeds {seeds} (split, initialisation and "
        f"shuffling); training time {table.seconds.sum():.0f} s over all runs. Users per group: "
        + ", ".join(f"{g} {shares[g]:.2f}% (paper, ML-20M: {PAPER_USER_SHARES[g]:.2f}%)"
                    for g in GROUPS)
        + "; test rows per group (mean over seeds): "
        + ", ".join(f"{g} {n}" for g, n in rows.items())
        + ".\n\nMean ± std over seeds, in brackets the change against the flat 2-task model "
          "of the same switcher; the paper's Table 6 beside.\n\n" + results_table(table)
        + "\n\nPaired differences per seed (positive: the first model better; AUC a - b, MSE "
          "b - a): mean [95% CI], seeds where positive; the paper's difference beside.\n\n"
        + paired_table(table) + "\n\nParameters: " + ", ".join(
            f"{s} {m} {int(b.params.iloc[0]):,}" for (s, m), b in
            table.groupby(["switcher", "model"], sort=False)) + ".\n")
    write_results(out, "mfh", text, dict(seeds=seeds, shares=shares, results=results), table)


if __name__ == "__main__":
    main()
