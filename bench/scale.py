"""Beyond one machine: 1 against 2 local workers, and parquet data larger than memory.

Two measurements, each in fresh processes:

1. Workers: MMoE (the peers' size: embedding 16, 4 experts [256, 128],
   towers [64]) on `ctr_synthetic` rows with a masked task, trained by
   `tfmtl.fit` with no strategy (1 process) and with
   `MultiWorkerMirroredStrategy` over 2 processes on 127.0.0.1 (`TF_CONFIG`),
   the same global batch; samples/s of the last epoch (the first traces),
   alternated over `--rounds`. On a 2-core machine two workers share the
   cores that one worker already uses: no speed-up is expected, and the
   figure says what the collective all-reduce costs.
2. Streaming: a directory of parquet files whose decoded size (what a
   DataFrame of it holds: rows x bytes per value) is at least `--times` x the
   address space the process is allowed (`resource.RLIMIT_AS`, as `ulimit -v`
   sets it), streamed once through `parquet_schema` (the vocabularies and
   moments counted in one pass) and once through `parquet_dataset` (the
   training batches with their targets); the rows seen against the files'
   rows, and the peak RSS.

    python bench/scale.py [--rows 200000] [--rounds 2] [--limit-gib 3.5] [--times 5]
                          [--data /tmp/scale_parquet] [--out bench/results]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CATEGORICAL, DENSE = 24, 8  # the streamed files' columns: int64 ids, float64 values, 2 labels
BYTES_PER_ROW = (CATEGORICAL + DENSE + 2) * 8


def worker(rows, epochs, batch, out):
    """One training process (with TF_CONFIG: one of the workers)."""
    import keras

    import tfmtl
    import zoo
    from tfmtl.data import ctr_synthetic
    from tfmtl.schema import Task

    frame, schema, _ = ctr_synthetic(rows, tasks=("click", "like"), seed=0)
    tasks = [Task("click"), Task("like", mask="click")]
    strategy = tfmtl.distribute.strategy("multi-worker" if os.environ.get("TF_CONFIG")
                                         else "default")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.build("mmoe", schema, tasks, **zoo.preset("mmoe", "peers"))
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    history = tfmtl.fit(model, frame, validation=None, epochs=epochs, batch_size=batch,
                        verbose=0, callbacks=[Clock()])
    with open(out, "w") as f:
        json.dump({"epoch_seconds": times, "rows": rows, "loss": history.history["loss"],
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)


def run_workers(n, rows, epochs, batch, tmp):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    processes, outs = [], []
    for index in range(n):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1")
        if n > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": index}})
        outs.append(os.path.join(tmp, f"w{n}_{index}.json"))
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "--worker", str(rows), str(epochs), str(batch), outs[-1]],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"a worker failed:\n{err[-3000:]}")
    results = [json.load(open(o)) for o in outs]
    seconds = max(r["epoch_seconds"][-1] for r in results)
    return {"workers": n, "samples_per_s": rows / seconds, "last_epoch_s": seconds,
            "loss": results[0]["loss"], "peak_rss_mib": [r["peak_rss_mib"] for r in results]}


def make_parquet(directory, rows, files, seed=0):
    """`files` parquet files of `rows` rows each (skipped when they are there already)."""
    import numpy as np
    import pandas as pd

    os.makedirs(directory, exist_ok=True)
    cardinalities = np.unique(np.geomspace(10, 1_000_000, CATEGORICAL).astype(int))
    for i in range(files):
        path = os.path.join(directory, f"part-{i:04d}.parquet")
        if os.path.exists(path):
            continue
        rng = np.random.default_rng([seed, i])
        columns = {f"c{j}": rng.integers(0, c, rows) for j, c in enumerate(cardinalities)}
        columns.update({f"d{j}": rng.normal(size=rows) for j in range(DENSE)})
        columns["click"] = (rng.random(rows) < 0.3).astype("int64")
        columns["like"] = (rng.random(rows) < 0.5).astype("int64") * columns["click"]
        pd.DataFrame(columns).to_parquet(path + ".tmp", row_group_size=1 << 20)
        os.replace(path + ".tmp", path)
    return cardinalities


def limits(limit_gib):
    """For the streaming process, set before it starts: the address-space limit, and thread
    stacks of 1 MiB (glibc reserves a thread's stack from RLIMIT_STACK, 8 MiB by default, and
    TensorFlow's and Arrow's thread pools would spend the limit on reserved stacks)."""
    limit = int(limit_gib * (1 << 30))

    def apply():
        resource.setrlimit(resource.RLIMIT_STACK, (1 << 20, 1 << 20))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def stream(directory, out):
    """One schema pass and one pass of training batches (run under `limits`)."""
    import pyarrow.parquet as pq

    from tfmtl.data import parquet_dataset, parquet_files, parquet_schema

    files = parquet_files(directory)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    started = time.perf_counter()
    schema, tasks = parquet_schema(directory, ["click", "like"], masks={"like": "click"},
                                   max_vocabulary=100_000)
    schema_seconds = time.perf_counter() - started
    rss_schema = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, seen = time.perf_counter(), 0
    for x, y, _ in parquet_dataset(directory, schema, tasks, batch_size=8192, shuffle=True,
                                   seed=0):
        seen += int(x["c0"].shape[0])
    with open(out, "w") as f:
        json.dump({"files": len(files), "rows_in_files": rows, "rows_schema": schema.rows,
                   "rows_seen": seen, "schema_seconds": schema_seconds,
                   "stream_seconds": time.perf_counter() - started,
                   "peak_rss_mib_after_schema": rss_schema,
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "address_space_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
                   "hashed": [f.name for f in schema if getattr(f, "num_bins", None)
                              and getattr(f, "vocabulary", None) is None]}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit-gib", type=float, default=3.5)
    parser.add_argument("--times", type=float, default=5.0)
    parser.add_argument("--file-rows", type=int, default=4_000_000)
    parser.add_argument("--data", default="/tmp/scale_parquet")
    parser.add_argument("--parts", default="workers,stream")
    parser.add_argument("--out", help="a directory for scale.md and scale.json")
    args = parser.parse_args()
    tmp = os.path.join(args.out or "/tmp", "scale_raw")
    os.makedirs(tmp, exist_ok=True)
    payload = {}
    saved = os.path.join(args.out or "", "scale.json")
    if args.out and os.path.exists(saved):  # the part not run now keeps its last figures
        with open(saved) as f:
            payload = json.load(f)
    if "workers" in args.parts:
        runs = []
        for r in range(args.rounds):
            for n in (1, 2):
                runs.append(dict(run_workers(n, args.rows, args.epochs, args.batch_size, tmp),
                                 round=r + 1))
                print(runs[-1], flush=True)
        payload["workers"] = runs
        payload["workers_setting"] = {"rows": args.rows, "epochs": args.epochs,
                                      "batch_size": args.batch_size}
    if "stream" in args.parts:
        needed = args.times * args.limit_gib * (1 << 30)
        files = int(-(-needed // (args.file_rows * BYTES_PER_ROW)))
        started = time.perf_counter()
        make_parquet(args.data, args.file_rows, files)
        made = time.perf_counter() - started
        out = os.path.join(tmp, "stream.json")
        # Fewer malloc arenas (glibc reserves 64 MiB of address space per thread's arena) and
        # Arrow on the system allocator: reserved address space is what RLIMIT_AS counts.
        env = dict(os.environ, MALLOC_ARENA_MAX="2", ARROW_DEFAULT_MEMORY_POOL="system")
        process = subprocess.run([sys.executable, __file__, "--stream", args.data, out],
                                 capture_output=True, text=True, env=env,
                                 preexec_fn=limits(args.limit_gib))
        if process.returncode:
            raise SystemExit(f"the streaming process failed:\n{process.stderr[-3000:]}")
        result = json.load(open(out))
        decoded = result["rows_in_files"] * BYTES_PER_ROW / (1 << 30)
        on_disk = sum(os.path.getsize(os.path.join(args.data, f)) for f in os.listdir(args.data)
                      if f.endswith(".parquet")) / (1 << 30)
        result.update(decoded_gib=decoded, on_disk_gib=on_disk, limit_gib=args.limit_gib,
                      make_seconds=made)
        payload["stream"] = result
    lines = ["# Beyond one machine (bench/scale.py)\n"]
    if "workers" in payload:
        lines += workers_table(payload["workers"], payload["workers_setting"])
    if "stream" in payload:
        lines += stream_lines(payload["stream"])
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(os.path.join(args.out, "scale.md"), "w") as f:
            f.write(text)
        with open(saved, "w") as f:
            json.dump(payload, f, indent=1)


def workers_table(runs, setting):
    rounds = sorted({x["round"] for x in runs})
    lines = [f"## 1 against 2 local workers ({setting['rows']} rows, MMoE peers size, global "
             f"batch {setting['batch_size']}, samples/s of epoch {setting['epochs']})\n",
             "| round | workers | samples/s | ratio to 1 worker | peak RSS per worker (MiB) |",
             "|---|---|---|---|---|"]
    for r in rounds:
        one = next(x for x in runs if x["round"] == r and x["workers"] == 1)
        for x in (x for x in runs if x["round"] == r):
            lines.append(f"| {r} | {x['workers']} | {x['samples_per_s']:.0f} | "
                         f"{x['samples_per_s'] / one['samples_per_s']:.2f} | "
                         f"{', '.join(f'{m:.0f}' for m in x['peak_rss_mib'])} |")
    return lines + [""]


def stream_lines(result):
    decoded, limit = result["decoded_gib"], result["limit_gib"]
    return [
        f"## Streaming {result['files']} parquet files under a {limit:g} GiB "
        "address-space limit\n",
        f"- data: {result['rows_in_files']:,} rows x {CATEGORICAL + DENSE + 2} columns of 8 "
        f"bytes = {decoded:.1f} GiB decoded ({decoded / limit:.1f}x the limit), "
        f"{result['on_disk_gib']:.1f} GiB on disk",
        f"- schema pass (`parquet_schema`): {result['rows_schema']:,} rows in "
        f"{result['schema_seconds']:.0f} s; hashed columns: {', '.join(result['hashed'])}",
        f"- batch pass (`parquet_dataset`, batch 8192, targets made): "
        f"{result['rows_seen']:,} rows seen in {result['stream_seconds']:.0f} s "
        f"({result['rows_seen'] / result['stream_seconds']:,.0f} rows/s); rows seen "
        f"{'equal' if result['rows_seen'] == result['rows_in_files'] else 'DIFFER FROM'} "
        "the rows in the files",
        f"- peak RSS {result['peak_rss_mib']:.0f} MiB (after the schema pass "
        f"{result['peak_rss_mib_after_schema']:.0f} MiB)\n"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1:2] == ["--stream"]:
        stream(sys.argv[2], sys.argv[3])
    else:
        main()
