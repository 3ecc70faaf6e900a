"""Training and inference throughput of MMoE and PLE, side by side.

Setup (issue 3): 400,000 synthetic rows, 20 categorical fields with
vocabularies from 10 to 100,000, 5 dense fields, embedding dim 16, 4 experts
of [256, 128], towers [64], batch 1024; inference at batch 4096; single-row
latency of the exported SavedModel. Each configuration is measured in this
one run, so the figures compare; absolute times on shared machines are noise.

    python bench/throughput.py [--rows 400000] [--epochs 2] [--models mmoe,ple]

Beside the peers: `--peers HARNESS --venvs VENVS [--rounds 2] [--out DIR]` runs
`bench/peers.py` (tfmtl, DeepCTR and torch-rechub interleaved config by config
on the harness's data) and prints its training, inference, memory and
quality rows with their ratios (`DIR/throughput_peers.md`, raw records in
`DIR/peers_raw/`).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import export  # noqa: E402
from bench import peers  # noqa: E402
import zoo  # noqa: E402
from tfmtl.data import ctr_synthetic, features_from, to_dataset  # noqa: E402

# The peers' matched architecture (../shared/peers): zoo/presets.py, size "peers".
HPARAMS = {name: zoo.preset(name, "peers") for name in ("mmoe", "ple")}


def data(rows, seed=0):
    cardinalities = np.unique(np.geomspace(10, 100_000, 20).astype(int))
    frame, schema, tasks = ctr_synthetic(rows, cardinalities=tuple(cardinalities), num_dense=5,
                                         tasks=("click", "like"), seed=seed)
    return frame, schema, tasks


def train_rate(model, dataset, rows, epochs):
    model.fit(dataset.take(20), epochs=1, verbose=0)  # trace and warm up
    started = time.perf_counter()
    model.fit(dataset, epochs=epochs, verbose=0)
    return rows * epochs / (time.perf_counter() - started)


def infer_rate(model, x, rows, repeats=3):
    predict = tf.function(lambda batch: model(batch, training=False), jit_compile=False)
    batches = [{k: tf.constant(v[i:i + 4096]) for k, v in x.items()} for i in range(0, rows, 4096)]
    predict(batches[0])
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            predict(batch)
        best = max(best, rows / (time.perf_counter() - started))
    return best


def latency(model, x):
    directory = tempfile.mkdtemp()
    path = export.save(model, directory)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    row = {k: tf.constant(v[:1]) for k, v in x.items()}
    for _ in range(20):
        serve(**row)
    times = []
    for i in range(300):
        row = {k: tf.constant(v[i:i + 1]) for k, v in x.items()}
        started = time.perf_counter()
        serve(**row)
        times.append((time.perf_counter() - started) * 1e3)
    return np.percentile(times, 50), np.percentile(times, 99)


def profile(name, model, schema, tasks, dataset, steps=100):
    """Where a training step's time goes, per batch of 1024 (ms)."""
    from tfmtl.layers import FeatureLookup

    batches = list(dataset.take(steps))
    started = time.perf_counter()
    for _ in dataset.take(steps):
        pass
    pipeline = (time.perf_counter() - started) / steps * 1e3

    lookup_layer = next(l for l in model.layers if isinstance(l, FeatureLookup))
    lookup = tf.function(lambda x: lookup_layer(x))
    forward = tf.function(lambda x: model(x, training=False))
    timings = {"input pipeline (tf.data, overlapped by prefetch)": pipeline}
    for label, fn in (("lookups (raw values to ids)", lookup), ("forward pass", forward)):
        fn(batches[0][0])
        started = time.perf_counter()
        for x, *_ in batches:
            fn(x)
        timings[label] = (time.perf_counter() - started) / steps * 1e3
    cached = tf.data.Dataset.from_tensors(batches[0]).repeat(steps)
    model.fit(cached.take(5), verbose=0)
    started = time.perf_counter()
    model.fit(cached, verbose=0)
    timings["train step on an in-memory batch (forward + backward + Adam)"] = (
        (time.perf_counter() - started) / steps * 1e3)
    # The same step with the embedding tables frozen: the cost of updating them.
    frozen = zoo.build(name, schema, tasks, **HPARAMS[name])
    frozen.set_weights(model.get_weights())
    frozen.get_layer("embedding").trainable = False
    frozen.compile()
    frozen.fit(cached.take(5), verbose=0)
    started = time.perf_counter()
    frozen.fit(cached, verbose=0)
    timings["same step, embedding tables frozen (no table update)"] = (
        (time.perf_counter() - started) / steps * 1e3)
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="mmoe,ple")
    parser.add_argument("--jit", default="off,on", help="jit_compile settings to compare")
    parser.add_argument("--profile", action="store_true", help="break a step's time down")
    peers.side_by_side_arguments(parser)
    args = parser.parse_args()
    if args.peers:
        return peers.side_by_side(args, "train,whole,infer,rss,auc", "throughput_peers")

    frame, schema, tasks = data(args.rows)
    x = features_from(frame, schema)
    dataset = to_dataset(frame, schema, tasks, batch_size=1024, seed=0)
    print(f"{args.rows} rows, {len(schema.fields)} categorical fields "
          f"(vocabularies {min(len(f.vocabulary) for f in schema.fields)}.."
          f"{max(len(f.vocabulary) for f in schema.fields)}), {len(schema.dense)} dense; "
          f"batch 1024; {tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} "
          f"threads, devices {[d.device_type for d in tf.config.list_physical_devices()]}")
    rows = []
    for name in args.models.split(","):
        for jit in args.jit.split(","):
            keras.utils.set_random_seed(0)
            model = zoo.build(name, schema, tasks, **HPARAMS[name])
            model.compile(jit_compile=jit == "on")
            rate = train_rate(model, dataset, args.rows, args.epochs)
            # Keras falls back to no XLA when a layer cannot be compiled (lookup tables).
            used = "on" if model.jit_compile else "off"
            label = f"jit {jit}" + ("" if used == jit else " (Keras fell back to off)")
            rows.append((name, label, f"{rate:,.0f}", f"{model.count_params():,}"))
            print(f"  {name:5s} train, {label:34s}: {rate:10,.0f} samples/s")
        if args.profile:
            for label, ms in profile(name, model, schema, tasks, dataset).items():
                print(f"    {label:62s} {ms:7.2f} ms/batch")
        inference = infer_rate(model, x, min(args.rows, 100 * 4096))
        p50, p99 = latency(model, x)
        print(f"  {name:5s} inference (batch 4096): {inference:10,.0f} samples/s; "
              f"SavedModel single row p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print()
    print("| model | training | samples/s | parameters |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")



if __name__ == "__main__":
    main()
