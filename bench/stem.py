"""STEM-Net's premise and claim: negative transfer on a sparse task, per subset.

The paper (Su et al., AAAI 2024, Fig. 1, Tables 2-6) first shows that MMoE
and PLE fall below a single-task model on the sparse task (Like) for the
"comparable" samples, then that STEM-Net's task-specific embeddings and
All-Forward-Task-specific-Backward gate remove that loss. This bench runs
both steps on `tfmtl.data.preference_conflict`: a dense task (finish, 28%
positives) and a sparse one (like, 1.6%) with task-specific user and item
preferences that one 16-dimensional table cannot hold, ids the only
features. Every seed draws its own data, split and initialisation.

Subsets (the paper's "Delve into Negative Transfer"): each test sample's
expected feedback on each task is put in one of 10 equal-frequency buckets;
`d = bucket(finish) - bucket(like)`; finish-overwhelming `d >= 3`,
comparable `|d| <= 2`, like-overwhelming `d <= -3`. The paper's ranges did
not survive in our copy of its text: 3 is our reading (2 and 4 are reported
too). Three rules for the expected feedback: "paper" (the evaluated
single-task models' predictions, as the text says), "independent" (single-
task models of another initialisation: the evaluated baseline does not pick
its own subsets) and "oracle" (the true probabilities).

Models, all with MLP gates [128, 64] and towers [128, 64] (the authors'
code), at the `stem_small` size of `zoo/presets.py` (experts [128, 64]; 8
experts; PLE, ME-PLE and STEM-Net 8 shared + 1 per task, one level) or
`--size stem_paper` (experts [512, 512, 512]): Single-Task (one model per
task, each stopped on its own validation AUC), MMoE, PLE, ME-MMoE, ME-PLE,
STEM-Net, and STEM-Net without the stop-gradient (Table 6's ablation).
Training as the authors' FuxiCTR setup: Adam, batch 4096, gradient norm
clipped at 10, embedding L2 1e-6 (FuxiCTR's, `embedding_l2=5e-7`), early
stopping on the exact mean validation AUC with patience 1, learning rate
x0.1 on each plateau, best weights restored, at most 20 epochs. Learning
rate 1e-3 for every model (the STEM-Net config of the authors' code; the
paper's grid holds 1e-4 and 1e-3; one point keeps the run on 2 CPU cores).
`--table6` adds the gate inputs x_t and x_s, each with and without the
stop-gradient; `--table5` the field variants (none, ids, user side, item
side, all) on the data with side fields.

    python bench/stem.py [--seeds 0,1,2,3,4] [--rows 400000] [--size stem_small]
                         [--table6 0,1,2] [--table5 0,1,2] [--out bench/results] [--resume]

`--resume` keeps the seeds already in `--out`'s stem.json (same rows and size) and runs the
others, so seeds can be added in several runs; every part the file holds stays in the report,
asked again or not. `--report-only` rewrites stem.md from it.
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
from tfmtl.analysis import SUBSETS, transfer_subsets  # noqa: E402
from tfmtl.data import preference_conflict, split  # noqa: E402
from tfmtl.metrics import roc_auc  # noqa: E402

NAMES = {SUBSETS[0]: "finish-overwhelming", SUBSETS[1]: "comparable",
         SUBSETS[2]: "like-overwhelming"}
MAIN = {"Single-Task": ("single_task", {}), "MMoE": ("mmoe", {}), "PLE": ("ple", {}),
        "ME-MMoE": ("me_mmoe", {}), "ME-PLE": ("me_ple", {}), "STEM-Net": ("stem", {}),
        "STEM-Net w/o SG": ("stem", {"stop_gradient": False})}
TABLE6 = {f"STEM-Net gate {g}{'' if sg else ' w/o SG'}": ("stem", {"gate_input": g,
                                                                   "stop_gradient": sg})
          for g in ("task", "shared") for sg in (True, False)}
TABLE5 = {"STEM-Net-none": [], "STEM-Net-(user id, item id)": ["user_id", "item_id"],
          "STEM-Net-(user side)": ["user_id", "user_segment"],
          "STEM-Net-(item side)": ["item_id", "item_category"], "STEM-Net-(all)": "all"}
# The paper's Like AUC and Avg AUC (Table 2, TikTok), for the README's side-by-side.
PAPER_TIKTOK = {"Single-Task": (0.9058, 0.8281), "MMoE": (0.9018, 0.8265),
                "PLE": (0.9016, 0.8264), "ME-MMoE": (0.9045, 0.8274),
                "ME-PLE": (0.9058, 0.8275), "STEM-Net": (0.9095, 0.8304)}
TRAIN = dict(batch_size=4096, learning_rate=1e-3, max_epochs=20, embedding_l2=5e-7)


class MeanAUC(keras.callbacks.Callback):
    """Adds `val_mean_auc` to each epoch's logs: the exact mean validation AUC
    over the tasks (Keras' streaming AUC is an approximation), which
    `tfmtl.fit` then monitors."""

    def __init__(self, valid, tasks):
        super().__init__()
        self.valid, self.tasks = valid, tasks

    def on_epoch_end(self, epoch, logs=None):
        out = self.model.predict(self.valid, batch_size=65536, verbose=0)
        logs["val_mean_auc"] = float(np.mean(
            [roc_auc(self.valid[t.name].to_numpy(), out[t.name][:, 0]) for t in self.tasks]))


def train(zoo_name, hparams, schema, tasks, parts, seed, size):
    """Test scores per task of one model (stopped on `val_mean_auc`) and its epochs."""
    train_rows, valid, test = parts
    keras.utils.set_random_seed(seed)
    model = zoo.build(zoo_name, schema, tasks, **{**zoo.preset(zoo_name, size),
                                                  "embedding_l2": TRAIN["embedding_l2"], **hparams})
    model.compile(optimizer=keras.optimizers.Adam(TRAIN["learning_rate"], clipnorm=10.0))
    # FuxiCTR's loop: on an epoch without gain the learning rate x0.1, on a second in a row stop.
    decay = keras.callbacks.ReduceLROnPlateau("val_mean_auc", factor=0.1, patience=1, mode="max",
                                              min_lr=1e-6)
    history = tfmtl.fit(model, train_rows, validation=valid, epochs=TRAIN["max_epochs"],
                        batch_size=TRAIN["batch_size"], seed=seed, verbose=0, patience=2,
                        monitor="val_mean_auc", mode="max",
                        callbacks=[MeanAUC(valid, tasks), decay])
    out = model.predict(test, batch_size=65536, verbose=0)
    return {t.name: out[t.name][:, 0] for t in tasks}, len(history.history["loss"])


def single_task(schema, tasks, parts, seed, size):
    """One single-task model per task, each stopped on its own validation AUC."""
    scores, epochs = {}, []
    for task in tasks:
        s, e = train("single_task", {}, schema, [task], parts, seed, size)
        scores.update(s)
        epochs.append(e)
    return scores, max(epochs)


def subset_rows(model, scores, test, rules, seed, extra=None):
    """One row per (rule, threshold, task): AUC on every subset and on all."""
    rows = []
    for rule, (finish, like) in rules.items():
        for threshold in (2, 3, 4):
            subsets = transfer_subsets(finish, like, threshold=threshold)
            for task in ("finish", "like"):
                y, s = test[task].to_numpy(), scores[task]
                row = dict(model=model, seed=seed, rule=rule, threshold=threshold, task=task,
                           all=roc_auc(y, s), **(extra or {}))
                for subset in SUBSETS:
                    keep = subsets == subset
                    row[NAMES[subset]] = roc_auc(y[keep], s[keep]) if 0 < y[keep].sum() < keep.sum() \
                        else np.nan
                    row[f"n_{NAMES[subset]}"] = int(keep.sum())
                rows.append(row)
    return rows


def run_seed(seed, rows, size, models, table6, table5):
    frame, schema, tasks = preference_conflict(rows, side_fields=table5, seed=seed)
    parts = split(frame, (0.8, 0.1, 0.1), seed=seed)
    test = parts[2]
    results, started = [], time.time()
    single, epochs = single_task(schema, tasks, parts, seed, size)
    independent, _ = single_task(schema, tasks, parts, seed + 100, size)
    rules = {"paper": (single["finish"], single["like"]),
             "independent": (independent["finish"], independent["like"]),
             "oracle": (test.p_finish.to_numpy(), test.p_like.to_numpy())}
    extra = dict(data="side fields" if table5 else "ids")
    results += subset_rows("Single-Task", single, test, rules, seed, dict(extra, epochs=epochs))
    print(f"  seed {seed} Single-Task: like AUC {results[-1]['all']:.4f} ({epochs} epochs, "
          f"{time.time() - started:.0f} s)", flush=True)
    for name, (zoo_name, hparams) in models.items():
        if name == "Single-Task":
            continue
        started = time.time()
        scores, epochs = train(zoo_name, hparams, schema, tasks, parts, seed, size)
        results += subset_rows(name, scores, test, rules, seed, dict(extra, epochs=epochs))
        like = [r for r in results if r["model"] == name and r["rule"] == "paper"
                and r["threshold"] == 3 and r["task"] == "like"][0]
        print(f"  seed {seed} {name}: like AUC {like['all']:.4f}, comparable "
              f"{like['comparable']:.4f} ({epochs} epochs, {time.time() - started:.0f} s)",
              flush=True)
    return results


def subset_table(frame, rule, threshold, task):
    block = frame[(frame.rule == rule) & (frame.threshold == threshold) & (frame.task == task)]
    columns = ["all"] + list(NAMES.values())
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model, rows in block.groupby("model", sort=False):
        lines.append(f"| {model} | " + " | ".join(
            f"{rows[c].mean():.4f} ± {rows[c].std():.4f}" for c in columns) + " |")
    sizes = ", ".join(f"{n} {block[f'n_{n}'].mean():.0f}" for n in NAMES.values())
    return "\n".join(lines) + f"\n\nTest samples per subset (mean): {sizes}."


def differences(frame, pairs, rules=("paper", "independent", "oracle"), threshold=3,
                task="like", columns=("all", "comparable", "finish-overwhelming",
                                      "like-overwhelming")):
    lines = ["| a - b | rule | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for a, b in pairs:
        for rule in rules:
            block = frame[(frame.rule == rule) & (frame.threshold == threshold)
                          & (frame.task == task)]
            x = block[block.model == a].sort_values("seed")
            y = block[block.model == b].sort_values("seed")
            if x.empty or y.empty:
                continue
            common = sorted(set(x.seed) & set(y.seed))
            x, y = x[x.seed.isin(common)], y[y.seed.isin(common)]
            cells = []
            for c in columns:
                s = paired(x[c].to_numpy() - y[c].to_numpy())
                cells.append(f"{s['mean']:+.4f} [{s['low']:+.4f}, {s['high']:+.4f}] "
                             f"{s['wins']}/{s['n']}")
            lines.append(f"| {a} - {b} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def average_auc(frame):
    block = frame[(frame.rule == "paper") & (frame.threshold == 3)]
    lines = ["| model | finish AUC | like AUC | Avg AUC | paper (TikTok): like AUC, Avg AUC |",
             "|---|---|---|---|---|"]
    for model, rows in block.groupby("model", sort=False):
        per_seed = rows.pivot_table(index="seed", columns="task", values="all")
        avg = per_seed.mean(axis=1)
        paper = PAPER_TIKTOK.get(model)
        lines.append(f"| {model} | {per_seed['finish'].mean():.4f} ± {per_seed['finish'].std():.4f}"
                     f" | {per_seed['like'].mean():.4f} ± {per_seed['like'].std():.4f} | "
                     f"{avg.mean():.4f} ± {avg.std():.4f} | "
                     + (f"{paper[0]:.4f}, {paper[1]:.4f}" if paper else "") + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--size", default="stem_small", choices=("stem_small", "stem_paper"))
    parser.add_argument("--models", default=",".join(MAIN))
    parser.add_argument("--table6", default="", help="seeds for Table 6's gate-input rows")
    parser.add_argument("--table5", default="", help="seeds for Table 5's field variants")
    parser.add_argument("--out", help="a directory for stem.md, stem.csv and stem.json")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite --out's stem.md from its stem.json, training nothing")
    parser.add_argument("--resume", action="store_true",
                        help="keep the seeds already in --out's stem.json (same rows and size) "
                             "and run only the others")
    args = parser.parse_args()
    models = {m: MAIN[m] for m in args.models.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds6 = [int(s) for s in args.table6.split(",") if s]
    seeds5 = [int(s) for s in args.table5.split(",") if s]
    started = time.time()
    if args.report_only:
        args.resume = True
        results, done, args.earlier = earlier_results(args)
        if not results:
            raise SystemExit(f"--report-only: no stem.json in {args.out}")
        return report(results, sorted(done["seeds"]), sorted(done["table6"]),
                      sorted(done["table5"]), models, args, started)
    results, done, args.earlier = earlier_results(args) if args.resume else ([], {}, 0.0)
    # A part the file holds stays in the report when this run does not ask for it again.
    seeds6 = sorted(set(seeds6) | done.get("table6", set()))
    seeds5 = sorted(set(seeds5) | done.get("table5", set()))
    # Written after every seed: a run cut short keeps the seeds it finished.
    for n, seed in enumerate(seeds):
        if seed not in done.get("seeds", ()):
            results += run_seed(seed, args.rows, args.size, models, False, False)
            report(results, seeds[:n + 1], sorted(done.get("table6", ())),
                   sorted(done.get("table5", ())), models, args, started)
    for n, seed in enumerate(seeds6):
        if seed not in done.get("table6", ()):
            results += [r for r in run_seed(seed, args.rows, args.size, TABLE6, False, False)
                        if r["model"] not in MAIN]
            report(results, seeds, seeds6[:n + 1], sorted(done.get("table5", ())), models, args,
                   started)
    for n, seed in enumerate(seeds5):
        if seed not in done.get("table5", ()):
            variants = {name: ("stem", {"specific_fields": fields})
                        for name, fields in TABLE5.items()}
            results += run_seed(seed, args.rows, args.size, variants, False, True)
            report(results, seeds, seeds6, seeds5[:n + 1], models, args, started)
    report(results, seeds, seeds6, seeds5, models, args, started)


def earlier_results(args):
    """`--resume`: the rows of `--out`'s stem.json for the seeds asked again, what each part
    holds, and the seconds the earlier runs took."""
    path = os.path.join(args.out or ".", "stem.json")
    if not os.path.exists(path):
        return [], {}, 0.0
    with open(path) as f:
        earlier = json.load(f)
    if (earlier["rows"], earlier["size"]) != (args.rows, args.size):
        raise SystemExit(f"--resume: {path} has rows {earlier['rows']}, size {earlier['size']}; "
                         f"this run asks for {args.rows}, {args.size}")
    rows = earlier["results"]
    # What each part holds, read from the rows themselves (a list in the file can be short).
    done = {"seeds": {r["seed"] for r in rows if r["data"] == "ids" and r["model"] in MAIN},
            "table6": {r["seed"] for r in rows if r["model"] in TABLE6},
            "table5": {r["seed"] for r in rows if r["data"] == "side fields"}}
    print(f"resuming: {path} holds {', '.join(f'{k} {sorted(v)}' for k, v in done.items())}")
    return rows, done, float(earlier.get("seconds", 0.0))


def report(results, seeds, seeds6, seeds5, models, args, started):
    frame = pd.DataFrame(results)
    main_frame = frame[frame.data == "ids"]
    text = [
        f"# STEM-Net on preference_conflict ({args.rows} rows)\n",
        f"Seeds {seeds} (data, split, initialisation); size {args.size}; Adam "
        f"{TRAIN['learning_rate']}, batch {TRAIN['batch_size']}, clipnorm 10, embedding L2 1e-6 "
        f"(FuxiCTR), early stopping on exact mean validation AUC (patience 1, lr x0.1 on "
        f"plateau). Total {time.time() - started + args.earlier:.0f} s"
        + (" (with earlier runs' seeds, `--resume`)" if args.earlier else "")
        + ". Mean ± std over seeds.\n",
        "## Step 1, the premise (Fig. 1): Like AUC per subset, the paper's rule, threshold 3\n",
        subset_table(main_frame, "paper", 3, "like"),
        "\nPaired per seed (mean [95% CI] seeds-positive), Like, threshold 3:\n",
        differences(main_frame, [("MMoE", "Single-Task"), ("PLE", "Single-Task")]),
        "\nThe premise holds when MMoE and PLE minus Single-Task on the comparable subset is "
        "below 0 with its interval below 0 under the paper's rule and under another rule.\n",
        "## Step 2, the claim: STEM-Net against each model\n",
        differences(main_frame, [("STEM-Net", m) for m in models if m != "STEM-Net"]),
        "\n## Whole test set (Table 2's columns)\n", average_auc(main_frame),
        "\n## Finish AUC per subset, the paper's rule, threshold 3\n",
        subset_table(main_frame, "paper", 3, "finish"),
        "\n## Like AUC per subset under the other rules\n",
        "Independent single-task runs:\n", subset_table(main_frame, "independent", 3, "like"),
        "\nTrue probabilities:\n", subset_table(main_frame, "oracle", 3, "like"),
        "\n## The threshold (comparable |d| <= t - 1): paired Like differences on the "
        "comparable subset, the paper's rule\n",
    ]
    for threshold in (2, 4):
        text += [f"threshold {threshold}:\n", differences(
            main_frame, [("MMoE", "Single-Task"), ("PLE", "Single-Task"),
                         ("STEM-Net", "Single-Task"), ("STEM-Net", "PLE")],
            rules=("paper",), threshold=threshold, columns=("comparable",)), ""]
    if seeds6:
        text += [f"## Table 6: gate input x stop-gradient (seeds {seeds6})\n",
                 differences(main_frame, [(m, "STEM-Net") for m in TABLE6]
                             + [("STEM-Net w/o SG", "STEM-Net")], rules=("paper",)),
                 "\nThe stop-gradient per gate input (with - without; the paper's Table 6: "
                 "like AUC +0.0054 x_t, +0.0052 x_s, +0.0087 both):\n",
                 differences(main_frame, [("STEM-Net gate task", "STEM-Net gate task w/o SG"),
                                          ("STEM-Net gate shared", "STEM-Net gate shared w/o SG"),
                                          ("STEM-Net", "STEM-Net w/o SG")], rules=("paper",),
                             columns=("all", "comparable")),
                 "\n" + average_auc(main_frame[main_frame.seed.isin(seeds6)])]
    if seeds5:
        side = frame[frame.data == "side fields"]
        text += [f"\n## Table 5: which fields get task-specific tables (side fields; seeds "
                 f"{seeds5})\n", average_auc(side),
                 "\n" + differences(side, [(m, "STEM-Net-none") for m in TABLE5
                                           if m != "STEM-Net-none"], rules=("paper",))]
    epochs = main_frame.groupby("model", sort=False).epochs.mean()
    text.append("\nMean epochs: " + ", ".join(f"{m} {e:.1f}" for m, e in epochs.items()) + ".\n")
    text = "\n".join(text)
    write_results(args.out, "stem", text, dict(seeds=seeds, table6=seeds6, table5=seeds5,
                                                rows=args.rows, size=args.size, results=results,
                                                seconds=time.time() - started + args.earlier),
                  frame)


if __name__ == "__main__":
    main()
