"""Every zoo model on MovieLens-100K: per-task test metrics over seeds.

A fixed 80/10/10 random split (split seed 0); each model trains with the
seeds given (initialisation and shuffling), Adam 1e-3, batch 512, early
stopping on the validation loss (patience 2, best weights restored, at most
30 epochs). Tasks: `like` (rating >= 4; AUC) and `rating` (MSE). ESMM and
AITM model a funnel of binary steps, so they get `ok` (rating >= 3) then
`like` on the same rows and report the `like` AUC only. `--dtypes
float32,mixed_bfloat16` trains each model under both policies
(`zoo.build(..., dtype=)`) with the same seeds, and adds the paired
differences (bfloat16 minus float32, seed by seed) and the seconds per epoch.

    python bench/quality.py [--models mmoe,ple] [--seeds 0,1,2] [--dtypes float32]
        [--set orthogonal_form=paper] [--out FILE.md]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfmtl  # noqa: E402
import zoo  # noqa: E402
from tfmtl.data import fetch_movielens_100k, load_movielens_100k, split  # noqa: E402
from tfmtl.data.movielens import movielens_schema  # noqa: E402
from tfmtl.metrics import roc_auc  # noqa: E402
from tfmtl.schema import Task  # noqa: E402

FUNNEL = {"esmm", "aitm"}


def run(name, seed, frames, dtype="float32", hparams=None):
    train, valid, test = frames
    schema, tasks = movielens_schema(train.drop(columns=["ok"]))  # "ok" is a label only
    if name in FUNNEL:
        tasks = [Task("ok"), Task("like")]
    keras.utils.set_random_seed(seed)
    model = zoo.build(name, schema, tasks, dtype=dtype, **(hparams or {}))
    started = time.time()
    history = tfmtl.fit(model, train, validation=valid, epochs=30, batch_size=512, patience=2,
                        learning_rate=1e-3, seed=seed, verbose=0)
    predictions = model.predict(test, batch_size=8192, verbose=0)
    result = {"like_auc": roc_auc(test["like"], predictions["like"]),
              "epochs": len(history.history["loss"]), "seconds": time.time() - started}
    if "rating" in predictions:
        result["rating_mse"] = float(np.mean((test["rating"].to_numpy() - predictions["rating"][:, 0]) ** 2))
    return result


def differences(results, baseline):
    """Seed by seed, `results` minus `baseline` (mean, then each seed), and the ratio of their
    mean seconds per epoch."""
    parts = []
    for key in ("like_auc", "rating_mse"):
        d = [a[key] - b[key] for a, b in zip(results, baseline) if key in a]
        if d:
            parts.append(f"{key} {np.mean(d):+.4f} ({'/'.join(f'{v:+.4f}' for v in d)})")

    def per_epoch(runs):
        return np.mean([r["seconds"] / r["epochs"] for r in runs])

    parts.append(f"seconds per epoch {per_epoch(results) / per_epoch(baseline):.2f}x")
    return "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(zoo.list()))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", help="also write the table to this markdown file")
    parser.add_argument("--cache")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a hyperparameter of every model run, VALUE in JSON")
    parser.add_argument("--dtypes", default="float32",
                        help="dtype policies, comma-separated (float32, mixed_bfloat16, ...)")
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")
    hparams = {}
    for pair in args.set:
        key, _, value = pair.partition("=")
        try:
            hparams[key] = json.loads(value)
        except json.JSONDecodeError:
            hparams[key] = value

    frame, _, _ = load_movielens_100k(fetch_movielens_100k(args.cache))
    frame["ok"] = (frame["rating"] >= 3).astype("int64")
    frames = split(frame, (0.8, 0.1, 0.1), seed=0)
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = [
        f"MovieLens-100K, 80/10/10 split (seed 0), {len(seeds)} seeds ({args.seeds}); "
        "mean ± std over seeds; test split."
        + (f" Hyperparameters set: {hparams}." if hparams else ""),
        "",
        "| model | like AUC | rating MSE | epochs | s/run | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    paired = []
    print("\n".join(lines), flush=True)
    for name in args.models.split(","):
        by_dtype = {}
        for dtype in dtypes:
            results = by_dtype[dtype] = [run(name, seed, frames, dtype, hparams)
                                         for seed in seeds]

            def cell(key, digits=4):
                values = [r[key] for r in results if key in r]
                if not values:
                    return "—"
                return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

            label = name + (" (ok→like funnel)" if name in FUNNEL else "") + (
                f", {dtype}" if len(dtypes) > 1 else "")
            per_epoch = np.mean([r["seconds"] / r["epochs"] for r in results])
            line = (f"| {label} | {cell('like_auc')} | {cell('rating_mse')} | "
                    f"{np.mean([r['epochs'] for r in results]):.1f} | "
                    f"{np.mean([r['seconds'] for r in results]):.0f} | {per_epoch:.1f} |")
            lines.append(line)
            print(line, flush=True)
        for dtype in dtypes[1:]:
            paired.append(f"- {name}, {dtype} minus {dtypes[0]}: "
                          + differences(by_dtype[dtype], by_dtype[dtypes[0]]))
            print(paired[-1], flush=True)
    if paired:
        lines += ["", "Paired differences:", ""] + paired
    if args.out:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
