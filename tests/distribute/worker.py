"""One training process of the multi-worker tests: `python worker.py OUT [CHECKPOINT_DIR]`.

Trains MMoE (a masked task) on synthetic rows with `tfmtl.fit` under the
strategy `TF_CONFIG` implies (multi-worker when set, else none) and saves the
trained weights and the history to `OUT` (.npz).
"""

import json
import os
import sys

import numpy as np

import tfmtl
import zoo
from tfmtl.data import ctr_synthetic
from tfmtl.schema import Task

ROWS, EPOCHS, BATCH = 4_000, 3, 200


def main(out, checkpoint_dir=None):
    import keras

    frame, schema, _ = ctr_synthetic(ROWS, tasks=("click", "like"), seed=0)
    tasks = [Task("click"), Task("like", mask="click")]
    strategy = tfmtl.distribute.strategy("multi-worker" if os.environ.get("TF_CONFIG")
                                         else "default")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(16,),
                          tower_units=(8,))
    history = tfmtl.fit(model, frame, validation=0.2, epochs=EPOCHS, batch_size=BATCH,
                        patience=EPOCHS, verbose=2, checkpoint_dir=checkpoint_dir,
                        checkpoint_every=2 if checkpoint_dir else "epoch")
    np.savez(out, *[w.numpy() for w in model.trainable_weights],
             history=json.dumps(history.history))


if __name__ == "__main__":
    main(*sys.argv[1:])
