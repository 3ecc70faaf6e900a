"""AutoMTL on MovieLens-100K and on synthetic data: search cost, the derived architecture, retrained.

For each data set: one search with the paper's method (bi-level, first
order, JSD, warm-up, DARTS- skip) and the authors' settings (15 epochs, 5 of
warm-up, 8 experts of 3 blocks of width 64, 6 experts kept per task, batch
1024), timed with its peak memory; the derived architecture (printed and
drawn); then the derived architecture retrained from scratch and the
baselines Shared-Bottom, MMoE, CGC and PLE, 3 seeds each, per-task test AUC
and MTL-Loss (the mean test log loss over tasks, the paper's). On MovieLens-
100K the paper's ablations too: each a search of its own (w/o INT, w/o SEL,
hom Expert, w/o JSD), then retrained.

Protocol: 80/10/10 random split (split seed 0; the paper: 7:1:2), the
search's alpha on the validation split, retraining with Adam 1e-3, batch
1024, early stopping on the validation loss with the paper's patience of 5
(Sec. 4.1.4; at most 50 epochs, the authors' configuration: the paper gives
no limit), the best epoch's weights kept. The authors' configuration also
retrains with weight decay 1e-4 and gradient clipping 5; the paper does not
state them and they are not used here, for any model. Every model: embedding 16, towers
[128, 64]; baselines' experts [128, 64] (the paper does not give them):
Shared-Bottom bottom [128, 64], MMoE 8 experts, CGC and PLE 4 shared + 4
task-specific experts (PLE 2 levels). Tasks: MovieLens `ok` (rating >= 3)
and `like` (rating >= 4); synthetic: `ctr_synthetic`'s `click`, `like` and
`finish` (planted shared and task-specific signal; 3 experts kept per task).

    python bench/automtl.py [--data movielens,synthetic] [--seeds 0,1,2] [--out bench/results]
                            [--reuse-search | --report-only] [--only MODEL[,MODEL]]
                            [--checkpoint-dir DIR] [--search-seed N]
                            [--search-precision mixed_bfloat16]

`--reuse-search` retrains from the architecture and search record already in
`--out` (`automtl_<data>_architecture.json`, `automtl_<data>.json`) instead
of searching again (ablations included when their record is there);
`--report-only` rewrites `automtl_<data>.md` from the CSV and JSON there.
`--only "w/o INT"` runs only the models named (searches, ablations or
baselines; one search costs about an hour here) and keeps the other models'
rows and search records already in `--out`, so the ablations can be added
one at a time to an earlier run. `--checkpoint-dir DIR` saves each search's state
after every epoch (`DIR/<data>_<model>/`); the same command resumes an
interrupted search there after its last saved epoch. `--search-seed N` seeds the
searches with N instead of 0 (their initial weights and batch order), for the
search's own spread: with `--only automtl` its rows and record are added as
`automtl (search seed N)` beside the main run's (it needs `--only`; a
baseline named there is retrained as usual). `--search-precision
mixed_bfloat16` runs the searches in bfloat16 (`Search(dtype=)`; retraining
stays float32), named `automtl (mixed_bfloat16 search)`, outside the search's
own spread. `--reuse-search` keeps those rows and records as they are.
"""

import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tfmtl  # noqa: E402
import zoo  # noqa: E402
from bench.output import write_results  # noqa: E402
from bench.stats import describe, paired, rank_sum_p  # noqa: E402
from tfmtl.data import ctr_synthetic, fetch_movielens_100k, load_movielens_100k, split  # noqa: E402
from tfmtl.data.movielens import movielens_schema  # noqa: E402
from tfmtl.metrics import roc_auc  # noqa: E402
from tfmtl.schema import Task  # noqa: E402
from tfmtl.search import Architecture, search  # noqa: E402

SEARCH = dict(epochs=15, warmup=5, num_experts=8, blocks=3, units=64, embedding_dim=16,
              tower_units=(128, 64), batch_size=1024, valid_batch_size=2048)
# zoo/presets.py's "automtl" sizes: Shared-Bottom [128, 64], MMoE 8 experts, CGC and PLE 4 + 4.
BASELINES = {name: zoo.preset(name, "automtl") for name in ("shared_bottom", "mmoe", "cgc", "ple")}
TRAIN = dict(epochs=50, batch_size=1024, patience=5, learning_rate=1e-3, verbose=0)
ABLATIONS = ("w/o INT", "hom Expert", "w/o SEL", "w/o JSD")

# The paper's Table 3 (AUC of task 0 / task 1, MTL-Loss), IJCAI-2015 and AliExpress-NL.
PAPER = {
    "shared_bottom": "IJCAI 0.7698/0.8504, 0.3176; NL 0.7080/0.8117, 0.0562",
    "mmoe": "IJCAI 0.7695/0.8498, 0.3177; NL 0.7064/0.8245, 0.0568",
    "cgc": "IJCAI 0.7689/0.8516, 0.3172; NL 0.7050/0.8255, 0.0574",
    "ple": "IJCAI 0.7695/0.8493, 0.3190; NL 0.7064/0.8350, 0.0574",
    "automtl": "IJCAI 0.7711/0.8532, 0.3161; NL 0.7082/0.8429, 0.0560",
    "w/o INT": "IJCAI 0.7700/0.8484, 0.3178; NL 0.6934/0.8243, 0.0577",
    "hom Expert": "IJCAI 0.7691/0.8521, 0.3171; NL 0.7008/0.8317, 0.0570",
    "w/o SEL": "IJCAI 0.7684/0.8471, 0.3189; NL 0.6885/0.8424, 0.0578",
    "w/o JSD": "IJCAI 0.7703/0.8490, 0.3179; NL 0.7028/0.8348, 0.0567",
}


def movielens(cache=None):
    frame, _, _ = load_movielens_100k(fetch_movielens_100k(cache))
    frame["ok"] = (frame["rating"] >= 3).astype("int64")
    parts = split(frame, (0.8, 0.1, 0.1), seed=0)
    schema, _ = movielens_schema(parts[0].drop(columns=["ok"]))
    parts = [p.drop(columns=["rating", "timestamp"]) for p in parts]
    return parts, schema, [Task("ok"), Task("like")]


def synthetic():
    frame, schema, tasks = ctr_synthetic(100_000, seed=0)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("p_")])
    return split(frame, (0.8, 0.1, 0.1), seed=0), schema, tasks


def bayes_optimal():
    """Test AUC of `ctr_synthetic`'s own probabilities (`p_<task>`) on the bench's test split."""
    frame, _, tasks = ctr_synthetic(100_000, seed=0)
    test = split(frame, (0.8, 0.1, 0.1), seed=0)[2]
    return {t.name: roc_auc(test[t.name].to_numpy(), test[f"p_{t.name}"].to_numpy())
            for t in tasks}


def evaluate(name, schema, tasks, parts, seed, **hparams):
    train, valid, test = parts
    keras.utils.set_random_seed(seed)
    model = zoo.build(name, schema, tasks, **hparams)
    started = time.time()
    history = tfmtl.fit(model, train, validation=valid, seed=seed, **TRAIN)
    out = model.predict(test, batch_size=8192, verbose=0)
    result = {"epochs": len(history.history["loss"]), "seconds": time.time() - started,
              "parameters": int(model.count_params())}
    losses = []
    for task in tasks:
        y, p = test[task.name].to_numpy(), np.clip(out[task.name][:, 0], 1e-7, 1 - 1e-7)
        result[f"{task.name}_auc"] = roc_auc(y, p)
        losses.append(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))))
    result["mtl_loss"] = float(np.mean(losses))
    return result


def scores(result, tasks):
    """`ok AUC 0.8067, like AUC 0.7788, MTL-Loss 0.4706` for one retrained model."""
    return (", ".join(f"{t.name} AUC {result[f'{t.name}_auc']:.4f}" for t in tasks)
            + f", MTL-Loss {result['mtl_loss']:.4f}")


def earlier_searches(out_dir, data_name):
    """The search records of an earlier run in `out_dir` (`--reuse-search`)."""
    path = os.path.join(out_dir or "", f"automtl_{data_name}.json")
    if not os.path.exists(path):
        raise SystemExit(f"--reuse-search: no earlier search record at {path}")
    with open(path) as f:
        return json.load(f)[data_name]


def label_of(variant, search_seed=0, precision="float32"):
    """The model name of a searched variant in the results: `automtl`, `w/o INT`, ...; a search
    with another seed than 0 adds it, `automtl (search seed 1)`, and a search in another precision
    than float32 too, `automtl (mixed_bfloat16 search)`."""
    parts = ([f"search seed {search_seed}"] if search_seed else []) + (
        [f"{precision} search"] if precision != "float32" else [])
    return f"{variant} ({', '.join(parts)})" if parts else variant


def label_of_base(label):
    """The variant a results label names: `automtl (search seed 1)` -> `automtl`."""
    return re.sub(r" \((search seed \d+)?(, )?(\w+ search)?\)$", "", label)


def float32_search(label):
    """Whether `label` is one of AutoMTL's float32 searches (the search's own spread)."""
    return label_of_base(label) == "automtl" and not label.endswith(" search)")


def run_data(data_name, seeds, variants, out_dir, cache, reuse=False, only=None,
             checkpoint=None, search_seed=0, precision="float32"):
    """Searches (or reuses) each variant and retrains it, then the baselines, `seeds` each.

    With `only` (a set of model names), just those run; the other models' rows and search
    records are taken from the earlier run in `out_dir`. `search_seed` seeds the searches (their
    initial weights and batch order) and `precision` is their dtype policy (the retrains are
    float32 either way); the retrains use `seeds`."""
    parts, schema, tasks = movielens(cache) if data_name == "movielens" else synthetic()
    rows, searched = [], {}
    earlier = earlier_searches(out_dir, data_name) if reuse or only else {}
    kept = pd.DataFrame()
    if only:
        unknown = only - set(variants) - set(BASELINES)
        if unknown:
            raise SystemExit(f"--only: unknown models {sorted(unknown)} for {data_name}; "
                             f"known: {list(variants) + list(BASELINES)}")
        labels = {label_of(m, search_seed, precision) if m in variants else m for m in only}
        kept = pd.read_csv(os.path.join(out_dir, f"automtl_{data_name}.csv"))
        kept = kept[~kept.model.isin(labels)]
        searched = {k: v for k, v in earlier.items() if k not in labels}
        reuse = False
    elif reuse:  # the other searches' rows and records stay, as they were retrained
        searched = {k: v for k, v in earlier.items() if k != label_of_base(k)}
        path = os.path.join(out_dir, f"automtl_{data_name}.csv")
        if searched and os.path.exists(path):
            kept = pd.read_csv(path)
            kept = kept[kept.model.isin(searched)]
    for variant in variants:
        if only and variant not in only:
            continue
        label = label_of(variant, search_seed, precision)
        if reuse:
            if label not in earlier:
                print(f"{data_name}: no earlier search of {variant}; skipped", flush=True)
                continue
            searched[label] = earlier[label]
            architecture = Architecture.from_json(json.dumps(earlier[label]["architecture"]))
            print(f"{data_name}: {variant} as searched before", flush=True)
        else:
            print(f"{data_name}: search {variant}", flush=True)
            state = (None if checkpoint is None else os.path.join(
                checkpoint, f"{data_name}_{re.sub('[^a-zA-Z0-9]+', '_', label).strip('_')}"))
            architecture, history = search(schema, tasks, parts[0], parts[1], variant=variant,
                                           seed=search_seed, dtype=precision, verbose=1,
                                           checkpoint=state, **SEARCH)
            searched[label] = {"architecture": json.loads(architecture.to_json()),
                               "history": history}
        print(architecture.summary(), flush=True)
        print(f"  search: {architecture.info['seconds']:.0f} s, peak RSS "
              f"{architecture.info['peak_rss_mib']:.0f} MiB", flush=True)
        if out_dir and variant == "automtl" and not reuse:
            stem = (f"automtl_{data_name}" + (f"_search_seed{search_seed}" if search_seed else "")
                    + ("_bf16" if precision == "mixed_bfloat16" else ""))
            architecture.save(os.path.join(out_dir, f"{stem}_architecture.json"))
            architecture.draw(os.path.join(out_dir, f"{stem}_architecture.png"))
        for seed in seeds:
            result = evaluate("automtl", schema, tasks, parts, seed, architecture=architecture)
            rows.append(dict(data=data_name, model=label, seed=seed, **result))
            print(f"    {label} seed {seed}: {scores(result, tasks)}", flush=True)
    for name, hparams in BASELINES.items():
        if only and name not in only:
            continue
        for seed in seeds:
            result = evaluate(name, schema, tasks, parts, seed, **hparams)
            rows.append(dict(data=data_name, model=name, seed=seed, **result))
            print(f"    {name} seed {seed}: {scores(result, tasks)}", flush=True)
        save_rows(out_dir, data_name, kept, rows)
    return save_rows(out_dir, data_name, kept, rows), searched, tasks


def save_rows(out_dir, data_name, kept, rows):
    """The rows so far (after the kept ones), written to `automtl_<data>.csv` in `out_dir`."""
    frame = pd.concat([kept, pd.DataFrame(rows)], ignore_index=True)
    if out_dir:
        frame.to_csv(os.path.join(out_dir, f"automtl_{data_name}.csv"), index=False)
    return frame


def table(frame, tasks, searched, title):
    columns = [f"{t.name}_auc" for t in tasks] + ["mtl_loss"]
    lines = [title, "", "| model | " + " | ".join(columns) + " | parameters | epochs | search s "
             "| peak RSS MiB | paper (Table 3) |", "|---" * (len(columns) + 6) + "|"]
    for model, block in frame.groupby("model", sort=False):
        cells = [f"{block[c].mean():.4f} ± {block[c].std():.4f}" for c in columns]
        info = searched.get(model, {}).get("architecture", {}).get("info", {})
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {int(block.parameters.mean())} | "
                     f"{block.epochs.mean():.1f} | {info.get('seconds', float('nan')):.0f} | "
                     f"{info.get('peak_rss_mib', float('nan')):.0f} | {PAPER.get(label_of_base(model), '')} |")
    best = {c: frame.groupby("model")[c].mean() for c in columns}
    baseline = [m for m in BASELINES if m in best[columns[0]]]
    if "automtl" in best[columns[0]] and baseline:
        parts = []
        for c in columns:
            ours = best[c]["automtl"]
            top = (best[c][baseline].min() if c == "mtl_loss" else best[c][baseline].max())
            better = ours < top if c == "mtl_loss" else ours > top
            parts.append(f"{c}: AutoMTL {ours:.4f} vs best baseline {top:.4f} "
                         f"({'better' if better else 'not better'})")
        lines += ["", "Against the best baseline (means over seeds): " + "; ".join(parts)]
        lines += ["", "AutoMTL minus each baseline and ablation, paired by seed (mean [95% "
                  "interval], seeds with AutoMTL ahead: higher AUC, lower MTL-Loss; sign-flip "
                  "p):", ""]
        ours = frame[frame.model == "automtl"].set_index("seed")
        for name in baseline + [a for a in ABLATIONS if a in best[columns[0]]]:
            theirs = frame[frame.model == name].set_index("seed")
            lines.append(f"- {name}: " + "; ".join(
                f"{c} {describe(paired_ahead((ours[c] - theirs[c]).dropna(), c))}"
                for c in columns))
    return "\n".join(lines + search_spread(frame, columns, searched))


def search_spread(frame, columns, searched):
    """Lines on the search's own spread when AutoMTL was searched with several seeds: each
    search's means over its retrains, the spread of those means across searches, where each
    other model's mean lies against the searches' range, and each ablation's searches against
    AutoMTL's (`ablation_searches`)."""
    searches = [m for m in frame.model.unique() if float32_search(m)]
    if len(searches) < 2:
        return []
    means = frame[frame.model.isin(searches)].groupby("model", sort=False)[columns].mean()
    lines = ["", f"The search's own spread: AutoMTL searched {len(searches)} times (`automtl` "
             "with search seed 0, the others with the seed in their name), each derived "
             "architecture retrained with the seeds above; the means over those retrains:", "",
             "| search | " + " | ".join(columns) + " | search s | peak RSS MiB | interaction | "
             "experts per task |", "|---" * (len(columns) + 5) + "|"]
    for model in searches:
        arch = searched.get(model, {}).get("architecture", {})
        info = arch.get("info", {})
        lines.append(f"| {model} | " + " | ".join(f"{means.loc[model, c]:.4f}" for c in columns)
                     + f" | {info.get('seconds', float('nan')):.0f} | "
                     f"{info.get('peak_rss_mib', float('nan')):.0f} | "
                     f"{arch.get('interaction', '?')} | "
                     + "; ".join(f"{t} {e}" for t, e in arch.get("task_experts", {}).items())
                     + " |")
    lines.append("| across searches (mean ± std) | " + " | ".join(
        f"{means[c].mean():.4f} ± {means[c].std():.4f}" for c in columns) + " | | | | |")
    lines += ["", "Each other model's mean against the range of the searches' means (below / "
              "inside / above [lowest, highest]):", ""]
    for model, block in frame[~frame.model.isin(searches)].groupby("model", sort=False):
        cells = []
        for c in columns:
            low, high, value = means[c].min(), means[c].max(), block[c].mean()
            where = "below" if value < low else "above" if value > high else "inside"
            cells.append(f"{c} {value:.4f} {where} [{low:.4f}, {high:.4f}]")
        lines.append(f"- {model}: " + "; ".join(cells))
    return lines + ablation_searches(frame, columns, means)


def ablation_searches(frame, columns, automtl_means):
    """Lines for each ablation's float32 searches against AutoMTL's, one mean per search (over
    its retrains), so that the search's own spread is on both sides: AutoMTL minus the ablation
    (means of the search means) and the exact one-sided rank-sum p of AutoMTL's searches being
    ahead (higher AUC, lower MTL-Loss). With one search of the ablation and `k` of AutoMTL, p
    cannot fall below `1 / (k + 1)`."""
    lines = []
    for ablation in ABLATIONS:
        labels = [m for m in frame.model.unique()
                  if label_of_base(m) == ablation and not m.endswith(" search)")]
        if not labels:
            continue
        means = frame[frame.model.isin(labels)].groupby("model", sort=False)[columns].mean()
        cells = []
        for c in columns:
            sign = -1.0 if c == "mtl_loss" else 1.0
            p = rank_sum_p(sign * automtl_means[c].to_numpy(), sign * means[c].to_numpy())
            cells.append(f"{c} {automtl_means[c].mean() - means[c].mean():+.4f}, p={p:.3f}")
        if not lines:
            lines = ["", "AutoMTL's searches against each ablation's (one mean per search over "
                     "its retrains): AutoMTL minus the ablation, means of the search means; "
                     "exact one-sided rank-sum p of AutoMTL's searches being ahead (higher AUC, "
                     "lower MTL-Loss):", ""]
        searches = f"{len(labels)} search{'es' if len(labels) > 1 else ''}"
        lines.append(f"- {ablation} ({searches} against {len(automtl_means)}): "
                     + "; ".join(cells))
    return lines


def paired_ahead(differences, column):
    """`paired` summary of AutoMTL minus another model; for a loss, ahead is below zero."""
    summary = paired(differences)
    if column == "mtl_loss":
        summary["wins"] = int(np.sum(np.asarray(differences) < 0))
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="movielens,synthetic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ablations", default="movielens",
                        help="data sets on which the ablations are searched too")
    parser.add_argument("--cache")
    parser.add_argument("--out", help="directory for automtl_<data>.md, .csv, .json and drawings")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite automtl_<data>.md from the CSV and JSON in --out")
    parser.add_argument("--reuse-search", action="store_true",
                        help="retrain from the searches recorded in --out instead of searching")
    parser.add_argument("--only", help="comma-separated models to run (e.g. 'w/o INT'); the "
                        "others' rows and search records are kept from --out")
    parser.add_argument("--search-seed", type=int, default=0,
                        help="seed of the searches (0: the main run); with another seed the "
                        "searched models are named e.g. 'automtl (search seed 1)' in the results")
    parser.add_argument("--search-precision", default="float32",
                        choices=("float32", "mixed_bfloat16"),
                        help="the searches' dtype policy; mixed_bfloat16 names them e.g. "
                        "'automtl (mixed_bfloat16 search)' (the retrains stay float32)")
    parser.add_argument("--checkpoint-dir", metavar="DIR", help="save each search's state there "
                        "after every epoch and resume an interrupted one from it")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    if only and not args.out:
        parser.error("--only needs --out (the earlier run it adds to)")
    if (args.search_seed or args.search_precision != "float32") and not only:
        parser.error("--search-seed and --search-precision need --only (e.g. --only automtl): "
                     "their searches are added beside the main run's in --out")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    for data_name in args.data.split(","):
        variants = ("automtl",) + (ABLATIONS if data_name in args.ablations.split(",") else ())
        if only:
            variants = ("automtl",) + ABLATIONS
        if args.report_only:
            frame = pd.read_csv(os.path.join(args.out, f"automtl_{data_name}.csv"))
            frame = frame[frame.seed.isin(seeds)]
            searched = earlier_searches(args.out, data_name)
            tasks = [Task(c[:-len("_auc")]) for c in frame.columns if c.endswith("_auc")]
        else:
            frame, searched, tasks = run_data(data_name, seeds, variants, args.out, args.cache,
                                              args.reuse_search, only, args.checkpoint_dir,
                                              args.search_seed, args.search_precision)
        title = (f"### {data_name}: per-task test AUC and MTL-Loss, mean ± std over seeds {seeds}"
                 " (retrained from scratch; each search ran once, seed 0 unless its name says "
                 "another)")
        sections = [table(frame, tasks, searched, title), ""]
        if data_name == "synthetic":
            sections += ["Bayes-optimal test AUC (the generator's own probabilities, same split): "
                         + ", ".join(f"{t} {auc:.4f}" for t, auc in bayes_optimal().items()), ""]
        arch = searched["automtl"]["architecture"]
        sections += ["Derived architecture:", "", "```",
                     f"interaction: {arch['interaction']}"]
        sections += [f"expert {i}: {' -> '.join(ops)}" for i, ops in enumerate(arch["experts"])]
        sections += [f"task {t}: experts {e}" for t, e in arch["task_experts"].items()]
        sections += ["```", ""]
        for label in sorted((k for k in searched if k != "automtl" and label_of_base(k) == "automtl"),
                            key=lambda k: (k.endswith(" search)"),
                                           int((re.findall(r"seed (\d+)", k) or ["0"])[0]))):
            other = searched[label]["architecture"]
            sections += [f"Derived by {label}:", "", "```",
                         f"interaction: {other['interaction']}"]
            sections += [f"expert {i}: {' -> '.join(ops)}"
                         for i, ops in enumerate(other["experts"])]
            sections += [f"task {t}: experts {e}" for t, e in other["task_experts"].items()]
            sections += ["```", ""]
        # One file set per data set, so that a data set run alone keeps the others' results.
        write_results(args.out, f"automtl_{data_name}", "\n".join(sections), {data_name: searched})


if __name__ == "__main__":
    main()
