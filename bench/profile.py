"""Where a training step and a batch-1 serving call spend their time, per config and path.

The configurations of `bench/peers.py` (the peers harness's data and matched
architecture, batch 1024, 2 threads). For each training path (Keras' Adam,
`tfmtl.optimizers.Adam` (the default: the same update in one fused kernel),
`LazyAdam`, that Adam with `jit_compile=True`) and a fixed batch, the median over
`--steps` calls of one `tf.function` per part:

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

PATHS = ("keras_adam", "adam", "lazy_adam", "adam_xla")
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


def profile(data_name, model_name, path, steps, C):
    import keras
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    import tfmtl
    import zoo
    from tfmtl.models.encoded import ENCODED, Encoder
    from tfmtl import optimizers

    data, meta = C.load(data_name)
    y_train, names, kinds = C.tasks(meta, model_name, data["train_y"])
    columns = {n: data["train_cat"][:, i].astype(np.int64) for i, n in enumerate(meta["cat_fields"])}
    columns.update({n: data["train_dense"][:, i].astype(np.float32)
                    for i, n in enumerate(meta["dense_fields"])})
    columns.update({n: y_train[:, k].astype(np.float32) for k, n in enumerate(names)})
    frame = pd.DataFrame(columns)
    schema, tasks = tfmtl.infer_schema(frame, labels=names, kinds=dict(zip(names, kinds)))
    keras.utils.set_random_seed(0)
    model = zoo.build(model_name, schema, tasks, **zoo.preset(model_name, "peers"))
    jit = path.endswith("_xla")
    name = path.removesuffix("_xla")
    if name == "keras_adam":
        optimizer = keras.optimizers.Adam(C.LR)
    elif not hasattr(optimizers, {"adam": "Adam", "lazy_adam": "LazyAdam"}[name]):
        return None  # not in this checkout
    else:
        optimizer = getattr(optimizers, {"adam": "Adam", "lazy_adam": "LazyAdam"}[name])(C.LR)
    model.compile(optimizer=optimizer, jit_compile=True if jit else "auto")

    # fit: per-step wall time of one epoch after its first 20 steps (as the peers harness).
    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == C.WARMUP_STEPS - 1:
                self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.ended = time.perf_counter()

    timer = StepTimer()
    model.fit(frame, batch_size=C.BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
    timed_steps = len(frame) // C.BATCH - C.WARMUP_STEPS
    result = {"fit": (timer.ended - timer.started) * 1e3 / timed_steps}

    # The batch: raw features, prepared targets, and what the numeric part takes.
    raw = frame.iloc[:C.BATCH]
    x, y, weights = model.prepare(raw)
    encoder = model._encoder or Encoder(model)
    features = {n: tf.constant(raw[n].to_numpy()) for n in schema.names}
    y = {k: tf.constant(v) for k, v in y.items()}
    weights = None if weights is None else {k: tf.constant(v) for k, v in weights.items()}
    encoded = encoder.encode(features)[ENCODED]

    from keras.src.trainers.data_adapters import get_data_adapter

    whole_x, whole_y, whole_w = model.prepare(frame)
    adapter = get_data_adapter(whole_x, whole_y, whole_w, batch_size=C.BATCH, shuffle=True)
    batches = iter(adapter.get_tf_dataset())
    result["input"] = timed(lambda: next(batches), steps)

    lookup = tf.function(lambda f: encoder.lookup({n: f[n] for n in encoder.fields}))
    result["lookups"] = timed(lambda: lookup(features), steps)

    variables = model.trainable_variables

    def loss_of(ids):
        predicted = encoder.numeric(list(ids), training=True)
        return model.compute_loss(y=y, y_pred=predicted, sample_weight=weights)

    forward = tf.function(loss_of, jit_compile=jit)

    def with_gradients(ids):
        with tf.GradientTape() as tape:
            loss = loss_of(ids)
        return loss, tape.gradient(loss, variables)

    backward = tf.function(with_gradients, jit_compile=jit)
    result["forward"] = timed(lambda: forward(encoded), steps)
    result["backward"] = timed(lambda: backward(encoded), steps) - result["forward"]
    # Embedding gradients keep their row-sparse form outside XLA (LazyAdam's path).
    gradients = (backward(encoded)[1] if jit
                 else tf.function(with_gradients)(encoded)[1])
    apply = tf.function(lambda: model.optimizer.apply_gradients(zip(gradients, variables)),
                        jit_compile=jit)
    result["optimizer"] = timed(apply, steps)

    # Keras' train function on the same batch, repeated.
    one = ({ENCODED: encoded} if jit else features, y) + (() if weights is None else (weights,))
    repeated = iter(tf.data.Dataset.from_tensors(one).repeat())
    result["step"] = timed(lambda: model.train_function(repeated), steps)
    if jit:  # the lookups run once per fit call, in the input pipeline
        result["lookups_per_step_in_pipeline"] = result.pop("lookups")
    return result


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
        result = profile(data_name, model_name, args.path, args.steps, C)
    print("RESULT " + json.dumps(result), flush=True)


def main():
    import json
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="the peers harness (its common.py, data)")
    parser.add_argument("--configs", default="synth:mmoe,synth:ple,ml100k:mmoe")
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
        for path in PATHS + ("serving",):
            print(f"{config} {path}", flush=True)
            done = subprocess.run(
                [sys.executable, __file__, "--peers", args.peers, "--one", config, "--path", path,
                 "--steps", str(args.steps), "--calls", str(args.calls), "--root", args.root],
                capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                raise SystemExit(f"{config} {path} failed:\n{done.stderr[-3000:]}")
            result = json.loads(lines[-1][len("RESULT "):])
            if result is not None:
                results[f"{config} {path}"] = result
    commit = subprocess.run(["git", "-C", args.root, "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    text = ["# Profile: milliseconds per training step (batch 1024) and per batch-1 serving call\n",
            f"tfmtl at `{commit}`. "
            f"`python bench/profile.py --peers ../shared/peers --configs {args.configs} --steps "
            f"{args.steps} --calls {args.calls}`; each (config, path) in its own process, one "
            f"after the other ({time.time() - started:.0f} s); medians. Parts are separate "
            "`tf.function`s on one fixed batch; `step` is Keras' train function on that batch, "
            "`fit` the wall time per step of a `model.fit` epoch. Under `jit_compile` the "
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
