"""`python -m tfmtl`: train a zoo model on real or synthetic data, list models."""

import argparse
import json
import os
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
    _data_arguments(train)
    train.add_argument("--epochs", type=int, default=20, help="most epochs (early stopping)")
    train.add_argument("--batch-size", type=int, default=512)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--patience", type=int, default=2, help="early-stopping patience")
    train.add_argument("--select", metavar="K", type=_k,
                       help="MultiSFS first: keep K fields per task (a count, or a fraction)")
    train.add_argument("--selection", metavar="FILE",
                       help="train on a saved selection (from `python -m tfmtl select --out`)")
    train.add_argument("--architecture", metavar="FILE",
                       help="train the architecture of `python -m tfmtl search --out` (model automtl)")
    train.add_argument("--export", metavar="DIR", help="write a versioned SavedModel here")
    train.add_argument("--save", metavar="PATH", help="write the trained model as .keras")
    train.add_argument("--checkpoint-dir", metavar="DIR",
                       help="save the training state here; a new run with it resumes")
    train.add_argument("--checkpoint-every", default="epoch",
                       help="'epoch' (default) or a number of steps between checkpoints")
    train.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs here")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--jit-compile", action="store_true",
                       help="XLA-compiled steps, the lookups in the input pipeline")
    train.add_argument("--precision", default="float32",
                       choices=("float32", "mixed_bfloat16", "mixed_float16"),
                       help="the model's dtype policy: mixed ones compute in 16 bits, weights "
                            "and outputs float32 (bfloat16 pays on CPUs with AVX512-BF16/AMX "
                            "and on GPUs, float16 on GPUs)")
    train.add_argument("--strategy", default="default",
                       choices=("default", "mirrored", "multi-worker"),
                       help="tf.distribute strategy: every local GPU (mirrored) or the cluster "
                            "in TF_CONFIG (multi-worker; --batch-size is the global batch)")
    train.add_argument("--chunk-rows", type=int, default=262_144,
                       help="rows read at once from a directory of parquet files (streamed)")
    train.add_argument("--schema", metavar="FILE",
                       help="features and tasks from `python -m tfmtl schema` instead of "
                            "inferring them (vocabularies learned once, shared by all workers)")

    schema = commands.add_parser(
        "schema", help="infer the features and tasks of the training split once; write JSON")
    _data_arguments(schema, model=False)
    schema.add_argument("--chunk-rows", type=int, default=262_144,
                        help="rows read at once from a directory of parquet files")
    schema.add_argument("--out", metavar="FILE", required=True, help="where the JSON goes")
    schema.set_defaults(run=_schema, model=None, schema=None)
    train.set_defaults(run=_train)

    select = commands.add_parser(
        "select", help="MultiSFS feature selection per task (or a baseline selector)")
    _data_arguments(select)
    select.add_argument("--k", type=_k, default=0.7,
                        help="fields kept per task: a count, or a fraction of the fields")
    select.add_argument("--method", default="multisfs",
                        help="multisfs, multisfs-1, multisfs-2, multisfs-3, chi2 or lasso")
    select.add_argument("--batches", type=int, default=5, help="mini-batches of the saliency")
    select.add_argument("--batch-size", type=int, default=2048)
    select.add_argument("--out", metavar="FILE", help="write the selection as JSON")
    select.add_argument("--plot", metavar="DIR", help="write importance and relation heatmaps")
    select.set_defaults(run=_select)

    searcher = commands.add_parser(
        "search", help="AutoMTL architecture search, then the derived architecture")
    _data_arguments(searcher, model=False)
    searcher.add_argument("--epochs", type=int, default=15, help="search epochs")
    searcher.add_argument("--warmup", type=int, default=5, help="epochs with beta frozen")
    searcher.add_argument("--experts", type=int, default=8)
    searcher.add_argument("--blocks", type=int, default=3, help="choice blocks per expert")
    searcher.add_argument("--chosen", type=int, help="experts kept per task (6 for 2 tasks, else 3)")
    searcher.add_argument("--batch-size", type=int, default=1024)
    searcher.add_argument("--variant", default="automtl",
                          help="automtl, or an ablation: 'w/o INT', 'w/o SEL', 'hom Expert', 'w/o JSD'")
    searcher.add_argument("--out", metavar="FILE", default="architecture.json",
                          help="where the derived architecture is written (JSON)")
    searcher.add_argument("--plot", metavar="PNG", help="draw the derived architecture")
    searcher.add_argument("--checkpoint-dir", metavar="DIR",
                          help="save the search's state after each epoch; rerun with the same "
                               "DIR to resume after the last saved epoch")
    searcher.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"),
                          help="the supernet's dtype policy: mixed_bfloat16 computes in bfloat16, "
                               "alpha, beta and weights float32 (float16 would need loss scaling)")
    searcher.add_argument("--quiet", action="store_true")
    searcher.set_defaults(run=_search)

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


def _data_arguments(parser, model=True):
    if model:
        parser.add_argument("--model", help="a name from `python -m tfmtl models` (default: ple)")
    parser.add_argument(
        "--data", default="movielens-100k",
        help="movielens-100k, synthetic, a .parquet/.csv file, or a directory (or glob) of "
             ".parquet files streamed from disk (files and directories with --labels)",
    )
    parser.add_argument("--labels", help="label columns of a file, comma-separated")
    parser.add_argument("--masks", default="", help="task=mask_column pairs, comma-separated")
    parser.add_argument("--exclude", default="",
                        help="columns of a file that are no features (other outcomes, ids), "
                             "comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a model hyperparameter, VALUE in JSON (e.g. --set num_experts=4)",
    )
    parser.add_argument("--cache", help="where downloaded data sets are kept")


def _k(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"K must be a count or a fraction; received {text!r}")
    if value.is_integer() and value >= 1:
        return int(value)
    if 0.0 < value < 1.0:
        return value
    raise argparse.ArgumentTypeError(f"K must be a count >= 1 or a fraction in (0, 1); "
                                     f"received {text!r}")


def _prepared(args, model=None):
    """Model name check, hyperparameters, the 80/10/10 split, schema and tasks."""
    import zoo

    model = model or args.model or "ple"
    if model not in zoo.list():
        raise UsageError(f"unknown model {model!r}; known models: {', '.join(zoo.list())}")
    hparams = _hparams(args.set)
    from tfmtl.data import split

    frame, schema_of = _load(args)
    train, valid, test = split(frame, (0.8, 0.1, 0.1), seed=args.seed)
    schema, tasks = _schema_file(args) or schema_of(train)
    if getattr(schema, "report", None) is not None and not getattr(args, "schema", None):
        print(f"Schema ({len(schema)} features, inferred from the training split):\n"
              f"{schema.report}\n")
        schema.report.shown = True
    return hparams, (train, valid, test), schema, tasks


def _select(args):
    from tfmtl.selection import plot_importance, plot_relations, select_fields

    args.model = args.model or "ple"
    hparams, (train, _, _), schema, tasks = _prepared(args)
    selection = select_fields(args.model, schema, tasks, train, k=args.k, method=args.method,
                              hparams=hparams, batches=args.batches, batch_size=args.batch_size,
                              seed=args.seed)
    _print_selection(selection)
    if args.out:
        selection.save(args.out)
        print(f"wrote {args.out}")
    if args.plot:
        directory = pathlib.Path(args.plot)
        directory.mkdir(parents=True, exist_ok=True)
        print(f"wrote {plot_importance(selection, directory / 'importance.png')}")
        if selection.relations:
            print(f"wrote {plot_relations(selection, directory / 'relations.png')}")
    return 0


def _search(args):
    from tfmtl.search import search

    if not 0 <= args.warmup < args.epochs:  # before the data is read
        raise UsageError(f"--warmup {args.warmup} must be at least 0 and below --epochs "
                         f"{args.epochs} (beta trains after the warm-up)")
    _, (train, valid, _), schema, tasks = _prepared(args, model="automtl")
    print(f"AutoMTL search on {args.data}: {len(train)} train / {len(valid)} validation rows, "
          f"{len(schema)} features, tasks {[t.name for t in tasks]}")
    architecture, _ = search(schema, tasks, train, valid, epochs=args.epochs, warmup=args.warmup,
                             num_experts=args.experts, blocks=args.blocks, chosen=args.chosen,
                             batch_size=args.batch_size, variant=args.variant, seed=args.seed,
                             dtype=args.precision, verbose=0 if args.quiet else 1,
                             checkpoint=args.checkpoint_dir)
    print(architecture.summary())
    info = architecture.info
    print(f"search: {info['seconds']:.0f} s, peak memory {info['peak_rss_mib']:.0f} MiB"
          + (f", {info['precision']}" if info["precision"] != "float32" else ""))
    architecture.save(args.out)
    print(f"wrote {args.out}; train it with: python -m tfmtl train --data {args.data} "
          f"--architecture {args.out}")
    if args.plot:
        print(f"wrote {architecture.draw(args.plot)}")
    return 0


def _print_selection(selection):
    print(selection.summary())
    info = selection.info
    timing = [f"{k[8:]} {info[k]:.1f} s" for k in ("seconds_saliency", "seconds_gnn",
                                                   "seconds_scores", "seconds_training")
              if info.get(k)]
    if timing:
        print(f"  time: {', '.join(timing)}")


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
        print("note: no --sample: the warm-up requests hold rows made from the schema",
              file=sys.stderr)
    target = save(model, args.base_dir, version=args.version, sample=sample)
    print(f"exported {path} to {target}")
    _print_names(model)
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

    if args.epochs < 1 or args.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be positive")
    if args.architecture is None:
        args.model = args.model or "ple"
    if args.select is not None and args.selection:
        raise UsageError("give --select or --selection, not both")
    _check_outputs(args)
    if args.architecture:
        if args.model not in (None, "automtl"):
            raise UsageError(f"--architecture trains the automtl model, not {args.model!r}")
        args.model = "automtl"
        if not pathlib.Path(args.architecture).exists():
            raise UsageError(f"no architecture file {args.architecture}")
    import keras

    import tfmtl

    distribution = tfmtl.distribute.strategy(args.strategy)
    if _streamed(args):
        hparams, (train, valid, test), schema, tasks = _prepared_stream(args)
    else:
        hparams, (train, valid, test), schema, tasks = _prepared(args)

    selection = None
    if args.selection:
        from tfmtl.selection import Selection

        selection = Selection.load(args.selection)
    elif args.select is not None:
        from tfmtl.selection import select_fields

        # The paper's 5 mini-batches of 2048, or as many whole batches as a small file holds.
        sample = train.sample(args) if isinstance(train, _Stream) else train
        batch_size = min(2048, len(sample))
        selection = select_fields(args.model, schema, tasks, sample, k=args.select,
                                  hparams=hparams, seed=args.seed, batch_size=batch_size,
                                  batches=max(1, min(5, len(train) // batch_size)))
    if selection is not None:
        _print_selection(selection)
    if args.architecture:
        hparams["architecture"] = args.architecture
    keras.utils.set_random_seed(args.seed)
    with distribution.scope():
        model = zoo.build(args.model, schema, tasks, selection=selection,
                          dtype=args.precision, **hparams)
    print(f"{args.model} on {args.data}: {len(train)} train / {len(valid)} validation / "
          f"{len(test)} test rows, {len(schema)} features, tasks {[t.name for t in tasks]}"
          + (f"; {args.precision}" if args.precision != "float32" else "")
          + (f"; {args.strategy}, {distribution.num_replicas_in_sync} replica(s), global batch "
             f"{args.batch_size}" if args.strategy != "default" else ""))
    streams = (train, valid, test) if isinstance(train, _Stream) else None
    if streams:
        train, valid, test = (part.dataset(model, args, shuffle=i == 0)
                              for i, part in enumerate(streams))
    started = time.time()
    every = args.checkpoint_every
    if every != "epoch":
        if not every.isdigit() or int(every) < 1:
            raise UsageError(f"--checkpoint-every takes 'epoch' or a number of steps; "
                             f"received {every!r}")
        every = int(every)
    tfmtl.fit(model, train, validation=valid, epochs=args.epochs, batch_size=args.batch_size,
              patience=args.patience, learning_rate=args.learning_rate, seed=args.seed,
              verbose=0 if args.quiet else 1, checkpoint_dir=args.checkpoint_dir,
              checkpoint_every=every, tensorboard=args.tensorboard,
              jit_compile=True if args.jit_compile else None)
    elapsed = time.time() - started
    results = model.evaluate(test if streams else model.dataset(test, 8192, shuffle=False),
                             verbose=0, return_dict=True)
    print(f"\nTest metrics ({len(streams[2]) if streams else len(test)} held-out rows, "
          f"{elapsed:.0f} s training):")
    print(metrics_table(model, results))
    if not tfmtl.distribute.is_chief(distribution):
        # Every worker saves (reading metric variables may need all of them), the chief where
        # asked and the others in a temporary folder they delete.
        import shutil
        import tempfile

        scratch = tempfile.mkdtemp(prefix="tfmtl_worker_")
        args.save = args.save and os.path.join(scratch, pathlib.Path(args.save).name)
        args.export = args.export and os.path.join(scratch, "export")
        try:
            _save(args, model, streams, test)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if args.save or args.export:
            print(f"not the chief: saved into {scratch} and deleted it (the chief writes "
                  "--save / --export)")
        return 0
    _save(args, model, streams, test, report=True)
    return 0


def _save(args, model, streams, test, report=False):
    if args.save:
        model.save(args.save)
        if report:
            print(f"saved {args.save}")
    if args.export:
        from export import save

        sample = streams[2].sample(args, rows=16) if streams else test.head(16)
        path = save(model, args.export, sample=sample)
        if report:
            print(f"exported SavedModel {path}")
            _print_names(model)


class _Stream:
    """One part (train, validation, test) of parquet files split by row (`split`), streamed."""

    FRACTIONS = (0.8, 0.1, 0.1)

    def __init__(self, path, part, rows, chunk_rows, seed):
        self.path, self.part, self.rows = path, part, rows
        self.chunk_rows, self.seed = chunk_rows, seed

    def __len__(self):
        return self.rows

    def dataset(self, model, args, shuffle):
        from tfmtl.data import parquet_dataset

        return parquet_dataset(self.path, model.schema, model.targets,
                               batch_size=args.batch_size if shuffle else 8192,
                               chunk_rows=self.chunk_rows, shuffle=shuffle, seed=self.seed,
                               split=(self.FRACTIONS, self.part))

    def sample(self, args, rows=65_536):
        """The first `rows` rows of the part, in memory (for the field selection)."""
        import pandas as pd

        from tfmtl.data import parquet_chunks

        frames, count = [], 0
        for frame in parquet_chunks(self.path, None, min(self.chunk_rows, rows),
                                    (self.FRACTIONS, self.part), self.seed):
            frames.append(frame)
            count += len(frame)
            if count >= rows:
                break
        return pd.concat(frames).head(rows)


def _streamed(args):
    text = str(args.data)
    return pathlib.Path(text).is_dir() or any(c in text for c in "*?[")


def _prepared_stream(args):
    """`_prepared` for a directory (or glob) of parquet files: the schema inferred in one
    streaming pass over the training rows, the parts streamed when training."""
    import zoo
    from tfmtl.data import parquet_chunks, parquet_files, parquet_schema
    from tfmtl.data.pipeline import split_draws, _split_rule

    model = args.model or "ple"
    if model not in zoo.list():
        raise UsageError(f"unknown model {model!r}; known models: {', '.join(zoo.list())}")
    if not args.labels:
        raise UsageError(f"--labels is needed with parquet files ({args.data})")
    if args.chunk_rows < 1:
        raise UsageError("--chunk-rows must be positive")
    hparams = _hparams(args.set)
    files = parquet_files(args.data)
    first = next(parquet_chunks(files, None, 1024), None)
    if first is None:
        raise UsageError(f"no rows in {args.data}")
    labels = [c.strip() for c in args.labels.split(",") if c.strip()]
    missing = [c for c in labels if c not in first.columns]
    if missing:
        raise UsageError(f"label column(s) {missing} not in {args.data}; its columns: "
                         f"{list(first.columns)}")
    masks = _masks(args.masks, labels, first)
    exclude = [c.strip() for c in (args.exclude or "").split(",") if c.strip()]
    unknown = [c for c in exclude if c not in first.columns]
    if unknown:
        raise UsageError(f"--exclude names column(s) {unknown} not in {args.data}")
    fractions = _Stream.FRACTIONS
    loaded = _schema_file(args)
    if loaded:
        schema, tasks = loaded
    else:
        schema, tasks = parquet_schema(files, labels, chunk_rows=args.chunk_rows,
                                       split=(fractions, 0), seed=args.seed, masks=masks,
                                       exclude=exclude)
        print(f"Schema ({len(schema)} features, inferred in one pass over the {schema.rows} "
              f"training rows of {len(files)} file(s); checks on the first chunk):\n"
              f"{schema.report}\n")
        schema.report.shown = True
    import pyarrow.parquet as pq

    counts = [0, 0, 0]
    for name in files:
        metadata = pq.read_metadata(name)
        for g in range(metadata.num_row_groups):
            draws = split_draws(args.seed, name, g, metadata.row_group(g).num_rows)
            for part in range(3):
                counts[part] += int(_split_rule((fractions, part))(draws).sum())
    parts = tuple(_Stream(files, part, counts[part], args.chunk_rows, args.seed)
                  for part in range(3))
    return hparams, parts, schema, tasks


def _schema_file(args):
    """`(schema, tasks)` from `--schema FILE`, or None."""
    path = getattr(args, "schema", None)
    if not path:
        return None
    from tfmtl.schema import Schema, Task

    try:
        with open(path) as f:
            config = json.load(f)
        schema = Schema.from_config(config["schema"])
        tasks = [Task.from_config(t) for t in config["tasks"]]
    except FileNotFoundError:
        raise UsageError(f"no schema file {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UsageError(f"{path} is not a schema file from `python -m tfmtl schema`: "
                         f"{error}") from None
    labels = [c.strip() for c in (args.labels or "").split(",") if c.strip()]
    if labels and sorted(labels) != sorted(t.name for t in tasks):
        raise UsageError(f"--labels {labels} differ from the tasks of {path}: "
                         f"{[t.name for t in tasks]}")
    print(f"Schema ({len(schema)} features, tasks {[t.name for t in tasks]}) from {path}")
    return schema, tasks


def _schema(args):
    """`python -m tfmtl schema`: the training split's schema, inferred once, as JSON."""
    args.model, args.set = "ple", []
    if _streamed(args):
        _, _, schema, tasks = _prepared_stream(args)
    else:
        _, _, schema, tasks = _prepared(args)
    with open(args.out, "w") as f:
        json.dump({"schema": schema.get_config(), "tasks": [t.get_config() for t in tasks]}, f,
                  indent=1)
    print(f"wrote {args.out}: {len(schema)} features, tasks {[t.name for t in tasks]}")
    return 0


def _check_outputs(args):
    """Before any training: the places --export and --save write must be usable."""
    if args.export:
        target = pathlib.Path(args.export)
        if target.exists() and not target.is_dir():
            raise UsageError(f"--export {target} is a file; give a directory (TF Serving's base "
                             "path: versions go in numbered folders inside it)")
    for option in ("checkpoint_dir", "tensorboard"):
        value = getattr(args, option, None)
        if value and pathlib.Path(value).exists() and not pathlib.Path(value).is_dir():
            raise UsageError(f"--{option.replace('_', '-')} {value} is a file; give a directory")
    if args.save:
        target = pathlib.Path(args.save)
        if target.suffix != ".keras":
            raise UsageError(f"--save writes a .keras file; received {target}")
        if not target.parent.exists():
            raise UsageError(f"--save: the folder {target.parent} does not exist")
        if target.exists():
            raise UsageError(f"--save {target} exists; remove it or choose another path")


def _print_names(model):
    renamed = {c: k for c, k in model.names["features"].items() if c != k}
    for column, key in renamed.items():
        print(f"  feature {column!r} is the signature input {key}")
    if renamed:
        print("  (the mapping is in assets.extra/tfmtl_names.json; export.Client reads it)")


def metrics_table(model, results):
    """A text table of the per-task metrics in `results` (evaluate's dict)."""
    rows = [("task", "kind", "metric", "value")]
    by_task = model.metrics_by_task(results)
    for task in model.tasks:
        for metric, value in by_task.get(task.name, {}).items():
            if metric != "loss" and not metric.endswith("_loss"):
                rows.append((task.name, task.kind, metric, f"{value:.4f}"))
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
        if name == "dtype":
            raise UsageError("the dtype policy is --precision, not --set dtype=...")
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
    masks = _masks(args.masks, labels, frame)
    exclude = [c.strip() for c in (args.exclude or "").split(",") if c.strip()]
    unknown = [c for c in exclude if c not in frame.columns]
    if unknown:
        raise UsageError(f"--exclude names column(s) {unknown} not in {path.name}")
    from tfmtl.data.arrays import validate
    from tfmtl.schema.task import Task

    # Checked on the whole file so that a bad label is named before any training.
    validate(frame, None, [Task(c, "regression", label=c, mask=masks.get(c)) for c in labels])
    return frame, lambda train: infer_schema(train, labels=labels, masks=masks, exclude=exclude)


def _masks(text, labels, frame):
    """`--masks task=column,...`, parsed strictly."""
    masks = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        task, sep, column = pair.partition("=")
        task, column = task.strip(), column.strip()
        if not sep or not task or not column:
            raise UsageError(f"--masks takes task=mask_column pairs separated by commas; "
                             f"received {pair!r}")
        if task not in labels:
            raise UsageError(f"--masks names task {task!r}, which is not in --labels {labels}")
        if column not in frame.columns:
            raise UsageError(f"--masks names column {column!r}, which is not in the data")
        masks[task] = column
    return masks


def _read(path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".tsv", ".txt"):
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    raise UsageError(f"unsupported file type {path.suffix!r}: use .parquet or .csv")
