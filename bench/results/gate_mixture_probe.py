"""Probe: the gates' mixture as einsum against the broadcast product and sum, in one process, in turns.

For each config of the peers harness (matched architecture, batch 1024), two models with the same
initial weights; one traced with `SoftmaxGate.call` as the einsum it was before commit 539c636, one
with the current call. Keras' train function on one fixed batch, rounds of 10 steps, the two
models in turns; medians of ms per step. Run by hand, from the repository root:

    PYTHONPATH=. BENCH_DATA=... python bench/results/gate_mixture_probe.py --peers ../shared/peers
"""
import argparse
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--peers", required=True)
parser.add_argument("--configs", default="ml100k:mmoe,synth:mmoe,synth:ple")
parser.add_argument("--rounds", type=int, default=15)
args = parser.parse_args()
sys.path.insert(0, os.path.abspath(args.peers))
import common as C  # noqa: E402

C.pin_threads()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(C.THREADS)
tf.config.threading.set_inter_op_parallelism_threads(C.THREADS)
import keras  # noqa: E402
from keras import ops  # noqa: E402

import zoo  # noqa: E402
from bench.profile import training_data  # noqa: E402
from tfmtl import optimizers  # noqa: E402
from tfmtl.layers.softmax_gate import SoftmaxGate  # noqa: E402

current = SoftmaxGate.call


def einsum_call(self, gate_input, experts):
    return ops.einsum("be,beu->bu", self.gate_weights(gate_input), experts)


for config in args.configs.split(","):
    data_name, model_name = config.split(":")
    frame, schema, tasks = training_data(data_name, model_name, C)
    steps = {}
    for label, call in (("einsum", einsum_call), ("product and sum", current)):
        SoftmaxGate.call = call
        keras.utils.set_random_seed(0)
        model = zoo.build(model_name, schema, tasks, **zoo.preset(model_name, "peers"))
        model.compile(optimizer=optimizers.Adam(C.LR))
        x, y, w = model.prepare(frame.iloc[:C.BATCH])
        one = (x, y) + (() if w is None else (w,))
        model.make_train_function()
        batches = iter(tf.data.Dataset.from_tensors(one).repeat())
        for _ in range(5):  # traces with the call in force now
            model.train_function(batches)
        steps[label] = (model, batches)
    SoftmaxGate.call = current
    times = {label: [] for label in steps}
    for _ in range(args.rounds):
        for label, (model, batches) in steps.items():
            started = time.perf_counter()
            for _ in range(10):
                model.train_function(batches)
            times[label].append((time.perf_counter() - started) * 100)
    medians = {label: float(np.median(t)) for label, t in times.items()}
    print(f"{config}: " + ", ".join(f"{k} {v:.2f} ms/step (rounds {min(times[k]):.2f}-"
                                    f"{max(times[k]):.2f})" for k, v in medians.items())
          + f"; einsum / product and sum {medians['einsum'] / medians['product and sum']:.2f}x",
          flush=True)
