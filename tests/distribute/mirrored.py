"""`python mirrored.py`: MMoE (a masked task) trained by `tfmtl.fit` under a MirroredStrategy
over two logical CPUs and with no strategy, same seed and global batch; prints the largest
weight gap and both histories as JSON."""

import json
import os
import sys

import numpy as np


def train(strategy):
    import keras

    import tfmtl
    import worker
    import zoo
    from tfmtl.data import ctr_synthetic
    from tfmtl.schema import Task

    frame, schema, _ = ctr_synthetic(worker.ROWS, tasks=("click", "like"), seed=0)
    tasks = [Task("click"), Task("like", mask="click")]
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(16,),
                          tower_units=(8,))
    history = tfmtl.fit(model, frame, validation=0.2, epochs=worker.EPOCHS,
                        batch_size=worker.BATCH, patience=worker.EPOCHS, verbose=0)
    return [w.numpy() for w in model.trainable_weights], history.history


def main():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    weights, history = train(mirrored)
    one, one_history = train(tf.distribute.get_strategy())
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync,
                      "gap": max(float(np.abs(a - b).max()) for a, b in zip(weights, one)),
                      "history": history, "one": one_history}))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
