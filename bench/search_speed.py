"""AutoMTL's search step, this checkout against an earlier commit: time per step pair, and where it goes.

Two worker processes, one importing this checkout's `tfmtl` and one an
earlier commit's (`git archive REV` into a temporary folder), each build
`bench/automtl.py`'s search (MovieLens-100K or the synthetic set, the paper's
supernet: 8 experts of 3 blocks, every candidate) and trace its steps; then
the parent has them time pairs of steps in turns (an architecture step on a
validation batch of 2048 and a weight step with beta on a training batch of
1024, rounds of 2 pairs), so the machine's drift falls on both alike. Last,
each worker runs 2 pairs under TensorFlow's profiler and reports the CPU time
per op type (summed over the 2 threads), the breakdown of "where the time
goes".

    python bench/search_speed.py [--before 4034577] [--data movielens] [--rounds 6]
                                 [--out bench/results]
"""

import argparse
import collections
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = 2
# The profiler's wrappers around ops (their time is the ops' time again), left out of the sums.
WRAPPERS = {"ExecutorState::Process", "ParallelFor"}


def search_pairs(data_name, **options):
    """`bench/automtl.py`'s search on `data_name` (its data, supernet and batches, `Search`'s
    `options`), as a function that runs `n` step pairs on one fixed validation and training batch:
    the architecture step, then the weight step with beta. Imports the first `bench` and `tfmtl`
    on `sys.path` (a worker's checkout)."""
    from bench.automtl import SEARCH, movielens, synthetic
    from tfmtl.search import Search

    (train, valid, _), schema, tasks = movielens() if data_name == "movielens" else synthetic()
    settings = {k: v for k, v in SEARCH.items() if k not in ("epochs", "warmup")}
    run = Search(schema, tasks, train, valid, epochs=15, warmup=5, **settings, **options)
    batch, valid_batch = next(iter(run.train_data)), next(run.valid_batches)

    def pairs(n):
        for _ in range(n):
            float(run.architecture_step(valid_batch))
            float(run.weight_step(batch, selection=True))

    return pairs


def worker(root, data_name):
    """Builds the search from `root`'s tfmtl; answers `run` (seconds per pair), `profile`
    (CPU milliseconds per op type over 2 pairs) and `quit` on stdin."""
    sys.path.insert(0, root)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    pairs = search_pairs(data_name)
    started = time.perf_counter()
    pairs(2)  # tracing, first calls
    print(f"READY {time.perf_counter() - started:.1f}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            started = time.perf_counter()
            pairs(PAIRS)
            print(f"TIME {(time.perf_counter() - started) / PAIRS}", flush=True)
        elif command == "profile":
            logdir = tempfile.mkdtemp()
            tf.profiler.experimental.start(logdir)
            pairs(PAIRS)
            tf.profiler.experimental.stop()
            print("PROFILE " + json.dumps(op_times(logdir)), flush=True)
            shutil.rmtree(logdir, ignore_errors=True)
        elif command == "quit":
            return


def op_times(logdir):
    """CPU milliseconds per TensorFlow op type in the profiler's trace under `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name not in WRAPPERS:
                    times[name] += event.duration_ps / 1e9
    return dict(op_types(times))  # by type: the instances' names would be megabytes


def start(root, data_name):
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", root,
                             "--data", data_name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=root)


def ask(process, command, prefix):
    process.stdin.write(command + "\n")
    process.stdin.flush()
    return answer(process, prefix)


def answer(process, prefix):
    for line in process.stdout:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise RuntimeError(f"the worker stopped before answering {prefix.strip()}")


def op_types(times):
    """Milliseconds per op type: the profiler names op instances `scope/name:Type` (a type's
    own name is kept)."""
    types = collections.Counter()
    for name, ms in times.items():
        types[name.rsplit(":", 1)[-1]] += ms
    return types


def groups(times):
    """Op types gathered into the parts of a step they come from (names as TensorFlow's)."""
    parts = collections.Counter()
    for name, ms in op_types(times).items():
        if "MatMul" in name or "Conv" in name:
            part = "matrix products and convolutions"
        elif "Einsum" in name or name in ("Pack", "Unpack"):
            part = "einsum, stack"
        elif name.startswith("StatelessRandom") or name in ("SelectV2", "GreaterEqual",
                                                             "Bitcast"):
            part = "dropout (random numbers, select)"
        elif "BatchNorm" in name or name in ("Mean", "Sum", "SquaredDifference", "RealDiv",
                                             "Rsqrt", "Sub"):
            part = "batch normalisation, reductions"
        else:
            part = "other element-wise and bookkeeping"
        parts[part] += ms
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="4034577", help="the earlier commit")
    parser.add_argument("--data", default="movielens", choices=("movielens", "synthetic"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", help="a directory for search_speed_<data>.md and .json")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite search_speed_<data>.md from the JSON in --out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.data)
    sys.path.insert(0, ROOT)
    if args.report_only:
        with open(os.path.join(args.out, f"search_speed_{args.data}.json")) as f:
            return report(args, json.load(f))
    before_root = tempfile.mkdtemp(prefix="tfmtl_before_")
    archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", before_root], input=archive, check=True)
    head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    roots = {"before": before_root, "after": ROOT}
    workers, traced = {}, {}
    try:
        for label, root in roots.items():  # one at a time: tracing is the heaviest part
            workers[label] = start(root, args.data)
            traced[label] = float(answer(workers[label], "READY "))
            print(f"{label}: traced in {traced[label]:.0f} s", flush=True)
        times = {label: [] for label in workers}
        for round_ in range(args.rounds):
            for label, process in workers.items():
                times[label].append(float(ask(process, "run", "TIME ")))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in
                                                      times.items()), flush=True)
        profiles = {label: json.loads(ask(process, "profile", "PROFILE "))
                    for label, process in workers.items()}
        for process in workers.values():
            process.stdin.write("quit\n")
            process.stdin.flush()
            process.wait(timeout=120)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
        shutil.rmtree(before_root, ignore_errors=True)
    report(args, dict(before=args.before, after=head, dirty=bool(dirty), times=times,
                      traced=traced, profiles=profiles))


def report(args, payload):
    """Writes search_speed_<data>.md (and .json) from the run's record."""
    import numpy as np

    from bench.output import write_results

    times, traced, profiles = payload["times"], payload["traced"], payload["profiles"]
    head, dirty = payload["after"], payload["dirty"]
    median = {label: float(np.median(t)) for label, t in times.items()}
    text = [f"# AutoMTL search: seconds per step pair, {args.data}\n",
            f"`python bench/search_speed.py --before {payload['before']} --data {args.data} "
            f"--rounds {len(times['before'])}`; after = `{head[:7]}`"
            + (" with uncommitted changes" if dirty else "") + f"; before = "
            f"`{payload['before']}`. "
            f"A pair: the architecture step (validation batch 2048) and the weight step with beta "
            f"(training batch 1024), the paper's supernet; {PAIRS} pairs a round, the two "
            "checkouts' worker processes in turns.\n",
            "| checkout | median s per pair | rounds (s) | tracing, first 2 pairs (s) |",
            "|---|---|---|---|"]
    for label in times:
        text.append(f"| {label} | {median[label]:.3f} | "
                    + " / ".join(f"{t:.2f}" for t in times[label]) + f" | {traced[label]:.0f} |")
    text += ["", f"Speed-up: {median['before'] / median['after']:.2f}x.", "",
             f"Where the time goes: CPU milliseconds per pair by op type (TensorFlow's profiler, "
             f"{PAIRS} pairs, summed over the 2 threads), grouped:", "",
             "| part | before ms | after ms |", "|---|---|---|"]
    grouped = {label: groups(p) for label, p in profiles.items()}
    for part in sorted(set(grouped["before"]) | set(grouped["after"]),
                       key=lambda p: -grouped["before"].get(p, 0)):
        text.append(f"| {part} | {grouped['before'].get(part, 0) / PAIRS:.0f} | "
                    f"{grouped['after'].get(part, 0) / PAIRS:.0f} |")
    text.append(f"| all ops | {sum(profiles['before'].values()) / PAIRS:.0f} | "
                f"{sum(profiles['after'].values()) / PAIRS:.0f} |")
    text += ["", "The op types with most time (ms per pair):", "",
             "| op | before | after |", "|---|---|---|"]
    types = {label: op_types(p) for label, p in profiles.items()}
    top = sorted(set(types["before"]) | set(types["after"]),
                 key=lambda n: -max(types["before"].get(n, 0), types["after"].get(n, 0)))
    for name in top[:16]:
        text.append(f"| {name} | {types['before'].get(name, 0) / PAIRS:.0f} | "
                    f"{types['after'].get(name, 0) / PAIRS:.0f} |")
    write_results(args.out, f"search_speed_{args.data}", "\n".join(text), payload)


if __name__ == "__main__":
    main()
