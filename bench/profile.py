"""Where a training step and a batch-1 serving call spend their time, per config and path.

The configurations of `bench/peers.py` (the peers harness's data and matched
architecture, batch 1024, 2 threads). For each training path (Keras' Adam,
`tfmtl.optimizers.Adam` (the default: the same update in one fused kernel),
`LazyAdam`, that Adam with `jit_compile=True`, that Adam on a model built
under Keras' `mixed_bfloat16` policy), all set up in one process
per config, and a fixed batch, the median over `--steps` calls of one
`tf.function` per part, the paths and parts measured in turns (rounds of 5
calls) so that the machine's drift falls on all of them alike:

- input: one batch from the pipeline `fit` runs on the prepared arrays
  (Keras' array adapter, shuffled), lookups excluded;
- lookups: `FeatureLookup` on the batch's raw values (under `jit_compile`
  they move to the input pipeline: done once per `fit` call, shown apart);
- forward: the numeric model (training mode) and the loss;
- backward: forward with the gradients, less the forward;
- optimizer: `apply_gradients` on those gradients;
- step: Keras' own train function on the batch (metrics and bookkeeping
  included), the figure the parts add up against;
- fit: the wall time per step of a `model.fit` epoch (after 20 steps).

Under `jit_compile` forward, backward and step run under XLA. `--root`
profiles another checkout of tfmtl (a `git worktree` of an older commit:
"before"; paths its code lacks are left out). Serving at batch 1 (the
exported SavedModel's `serving_default`, as `bench/peers.py` times it): the
whole call; a signature with the same arguments that runs the lookups
alone; one that runs nothing (the floor of the call from Python); and the
numeric part alone.

    python bench/profile.py --peers ../shared/peers [--configs synth:mmoe,...] \
        [--root CHECKOUT] [--name profile] [--out bench/results]
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PATHS = ("keras_adam", "adam", "lazy_adam", "adam_xla", "adam_bf16")
PARTS = ("input", "lookups", "forward", "backward", "optimizer", "step", "fit")


def timed(fn, calls, warmup=3):
    """Median wall milliseconds of `fn()` over `calls` calls after `warmup`."""
    import numpy as np

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def training_data(data_name, model_name, C):
    """The harness's training rows as a frame (ids int64, numbers float32, labels), and its schema."""
    import numpy as np
    import pandas as pd

    import tfmtl

    data, meta = C.load(data_name)
    y_train, names, kinds = C.tasks(meta, model_name, data["train_y"])
    columns = {n: data["train_cat"][:, i].astype(np.int64) for i, n in enumerate(meta["cat_fields"])}
    columns.update({n: data["train_dense"][:, i].astype(np.float32)
                    for i, n in enumerate(meta["dense_fields"])})
    columns.update({n: y_train[:, k].astype(np.float32) for k, n in enumerate(names)})
    frame = pd.DataFrame(columns)
    schema, tasks = tfmtl.infer_schema(frame, labels=names, kinds=dict(zip(names, kinds)))
    return frame, schema, tasks


def setup(path, frame, schema, tasks, model_name, C):
    """A model trained one epoch on `path`, its `fit` figure, and one callable per part
    (`None` when this checkout has no such optimizer)."""
    import keras
    import tensorflow as tf

    import zoo
    from bench.timing import StepTimer
    from tfmtl import optimizers
    from tfmtl.models.encoded import ENCODED, Encoder

    jit = path.endswith("_xla")
    bf16 = path.endswith("_bf16")  # built under the mixed_bfloat16 policy
    name = {"keras_adam": None, "adam": "Adam", "lazy_adam": "LazyAdam"}[
        path.removesuffix("_xla").removesuffix("_bf16")]
    if name is not None and not hasattr(optimizers, name):
        return None
    optimizer = getattr(optimizers, name)(C.LR) if name else keras.optimizers.Adam(C.LR)
    keras.utils.set_random_seed(0)
    model = zoo.build(model_name, schema, tasks, dtype="mixed_bfloat16" if bf16 else None,
                      **zoo.preset(model_name, "peers"))
    model.compile(optimizer=optimizer, jit_compile=True if jit else "auto")

    # fit: per-step wall time of one epoch after its first 20 steps (as the peers harness).
    timer = StepTimer(C.WARMUP_STEPS)
    model.fit(frame, batch_size=C.BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
    fit = timer.seconds * 1e3 / (len(frame) // C.BATCH - C.WARMUP_STEPS)

    # The batch: raw features, prepared targets, and what the numeric part takes.
    raw = frame.iloc[:C.BATCH]
    _, y, weights = model.prepare(raw)
    encoder = model._encoder or Encoder(model)
    features = {n: tf.constant(raw[n].to_numpy()) for n in schema.names}
    y = {k: tf.constant(v) for k, v in y.items()}
    weights = None if weights is None else {k: tf.constant(v) for k, v in weights.items()}
    encoded = encoder.encode(features)[ENCODED]

    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(*model.prepare(frame), batch_size=C.BATCH, shuffle=True)
    batches = iter(adapter.get_tf_dataset().repeat())
    lookup = tf.function(lambda f: encoder.lookup({n: f[n] for n in encoder.fields}))
    variables = model.trainable_variables

    def loss_of(ids):
        predicted = encoder.numeric(list(ids), training=True)
        return model.compute_loss(y=y, y_pred=predicted, sample_weight=weights)

    def with_gradients(ids):
        with tf.GradientTape() as tape:
            loss = loss_of(ids)
        return loss, tape.gradient(loss, variables)

    forward = tf.function(loss_of, jit_compile=jit)
    backward = tf.function(with_gradients, jit_compile=jit)
    # Embedding gradients keep their row-sparse form outside XLA (LazyAdam's path).
    gradients = (backward if jit else tf.function(with_gradients))(encoded)[1]
    apply = tf.function(lambda: model.optimizer.apply_gradients(zip(gradients, variables)),
                        jit_compile=jit)
    # Keras' train function on the same batch, repeated.
    one = ({ENCODED: encoded} if jit else features, y) + (() if weights is None else (weights,))
    repeated = iter(tf.data.Dataset.from_tensors(one).repeat())
    parts = {"input": lambda: next(batches), "lookups": lambda: lookup(features),
             "forward": lambda: forward(encoded), "forward+backward": lambda: backward(encoded),
             "optimizer": apply, "step": lambda: model.train_function(repeated)}
    return fit, parts


def profile(data_name, model_name, paths, steps, C):
    """Every path's parts on one config, measured in turns (path by path, part by part, in
    rounds of 5 calls) so the machine's drift falls on all of them alike."""
    import numpy as np

    frame, schema, tasks = training_data(data_name, model_name, C)
    ready = {}
    for path in paths:
        made = setup(path, frame, schema, tasks, model_name, C)
        if made is not None:
            ready[path] = made
    times = {path: {part: [] for part in parts} for path, (_, parts) in ready.items()}
    for path, (_, parts) in ready.items():  # warm-up: tracing, compiling
        for call in parts.values():
            call(), call()
    for _ in range(max(steps // 5, 1)):
        for path, (_, parts) in ready.items():
            for part, call in parts.items():
                started = time.perf_counter()
                for _ in range(5):
                    call()
                times[path][part].append((time.perf_counter() - started) * 1e3 / 5)
    results = {}
    for path, (fit, _) in ready.items():
        r = {part: float(np.median(t)) for part, t in times[path].items()}
        r["backward"] = r.pop("forward+backward") - r["forward"]
        r["fit"] = fit
        if path.endswith("_xla"):  # the lookups run once per fit call, in the input pipeline
            r["lookups_per_step_in_pipeline"] = r.pop("lookups")
        results[path] = r
    return results


def serving(data_name, model_name, calls, C):
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    import export
    import tfmtl
    import zoo
    from export.signatures import input_specs
    from tfmtl.models.encoded import ENCODED, Encoder

    data, meta = C.load(data_name)
    y_train, names, kinds = C.tasks(meta, model_name, data["train_y"])
    columns = {n: data["test_cat"][:8, i].astype(np.int64) for i, n in enumerate(meta["cat_fields"])}
    columns.update({n: data["test_dense"][:8, i].astype(np.float32)
                    for i, n in enumerate(meta["dense_fields"])})
    columns.update({n: y_train[:8, k].astype(np.float32) for k, n in enumerate(names)})
    frame = pd.DataFrame(columns)
    schema, tasks = tfmtl.infer_schema(frame, labels=names, kinds=dict(zip(names, kinds)))
    model = zoo.build(model_name, schema, tasks, **zoo.preset(model_name, "peers"))
    signature = tf.saved_model.load(export.save(model, tempfile.mkdtemp())).signatures[
        "serving_default"]
    keys = schema.internal_names
    one = {keys[n]: tf.constant(frame[n].to_numpy()[:1]) for n in schema.names}
    by_name = {n: one[keys[n]] for n in schema.names}
    encoder = Encoder(model)
    encoded = encoder.encode(by_name)[ENCODED]
    numeric = tf.function(lambda ids: encoder.numeric(list(ids), training=False))
    specs = [input_specs(schema)]
    rows = lambda f: tf.shape(f[schema.names[0]])[0]  # noqa: E731

    def lookups_only(features):  # the lookups, and one number per row out
        ids = encoder.lookup({n: features[n] for n in encoder.fields})
        return {"ids": tf.add_n([tf.reduce_sum(tf.cast(tf.reshape(ids[n], [rows(features), -1]),
                                                       "float32"), 1) for n in encoder.fields])}

    def floor(features):  # the call alone: the same arguments, zeros out
        return {"zeros": tf.zeros([rows(features)])}

    loaded = {"lookups": saved_signature(model, lookups_only, specs),
              "call_floor": saved_signature(model, floor, specs)}
    return {
        "signature": timed(lambda: signature(**one), calls, 50),
        "lookups": timed(lambda: loaded["lookups"](**one), calls, 50),
        "call_floor": timed(lambda: loaded["call_floor"](**one), calls, 50),
        "numeric": timed(lambda: numeric(encoded), calls, 50),
        "inputs": len(one),
    }


def saved_signature(model, fn, specs):
    """`fn` exported as a SavedModel's `serving_default` (with the model's tables), loaded."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=fn, input_signature=specs)
    path = os.path.join(tempfile.mkdtemp(), "m")
    archive.write_out(path, verbose=False)
    return tf.saved_model.load(path).signatures["serving_default"]


def run_one(args):
    """One (config, path) in this process: its figures as JSON on stdout."""
    import json

    sys.path.insert(0, os.path.abspath(args.root))
    sys.path.insert(0, os.path.abspath(args.peers))
    import common as C

    C.pin_threads()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(C.THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(C.THREADS)
    data_name, model_name = args.one.split(":")
    if args.path == "serving":
        result = serving(data_name, model_name, args.calls, C)
    else:
        result = profile(data_name, model_name, args.path.split(","), args.steps, C)
    print("RESULT " + json.dumps(result), flush=True)


def main():
    import json
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="the peers harness (its common.py, data)")
    parser.add_argument("--configs", default="synth:mmoe,synth:ple,ml100k:mmoe")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"training paths, a subset of {','.join(PATHS)}")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--root", default=ROOT, help="the tfmtl checkout to profile")
    parser.add_argument("--name", default="profile", help="the results' file name")
    parser.add_argument("--out", help="a directory for <name>.md and <name>.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args)
    sys.path.insert(0, ROOT)
    from bench.output import write_results

    results, started = {}, time.time()
    for config in args.configs.split(","):
        for part in (args.paths, "serving"):
            print(f"{config} {part}", flush=True)
            done = subprocess.run(
                [sys.executable, __file__, "--peers", args.peers, "--one", config, "--path", part,
                 "--steps", str(args.steps), "--calls", str(args.calls), "--root", args.root],
                capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                raise SystemExit(f"{config} {part} failed:\n{done.stderr[-3000:]}")
            result = json.loads(lines[-1][len("RESULT "):])
            if part == "serving":
                results[f"{config} serving"] = result
            else:
                results.update({f"{config} {path}": r for path, r in result.items()})
    commit = subprocess.run(["git", "-C", args.root, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    text = ["# Profile: milliseconds per training step (batch 1024) and per batch-1 serving call\n",
            f"tfmtl at `{commit}`. "
            f"`python bench/profile.py --peers ../shared/peers --configs {args.configs} --paths "
            f"{args.paths} --steps "
            f"{args.steps} --calls {args.calls}`; each config in its own process, its paths' parts "
            f"measured in turns ({time.time() - started:.0f} s in all); medians. Parts are separate "
            "`tf.function`s on one fixed batch; `step` is Keras' train function on that batch, "
            "`fit` the wall time per step of a `model.fit` epoch (each path's epoch in turn, so "
            "the least comparable figure). Under `jit_compile` the "
            "lookups are done once per `fit` call in the input pipeline (their per-batch cost "
            "shown in brackets).\n",
            "| config | path | input | lookups | forward | backward | optimizer | sum | step | "
            "fit |", "|---" * 10 + "|"]
    for config in args.configs.split(","):
        for path in PATHS:
            if f"{config} {path}" not in results:
                continue
            r = results[f"{config} {path}"]
            lookups = r.get("lookups", 0.0)
            total = r["input"] + lookups + r["forward"] + r["backward"] + r["optimizer"]
            shown = (f"({r['lookups_per_step_in_pipeline']:.2f})" if "lookups" not in r
                     else f"{lookups:.2f}")
            label = path + (" (before)" if path == "keras_adam" else "")
            text.append(f"| {config} | {label} | {r['input']:.2f} | {shown} | {r['forward']:.2f} "
                        f"| {r['backward']:.2f} | {r['optimizer']:.2f} | {total:.2f} | "
                        f"{r['step']:.2f} | {r['fit']:.2f} |")
    text += ["\nServing at batch 1 (ms, median): the exported `serving_default`; a SavedModel "
             "signature with the same arguments that runs the lookups alone, and one that runs "
             "nothing (the floor of the call from Python); the numeric part alone (a "
             "`tf.function` on looked-up ids).\n",
             "| config | inputs | signature | lookups only | call floor | numeric | lookups' share |",
             "|---" * 7 + "|"]
    for config in args.configs.split(","):
        s = results[f"{config} serving"]
        share = (s["lookups"] - s["call_floor"]) / max(s["signature"] - s["call_floor"], 1e-9)
        text.append(f"| {config} | {s['inputs']} | {s['signature']:.3f} | {s['lookups']:.3f} | "
                    f"{s['call_floor']:.3f} | {s['numeric']:.3f} | {share:.0%} |")
    text.append("\nThe lookups' share is (lookups only - floor) / (signature - floor): the "
                "lookups' part of the signature's work beyond the call itself.")
    write_results(args.out, args.name, "\n".join(text), dict(commit=commit, results=results))


if __name__ == "__main__":
    main()
