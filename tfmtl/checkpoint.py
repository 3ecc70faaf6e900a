"""Checkpoints that resume training where it stopped, written so a kill never leaves a broken one."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfmtl.data.targets import prepare_arrays

STATE = "state.npz"


class EpochData:
    """Training batches whose order is a function of the seed and the epoch.

    A fresh process that resumes epoch `e` after step `s` sees exactly the
    batches an uninterrupted run would have seen from there: each epoch's
    row order is `stateless_shuffle(rows, seed=(seed, e))`, and the first
    `s` batches of the resumed epoch are skipped. `dataset` reads the epoch
    and the skip from two variables a callback sets (`set_epoch`).
    """

    def __init__(self, model, frame, batch_size, seed):
        x, y, weights = prepare_arrays(frame, None, None, model.schema, model.targets)
        parts = tuple({k: tf.constant(v) for k, v in part.items()}
                      for part in (x, y, weights) if part is not None)
        rows = len(next(iter(x.values())))
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.skip = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.steps = -(-rows // batch_size)
        seed = int(seed)

        def batches(_):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(rows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64),
                                                               self.epoch]))
            indices = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).skip(self.skip)
            return indices.map(lambda idx: tf.nest.map_structure(lambda t: tf.gather(t, idx),
                                                                 parts))

        self._batches = batches

    def dataset(self, skip=0):
        """One epoch's batches: `steps` of them, or `steps - skip` for an epoch resumed mid-way.

        The length is stated (Keras ends each epoch by it): the epoch's
        batches after the first `skip`, which `set_epoch` must have set too.
        """
        if not 0 <= skip < self.steps:
            raise ValueError(f"skip must be in [0, {self.steps}). Received: {skip}")
        dataset = tf.data.Dataset.from_tensors(0).flat_map(self._batches)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps - skip))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def set_epoch(self, epoch, skip=0):
        self.epoch.assign(epoch)
        self.skip.assign(skip)


class Checkpoints(keras.callbacks.Callback):
    """Saves the whole training state every `every` steps or every epoch; resumes from it.

    The state (weights, optimizer variables, the random seeds of dropout,
    the running metrics of the epoch, epoch, step, the early-stopping state
    and the history so far) is one `.npz` written to a temporary file and
    renamed over the last one, so a kill during a write leaves the previous
    checkpoint whole. A resumed run ends on the weights of an uninterrupted
    one, and on one replica on its logs too (several replicas start the
    resumed epoch's metrics afresh). Once training ends the folder is removed.

    Args:
        directory: str. Where `state.npz` lives.
        every: `"epoch"` or an int number of steps.
        data: the `EpochData` that feeds training (for a mid-epoch resume).
        stopper: the `EarlyStopping` callback, or `None`.
        write: bool. Whether this process writes (and at the end removes)
            the state: in multi-worker training only the chief does, and
            every worker restores from it (a directory all of them read).
    """

    def __init__(self, directory, every="epoch", data=None, stopper=None, write=True):
        super().__init__()
        if every != "epoch" and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be 'epoch' or a positive number of steps. "
                             f"Received: {every!r}")
        self.directory, self.every, self.data, self.stopper = str(directory), every, data, stopper
        self.path = os.path.join(self.directory, STATE)
        self.epoch, self.step, self.resumed = 0, 0, None
        self.previous = {}
        self.write = write

    def restore(self):
        """Loads the saved state into the model; returns `(epoch, step)` to resume from, or None."""
        if not os.path.exists(self.path):
            return None
        with np.load(self.path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            weights = [saved[f"w{i}"] for i in range(meta["weights"])]
            slots = [saved[f"o{i}"] for i in range(meta["optimizer"])]
            best = [saved[f"b{i}"] for i in range(meta["best"])]
            seeds = [saved[f"s{i}"] for i in range(meta.get("seeds", 0))]
            self.metric_values = [saved[f"m{i}"] for i in range(meta.get("metrics", 0))]
        self.model.set_weights(weights)
        for variable, value in zip(_seed_states(self.model), seeds):
            variable.assign(value)
        optimizer = self.model.optimizer
        if not optimizer.built:
            with self.model.distribute_strategy.scope():
                optimizer.build(self.model.trainable_variables)
        for variable, value in zip(optimizer.variables, slots):
            variable.assign(value)
        self.saved_stopper = (meta.get("stopper"), best or None)
        self.previous = meta.get("history", {})
        self.resumed = (meta["epoch"], meta["step"])
        return self.resumed

    def on_train_begin(self, logs=None):
        # Keras resets its early stopping as `fit` begins (this callback comes after it).
        state, weights = getattr(self, "saved_stopper", (None, None))
        if self.stopper is not None and state:
            for key, value in state.items():
                setattr(self.stopper, key, value)
            self.stopper.best_weights = weights

    def on_epoch_begin(self, epoch, logs=None):
        skip = self.resumed[1] if self.resumed and epoch == self.resumed[0] else 0
        if self.data is not None:
            self.data.set_epoch(epoch, skip)
        self.epoch, self.step = epoch, skip
        values = getattr(self, "metric_values", [])
        if skip and values:  # the epoch's metrics so far (Keras has just reset them)
            variables = self.model.metrics_variables
            if [tuple(v.shape) for v in variables] != [np.shape(v) for v in values]:
                raise ValueError("The checkpoint's metrics differ from the model's: resume "
                                 "with the model compiled as it was when the checkpoint was "
                                 "written.")
            for variable, value in zip(variables, values):
                variable.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        last = self.data is not None and self.step == self.data.steps  # the epoch's end saves
        if self.every != "epoch" and self.step % self.every == 0 and not last:
            self.save(self.epoch, self.step)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.previous.setdefault(key, []).append(float(value))
        self.save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        if self.write and os.path.exists(self.path):
            os.remove(self.path)

    def save(self, epoch, step):
        if not self.write:
            return
        os.makedirs(self.directory, exist_ok=True)
        weights = self.model.get_weights()
        slots = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]
        stopper, best = None, []
        if self.stopper is not None:
            best_value = self.stopper.best
            stopper = {"best": None if best_value is None else float(best_value),
                       "wait": int(self.stopper.wait), "best_epoch": int(self.stopper.best_epoch)}
            best = self.stopper.best_weights or []
        strategy = self.model.distribute_strategy
        # This process's own values: reading a variable synchronised on read (a metric's, under a
        # strategy) is a collective operation, which the other workers, not saving, would not join.
        local = lambda v: keras.ops.convert_to_numpy(strategy.experimental_local_results(v)[0])  # noqa: E731
        seeds = [local(v) for v in _seed_states(self.model)]
        # Under several replicas each holds its part of the epoch's metrics: they start afresh.
        metrics = ([] if strategy.num_replicas_in_sync > 1
                   else [local(v) for v in self.model.metrics_variables])
        meta = {"epoch": epoch, "step": step, "weights": len(weights), "optimizer": len(slots),
                "best": len(best), "seeds": len(seeds), "metrics": len(metrics),
                "stopper": stopper, "history": self.previous}
        arrays = {f"w{i}": w for i, w in enumerate(weights)}
        arrays.update({f"s{i}": v for i, v in enumerate(seeds)})
        arrays.update({f"m{i}": v for i, v in enumerate(metrics)})
        arrays.update({f"o{i}": v for i, v in enumerate(slots)})
        arrays.update({f"b{i}": v for i, v in enumerate(best)})
        temporary = self.path + ".tmp.npz"
        np.savez(temporary, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(temporary, self.path)  # atomic: the old state stays whole until this


def _seed_states(model):
    """The state of the model's random seed generators (dropout's): its variables not weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def completed_steps(directory):
    """`(epoch, step)` of the saved state in `directory`, or `None`."""
    path = os.path.join(str(directory), STATE)
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
    return meta["epoch"], meta["step"]
