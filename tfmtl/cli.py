"""`python -m tfmtl`: train a zoo model on real or synthetic data, list models."""

import argparse
import json
import pathlib
import sys
import time

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tfmtl: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser():
    parser = argparse.ArgumentParser(prog="python -m tfmtl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the zoo's models")
    models.set_defaults(run=_models)

    train = commands.add_parser("train", help="train, evaluate on a held-out split, export")
    train.add_argument("--model", default="ple", help="a name from `python -m tfmtl models`")
    train.add_argument(
        "--data", default="movielens-100k",
        help="movielens-100k, synthetic, or a .parquet/.csv file (with --labels)",
    )
    train.add_argument("--labels", help="label columns of a file, comma-separated")
    train.add_argument("--masks", default="", help="task=mask_column pairs, comma-separated")
    train.add_argument("--epochs", type=int, default=20, help="most epochs (early stopping)")
    train.add_argument("--batch-size", type=int, default=512)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--patience", type=int, default=2, help="early-stopping patience")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a model hyperparameter, VALUE in JSON (e.g. --set num_experts=4)",
    )
    train.add_argument("--export", metavar="DIR", help="write a versioned SavedModel here")
    train.add_argument("--save", metavar="PATH", help="write the trained model as .keras")
    train.add_argument("--cache", help="where downloaded data sets are kept")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)

    exporter = commands.add_parser("export", help="export a saved .keras model for TF Serving")
    exporter.add_argument("--model-dir", required=True,
                          help="a .keras file, or a directory holding one (model.keras)")
    exporter.add_argument("--base-dir", required=True, help="TF Serving's base path for the model")
    exporter.add_argument("--version", type=int, help="defaults to one more than the newest")
    exporter.add_argument("--sample", help="a .parquet/.csv of rows for the warm-up requests")
    exporter.set_defaults(run=_export)

    check = commands.add_parser(
        "serve-check", help="load the newest version in a fresh process and replay its warm-up")
    check.add_argument("--base-dir", required=True)
    check.set_defaults(run=_serve_check)
    return parser


def _export(args):
    import keras

    from export import save

    path = pathlib.Path(args.model_dir)
    if path.is_dir():
        candidates = sorted(path.glob("*.keras"))
        if len(candidates) != 1:
            raise UsageError(f"{path} must hold exactly one .keras file; found {len(candidates)}")
        path = candidates[0]
    if not path.exists():
        raise UsageError(f"no model at {args.model_dir}")
    model = keras.models.load_model(path)
    if not hasattr(model, "schema"):
        raise UsageError(f"{path} is not a tfmtl model (no schema and tasks)")
    sample = _read(pathlib.Path(args.sample)) if args.sample else None
    if sample is None:
        print("note: no --sample, so no warm-up requests are written", file=sys.stderr)
    target = save(model, args.base_dir, version=args.version, sample=sample)
    print(f"exported {path} to {target}")
    return 0


def _serve_check(args):
    import subprocess

    from export import versions

    found = versions(args.base_dir)
    if not found:
        raise UsageError(f"no versions under {args.base_dir}")
    path = str(pathlib.Path(args.base_dir) / str(found[-1]))
    # A fresh interpreter: nothing of this process (no tfmtl classes) helps the load.
    result = subprocess.run([sys.executable, "-m", "export.serve_check", path],
                            cwd=pathlib.Path(__file__).resolve().parent.parent)
    return result.returncode


def _models(args):
    import zoo

    for name in zoo.list():
        doc = (zoo.builder(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:15s} {doc}")
    return 0


def _train(args):
    import zoo

    if args.model not in zoo.list():
        raise UsageError(f"unknown model {args.model!r}; known models: {', '.join(zoo.list())}")
    hparams = _hparams(args.set)
    if args.epochs < 1 or args.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be positive")

    import keras

    from tfmtl.data import split, to_dataset

    frame, schema_of = _load(args)
    train, valid, test = split(frame, (0.8, 0.1, 0.1), seed=args.seed)
    schema, tasks = schema_of(train)
    keras.utils.set_random_seed(args.seed)
    model = zoo.build(args.model, schema, tasks, **hparams)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    print(f"{args.model} on {args.data}: {len(train)} train / {len(valid)} validation / "
          f"{len(test)} test rows, {len(schema)} features, tasks {[t.name for t in tasks]}")
    started = time.time()
    model.fit(
        to_dataset(train, schema, model.tasks, args.batch_size, seed=args.seed),
        validation_data=to_dataset(valid, schema, model.tasks, 8192, shuffle=False),
        epochs=args.epochs,
        verbose=0 if args.quiet else 1,
        callbacks=[keras.callbacks.EarlyStopping(
            "val_loss", patience=args.patience, restore_best_weights=True)],
    )
    elapsed = time.time() - started
    results = model.evaluate(
        to_dataset(test, schema, model.tasks, 8192, shuffle=False), verbose=0, return_dict=True
    )
    print(f"\nTest metrics ({len(test)} held-out rows, {elapsed:.0f} s training):")
    print(metrics_table(model.tasks, results))
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    if args.export:
        from export import save

        path = save(model, args.export, sample=test.head(16))
        print(f"exported SavedModel {path}")
    return 0


def metrics_table(tasks, results):
    """A text table of the per-task metrics in `results` (evaluate's dict)."""
    rows = [("task", "kind", "metric", "value")]
    for task in tasks:
        for key, value in results.items():
            if key.startswith(f"{task.name}_") and not key.endswith("_loss"):
                rows.append((task.name, task.kind, key[len(task.name) + 1:], f"{value:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _hparams(pairs):
    hparams = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--set takes NAME=VALUE; received {pair!r}")
        try:
            hparams[name] = json.loads(value)
        except json.JSONDecodeError:
            hparams[name] = value
        if isinstance(hparams[name], list):
            hparams[name] = tuple(hparams[name])
    return hparams


def _load(args):
    """The frame and a function giving `(schema, tasks)` from a training split."""
    from tfmtl.schema.inference import infer_schema

    if args.data == "movielens-100k":
        from tfmtl.data.movielens import fetch_movielens_100k, load_movielens_100k, movielens_schema

        frame, _, _ = load_movielens_100k(fetch_movielens_100k(args.cache))
        return frame, movielens_schema
    if args.data == "synthetic":
        from tfmtl.data.synthetic import ctr_synthetic

        frame, schema, tasks = ctr_synthetic(100_000, seed=args.seed)
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("p_")])
        return frame, lambda train: (schema, tasks)
    path = pathlib.Path(args.data)
    if not path.exists():
        raise UsageError(
            f"no data {args.data!r}: not a file, and not movielens-100k or synthetic"
        )
    if not args.labels:
        raise UsageError(f"--labels is needed with a data file ({path.name})")
    frame = _read(path)
    labels = [c.strip() for c in args.labels.split(",") if c.strip()]
    missing = [c for c in labels if c not in frame.columns]
    if missing:
        raise UsageError(
            f"label column(s) {missing} not in {path.name}; its columns: {list(frame.columns)}"
        )
    masks = dict(p.split("=", 1) for p in args.masks.split(",") if "=" in p)
    from tfmtl.data.arrays import validate
    from tfmtl.schema.task import Task

    # Checked on the whole file so that a bad label is named before any training.
    validate(frame, None, [Task(c, "regression", label=c, mask=masks.get(c)) for c in labels])
    return frame, lambda train: infer_schema(train, labels=labels, masks=masks)


def _read(path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".tsv", ".txt"):
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    raise UsageError(f"unsupported file type {path.suffix!r}: use .parquet or .csv")
