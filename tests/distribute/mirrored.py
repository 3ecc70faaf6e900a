"""`python mirrored.py`: MMoE (a masked task) trained by `tfmtl.fit` under a MirroredStrategy
over two logical CPUs and with no strategy, same seed and global batch; prints the largest
weight gap and both histories as JSON."""

import json
import os
import sys

import numpy as np


def train(strategy):
    import tfmtl
    import worker

    model, frame = worker.build(strategy)
    if strategy.num_replicas_in_sync > 1:
        try:  # Keras' own fit needs the global batch to split evenly: a clear error
            tfmtl.fit(model, frame, validation=0.2, epochs=1, batch_size=301, verbose=0)
            raise AssertionError("an uneven global batch was accepted")
        except ValueError as error:
            assert "must be a multiple of 2" in str(error), error
    history = tfmtl.fit(model, frame, validation=0.2, epochs=worker.EPOCHS,
                        batch_size=worker.BATCH - 1, patience=worker.EPOCHS, verbose=0)
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
