"""One training process of the multi-worker tests: `python worker.py OUT [CHECKPOINT_DIR]`.

Trains MMoE (a masked task) on synthetic rows with `tfmtl.fit` under the
strategy `TF_CONFIG` implies (multi-worker when set, else none) and saves the
trained weights and the history to `OUT` (.npz). `WORKER_SHUFFLE_SEED` (default
0) is `tfmtl.fit`'s seed: a worker given another one builds other global batches.
"""

import json
import os
import sys

import numpy as np

import tfmtl
import zoo
from tfmtl.data import ctr_synthetic
from tfmtl.schema import Task

# 3,200 training rows in global batches of 301: every step splits unevenly (150 / 151 rows),
# and the last batch is short (190 rows).
ROWS, EPOCHS, BATCH = 4_000, 3, 301


def build(strategy):
    """MMoE over a binary task, a masked binary task and a regression task, seeded."""
    import keras

    frame, schema, _ = ctr_synthetic(ROWS, tasks=("click", "like"), seed=0)
    tasks = [Task("click"), Task("like", mask="click"),
             Task("rating", kind="regression", label="p_like", initial_bias=0.5)]
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(16,),
                          tower_units=(8,))
    return model, frame


def main(out, checkpoint_dir=None):
    strategy = tfmtl.distribute.strategy("multi-worker" if os.environ.get("TF_CONFIG")
                                         else "default")
    model, frame = build(strategy)
    history = tfmtl.fit(model, frame, validation=0.2, epochs=EPOCHS, batch_size=BATCH,
                        patience=EPOCHS, verbose=2, checkpoint_dir=checkpoint_dir,
                        seed=int(os.environ.get("WORKER_SHUFFLE_SEED", "0")),
                        checkpoint_every=2 if checkpoint_dir else "epoch")
    np.savez(out, *[w.numpy() for w in model.trainable_weights],
             history=json.dumps(history.history))


if __name__ == "__main__":
    main(*sys.argv[1:])
