"""tfmtl under the peers' protocol (the peers harness's `common.py`), with a choice of optimizer.

One configuration per process, as the peers' own runners: a raw pandas frame
in (ids int64, dense float32), `tfmtl.infer_schema`, the matched architecture
(`zoo.preset(name, "peers")`), `model.fit(frame)` for the timed epochs, the
test quality after each epoch, inference through `model.predict` and through
the exported SavedModel's signature at batch 4096, batch-1 latency of that
signature (the lookups of raw values included: the peers take ready ids).
`--optimizer lazy_adam` trains with `tfmtl.optimizers.LazyAdam` (row-sparse
updates of the embedding tables), `adam` with `tfmtl.optimizers.Adam` (Keras'
Adam in one fused kernel per variable: what `compile()` uses by default),
`keras_adam` with `keras.optimizers.Adam`. `--precision mixed_bfloat16` builds the
model under that Keras dtype policy (experts, towers and embeddings compute in
bfloat16, weights, heads, losses and outputs stay float32; the exported model
computes the same way). `--jit` compiles
with `jit_compile=True`: the lookups run once per `fit` call over the whole
frame before the steps (outside the protocol's timed window, which starts
after 20 steps), each step is XLA-compiled; `train_sps_end_to_end` times the
whole `fit` call, lookups included, for every runner.

Run through `bench/peers.py`; by hand:

    python bench/peer_tfmtl.py --peers ../shared/peers --data synth --models mmoe --out x.json
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_one(a):
    import common as C

    C.pin_threads()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(C.THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(C.THREADS)
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import pandas as pd

    import export
    import tfmtl
    import zoo
    from bench.timing import StepTimer
    from tfmtl.optimizers import Adam, LazyAdam

    data, meta = C.load(a.data)
    y_train, names, kinds = C.tasks(meta, a.model, data["train_y"])
    y_test = C.tasks(meta, a.model, data["test_y"])[0]

    def frame(part, y=None):
        columns = {n: data[f"{part}_cat"][:, i].astype(np.int64)
                   for i, n in enumerate(meta["cat_fields"])}
        columns.update({n: data[f"{part}_dense"][:, i].astype(np.float32)
                        for i, n in enumerate(meta["dense_fields"])})
        if y is not None:
            columns.update({n: y[:, k].astype(np.float32) for k, n in enumerate(names)})
        return pd.DataFrame(columns)

    train, test = frame("train", y_train), frame("test")
    schema, tasks = tfmtl.infer_schema(train, labels=names, kinds=dict(zip(names, kinds)))
    name = {"sharedbottom": "shared_bottom"}.get(a.model, a.model)
    model = zoo.build(name, schema, tasks, dtype=a.precision, **zoo.preset(name, "peers"))
    optimizer = {"lazy_adam": LazyAdam, "adam": Adam, "keras_adam": keras.optimizers.Adam}
    model.compile(optimizer=optimizer[a.optimizer](C.LR), jit_compile=True if a.jit else "auto")

    timed_rows = len(y_train) - C.WARMUP_STEPS * C.BATCH
    train_sps, quality, infer_sps, signature_sps, whole = [], {}, [], [], []
    for epoch in range(1, a.epochs + 1):
        timer = StepTimer(C.WARMUP_STEPS)
        started = time.perf_counter()
        model.fit(train, batch_size=C.BATCH, epochs=1, shuffle=True, verbose=0,
                  callbacks=[timer])
        whole.append(len(y_train) / (time.perf_counter() - started))
        train_sps.append(timed_rows / timer.seconds)
        out = model.predict(test, batch_size=C.INFER_BATCH, verbose=0)
        predicted = np.concatenate([np.asarray(out[n]).reshape(-1, 1) for n in names], axis=1)
        quality[f"epoch{epoch}"] = C.metrics(y_test, predicted, names, kinds)
        print(f"epoch {epoch}: {train_sps[-1]:.0f} samples/s {quality[f'epoch{epoch}']}",
              file=sys.stderr, flush=True)
    for _ in range(a.infer_repeats):
        started = time.perf_counter()
        model.predict(test, batch_size=C.INFER_BATCH, verbose=0)
        infer_sps.append(len(y_test) / (time.perf_counter() - started))

    path = export.save(model, os.path.join(tempfile.mkdtemp(), "model"))
    signature = tf.saved_model.load(path).signatures["serving_default"]

    def batch(rows):
        return {n: tf.constant(test[n].to_numpy()[rows]) for n in test.columns}

    batches = [batch(slice(i, i + C.INFER_BATCH)) for i in range(0, len(test), C.INFER_BATCH)]
    for b in batches[:2]:
        signature(**b)
    for _ in range(a.infer_repeats):
        started = time.perf_counter()
        for b in batches:
            signature(**b)
        signature_sps.append(len(test) / (time.perf_counter() - started))
    one = batch(slice(0, 1))
    latency = {"saved_model_signature": C.latency(lambda: signature(**one))}
    return dict(
        peer=runner_name(a), tasks=names, task_types=kinds,
        params=int(model.count_params()), optimizer=a.optimizer, precision=a.precision,
        train_sps=C.summary(train_sps),
        train_sps_note="model.fit(frame), each epoch without its first 20 steps",
        train_sps_end_to_end=C.summary(whole),
        train_sps_end_to_end_note="the whole model.fit(frame) call (checks, lookups under "
                                  "--jit, tracing and compiling in epoch 1)",
        jit_compile=bool(model.jit_compile),
        infer_sps=C.summary(signature_sps),
        infer_sps_note="the exported SavedModel's signature, batch 4096, over the test set",
        infer_sps_predict=C.summary(infer_sps),
        latency_b1=latency,
        latency_b1_best_p50_ms=min(v["p50_ms"] for v in latency.values()), quality=quality,
        versions={"tensorflow": tf.__version__, "keras": keras.__version__, **C.machine()})


def runner_name(a):
    return (f"tfmtl_{a.optimizer}" + ("_xla" if a.jit else "")
            + ("_bf16" if a.precision == "mixed_bfloat16" else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="the peers harness (its common.py)")
    parser.add_argument("--data", default="synth,ml100k")
    parser.add_argument("--models", default="mmoe,ple")
    parser.add_argument("--model")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--infer-repeats", type=int, default=3)
    parser.add_argument("--optimizer", choices=("adam", "lazy_adam", "keras_adam"), default="lazy_adam")
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32",
                        help="the Keras dtype policy the model is built under")
    parser.add_argument("--out")
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args()
    sys.path.insert(0, os.path.abspath(a.peers))
    import common as C

    if a.one:
        C.child_main(run_one, a)
    else:
        C.drive(os.path.abspath(__file__), runner_name(a),
                a.data.split(","), a.models.split(","), os.path.abspath(a.out),
                ["--epochs", str(a.epochs), "--infer-repeats", str(a.infer_repeats),
                 "--optimizer", a.optimizer, "--precision", a.precision,
                 "--peers", os.path.abspath(a.peers)]
                + (["--jit"] if a.jit else []), a.append)


if __name__ == "__main__":
    main()
