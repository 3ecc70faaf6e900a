"""Serving latency: the exported SavedModel against `model.predict` and `model(x)`.

For MMoE and PLE (the throughput benchmark's setup, trained one epoch on
synthetic rows), p50/p99 latency of batch 1 and batch 256 for: the
SavedModel loaded with `tf.saved_model.load` (its `serving_default`
signature, as TF Serving runs it), `model.predict`, and a plain
`model(x)` call. One run measures everything side by side; the device is
whatever TensorFlow sees (CPU here; a GPU where one is present).

    python bench/serving.py [--calls 300] [--models mmoe,ple]

Beside the peers: `--peers HARNESS --venvs VENVS [--rounds 2] [--out DIR]` runs
`bench/peers.py` (tfmtl, DeepCTR and torch-rechub interleaved config by config
on the harness's data) and prints its batch-1 latency and batch-4096
inference rows with their ratios (`DIR/serving_peers.md`, raw records in
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
from bench.throughput import HPARAMS, data  # noqa: E402
from tfmtl.data import features_from, to_dataset  # noqa: E402


def timed(fn, batches, calls):
    for batch in batches[:10]:
        fn(batch)
    times = []
    for i in range(calls):
        batch = batches[i % len(batches)]
        started = time.perf_counter()
        out = fn(batch)
        for value in out.values():
            np.asarray(value)  # results on the host, as a server returns them
        times.append((time.perf_counter() - started) * 1e3)
    return np.percentile(times, 50), np.percentile(times, 99)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--models", default="mmoe,ple")
    parser.add_argument("--rows", type=int, default=50_000)
    peers.side_by_side_arguments(parser)
    args = parser.parse_args()
    if args.peers:
        return peers.side_by_side(args, "p50,infer", "serving_peers")

    frame, schema, tasks = data(args.rows)
    x = features_from(frame, schema)
    devices = [d.device_type for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
    print(f"devices: CPU{' + ' + ', '.join(devices) if devices else ''}")
    print("| model | batch | path | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = zoo.build(name, schema, tasks, **HPARAMS[name])
        model.compile()
        model.fit(to_dataset(frame, schema, tasks, 1024), epochs=1, verbose=0)
        path = export.save(model, tempfile.mkdtemp())
        serve = tf.saved_model.load(path).signatures["serving_default"]
        for size in (1, 256):
            batches = [{k: v[i:i + size] for k, v in x.items()}
                       for i in range(0, 64 * size, size)]
            tensors = [{k: tf.constant(v) for k, v in b.items()} for b in batches]
            paths = {
                "SavedModel signature": (lambda b: serve(**b), tensors),
                "model.predict": (lambda b: model.predict(b, batch_size=size, verbose=0), batches),
                "model(x)": (lambda b: model(b, training=False), tensors),
            }
            for label, (fn, inputs) in paths.items():
                p50, p99 = timed(fn, inputs, args.calls)
                print(f"| {name} | {size} | {label} | {p50:.2f} | {p99:.2f} |", flush=True)



if __name__ == "__main__":
    main()
