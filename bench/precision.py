"""float32 against mixed bfloat16 per training step, with and without the CPU's bf16 instructions.

For each configuration of `bench/peers.py` (the peers harness's data and
matched architecture, batch 1024, 2 threads, `tfmtl.optimizers.Adam`), one
process builds the model twice, as `zoo.build(..., dtype=None)` and
`dtype="mixed_bfloat16"`, and times Keras' train function on one fixed
batch, the two models in turns (rounds of 5 steps), medians. `--isa` runs
each configuration again in a process whose oneDNN is capped at that
instruction set (`ONEDNN_MAX_CPU_ISA`): `AVX512_CORE_VNNI` is this CPU
without its AVX512-BF16 instructions, where bfloat16 products are emulated.
A configuration `movielens:search` or `synthetic:search` times AutoMTL's
search instead (`bench/automtl.py`'s data and supernet): a pair of steps,
the architecture step on a validation batch of 2048 and the weight step
(with beta) on a training batch of 1024, the two searches in turns (rounds
of 2 pairs).

    python bench/precision.py --peers ../shared/peers [--configs ml100k:mmoe] \
        [--isa default,AVX512_CORE_VNNI] [--rounds 8] [--out bench/results] [--name precision]
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_one(config, rounds, peers):
    """Milliseconds per train step, float32 and mixed bfloat16, for `config` in this process."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, peers)
    import common as C

    C.pin_threads()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(C.THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(C.THREADS)
    import zoo
    from bench.profile import training_data
    from tfmtl.optimizers import Adam

    data_name, model_name = config.split(":")
    if model_name == "search":
        return run_search(data_name, rounds)
    frame, schema, tasks = training_data(data_name, model_name, C)
    steps = {}
    for dtype in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        model = zoo.build(model_name, schema, tasks, dtype=dtype,
                          **zoo.preset(model_name, "peers"))
        model.compile(optimizer=Adam(C.LR))
        x, y, _ = model.prepare(frame.iloc[:C.BATCH])
        batches = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
        model.make_train_function()
        for _ in range(5):  # tracing, first calls
            model.train_function(batches)
        steps[dtype] = (model, batches)
    times = {dtype: [] for dtype in steps}
    for _ in range(rounds):
        for dtype, (model, batches) in steps.items():
            started = time.perf_counter()
            for _ in range(5):
                model.train_function(batches)
            times[dtype].append((time.perf_counter() - started) * 1e3 / 5)
    return {dtype: float(np.median(t)) for dtype, t in times.items()}


def run_search(data_name, rounds):
    """Milliseconds per pair of AutoMTL search steps (architecture step on a validation batch,
    weight step with beta on a training batch), float32 and mixed bfloat16, `bench/automtl.py`'s
    data and search settings, in this process."""
    import numpy as np

    from bench.search_speed import search_pairs

    searches = {}
    for dtype in ("float32", "mixed_bfloat16"):
        searches[dtype] = search_pairs(data_name, dtype=dtype)
        searches[dtype](2)  # tracing, first calls
    times = {dtype: [] for dtype in searches}
    for _ in range(rounds):
        for dtype, pairs in searches.items():
            started = time.perf_counter()
            pairs(2)
            times[dtype].append((time.perf_counter() - started) * 1e3 / 2)
    return {dtype: float(np.median(t)) for dtype, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="the peers harness (its common.py, data)")
    parser.add_argument("--configs", default="synth:mmoe,synth:ple,ml100k:mmoe")
    parser.add_argument("--isa", default="default,AVX512_CORE_VNNI",
                        help="oneDNN instruction-set caps, 'default' for none")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", help="a directory for NAME.md and NAME.json")
    parser.add_argument("--name", default="precision", help="the results files' name")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    peers = os.path.abspath(args.peers)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.rounds, peers)), flush=True)
        return
    sys.path.insert(0, ROOT)
    from bench.output import write_results

    from tfmtl.precision import cpu_flags

    flags = " ".join(sorted(flag for flag in cpu_flags() or ()
                            if "bf16" in flag or flag.startswith("amx")))
    results = {}
    for config in args.configs.split(","):
        for isa in args.isa.split(","):
            env = dict(os.environ)
            if isa != "default":
                env["ONEDNN_MAX_CPU_ISA"] = isa
            print(f"{config} {isa}", flush=True)
            done = subprocess.run([sys.executable, __file__, "--peers", peers, "--one", config,
                                   "--rounds", str(args.rounds)],
                                  capture_output=True, text=True, env=env)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            results[f"{config} {isa}"] = (json.loads(lines[-1][len("RESULT "):]) if lines
                                          else {"failed": done.stderr.strip().splitlines()[-1:]})
    unit = ("pair of AutoMTL search steps (validation batch 2048, training batch 1024)"
            if all(c.endswith(":search") for c in args.configs.split(","))
            else "training step (batch 1024; a `:search` config: a pair of search steps)")
    text = [f"# float32 against mixed bfloat16: milliseconds per {unit}\n",
            f"`python bench/precision.py --peers ../shared/peers --configs {args.configs} "
            f"--isa {args.isa} --rounds {args.rounds}"
            + (f" --name {args.name}" if args.name != "precision" else "")
            + "`; the CPU's bfloat16 flags: "
            f"{flags or 'none'}. Keras' train function on one fixed batch (a `:search` "
            "config: the search's two steps on one validation and one training batch), both "
            "precisions in one process, in turns; medians.\n",
            "| config | oneDNN ISA cap | float32 ms | mixed bfloat16 ms | bfloat16 speed-up |",
            "|---|---|---|---|---|"]
    for key, r in results.items():
        config, isa = key.split(" ")
        if "failed" in r:
            text.append(f"| {config} | {isa} | failed: {' '.join(r['failed'])} | | |")
            continue
        text.append(f"| {config} | {isa} | {r['float32']:.2f} | {r['mixed_bfloat16']:.2f} | "
                    f"{r['float32'] / r['mixed_bfloat16']:.2f}x |")
    write_results(args.out, args.name, "\n".join(text), dict(cpu_bf16_flags=flags,
                                                              results=results))


if __name__ == "__main__":
    main()
