"""Training on several devices or hosts with TensorFlow's own engine, `tf.distribute`.

Build the model inside the strategy's scope, then train with `tfmtl.fit`
as usual: it reads the strategy from the model::

    strategy = tfmtl.distribute.strategy("multi-worker")   # reads TF_CONFIG
    with strategy.scope():
        model = zoo.build("mmoe", schema, tasks)
    tfmtl.fit(model, frame, batch_size=4096)                # the global batch

- `MirroredStrategy` (several GPUs on one host): `tfmtl.fit` is Keras'
  `model.fit`, which supports it.
- `MultiWorkerMirroredStrategy` (several hosts, `TF_CONFIG`): Keras 3's
  `model.fit` fails under it (keras-team/keras#20585), so `tfmtl.fit` runs
  `fit_multi_worker`: the model's own `train_step` / `test_step` (its
  losses, masks, derived targets, auxiliary losses and metrics) on
  `strategy.run`, with Keras' callbacks, history, early stopping and
  progress bar.

Global-batch semantics: `batch_size` is the global batch. Every worker
builds the same global batches (the same rows in the same order: each
epoch's order is a function of the seed and the epoch, `EpochData`), and
replica `r` of `R` trains on rows `[r * b / R, (r + 1) * b / R)` of each
(sharding by data, exact). The default losses are normalised over the global
batch (`MultiTaskModel.compute_loss`), and gradients are summed across
replicas, so `R` workers take the same steps as one worker with the same
global batch (equal up to float summation order; tested).
"""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi-worker")


def strategy(name="default"):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: `"default"` (no distribution), `"mirrored"` (every local GPU,
            or the CPU) or `"multi-worker"` (the cluster in the `TF_CONFIG`
            environment variable, which Kubernetes jobs, cloud trainers and
            Ray Train's `TensorflowTrainer` set for each worker).
    """
    if name in (None, "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        config = _tf_config()
        if not config.get("cluster"):
            raise ValueError("--strategy multi-worker reads the cluster from the TF_CONFIG "
                             "environment variable, which is not set: e.g. TF_CONFIG='{\"cluster\":"
                             " {\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": "
                             "{\"type\": \"worker\", \"index\": 0}}' on the first host.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}. Received: {name!r}")


def is_multi_worker(distribution):
    return isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(distribution=None):
    """Whether this process writes checkpoints and exports: under a multi-worker strategy the
    one its cluster resolver names (the `chief` task, else worker 0); otherwise always."""
    distribution = distribution or tf.distribute.get_strategy()
    if not is_multi_worker(distribution):
        return True
    return bool(distribution.extended.should_checkpoint)


def _tf_config():
    text = os.environ.get("TF_CONFIG", "")
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None


def replica_batches(distribution, global_batches):
    """A distributed dataset: each replica's slice of every global batch.

    `global_batches` is a dataset (or a function returning one, called
    once per worker) of global batches, the same on every worker; replica
    `r` of `R` gets rows `[floor(r * n / R), floor((r + 1) * n / R))` of
    each batch of `n` rows: `n / R` when `R` divides the batch size, and
    as even as can be otherwise (the loss is normalised over the global
    batch, so uneven slices train the same).
    """
    replicas = distribution.num_replicas_in_sync

    def input_fn(context):
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        data = global_batches() if callable(global_batches) else global_batches

        def slices(*batch):
            batch = batch[0] if len(batch) == 1 else batch
            rows = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]

            def part(r):  # rows [r * n / R, (r + 1) * n / R): even in a short last batch
                start, end = r * rows // replicas, (r + 1) * rows // replicas
                return tf.nest.map_structure(lambda t: t[start:end], batch)

            return tf.data.Dataset.range(first, first + local).map(part)

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return data.flat_map(slices).with_options(options).prefetch(tf.data.AUTOTUNE)

    return distribution.distribute_datasets_from_function(input_fn)


class GlobalBatches:
    """A dataset of global batches as multi-worker training reads it (like `EpochData`).

    Every worker must build the same batches in the same order: a
    `tfmtl.data.parquet_dataset` with a `seed`, or any deterministic
    dataset. The batches are not checked against each other across workers.
    """

    def __init__(self, dataset):
        self._dataset = dataset
        cardinality = int(dataset.cardinality())
        self.steps = cardinality if cardinality >= 0 else None

    def dataset(self, skip=0):
        if skip:
            raise ValueError("A dataset resumes at epoch boundaries only.")
        return self._dataset

    def set_epoch(self, epoch, skip=0):
        if skip:
            raise ValueError("A dataset resumes at epoch boundaries only.")


def fit_multi_worker(model, epoch_data, validation, epochs, callbacks, verbose, initial_epoch=0,
                     skip=0):
    """`model.fit` for `MultiWorkerMirroredStrategy`: the model's steps on `strategy.run`.

    Called by `tfmtl.fit` (use that). `epoch_data` is the `EpochData` of the
    training rows (global batches of `batch_size`) or the `GlobalBatches` of
    a dataset, `validation` a dataset of global validation batches or
    `None`; `skip` the batches of epoch `initial_epoch` already trained
    (a run resumed mid-epoch). Returns Keras' `History`.
    """
    distribution = model.distribute_strategy
    with distribution.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    @tf.function(reduce_retracing=True)
    def train(batch):
        return distribution.run(model.train_step, args=(batch,))

    test = _test_function(model)
    validation_data = (None if validation is None
                       else replica_batches(distribution, validation))
    same_on_every_worker(distribution, [initial_epoch, int(skip)],
                         "the epoch to resume from (is checkpoint_dir on storage every worker "
                         "reads?)")
    same_on_every_worker(distribution, [_fingerprint(epoch_data.dataset(skip))],
                         "the first global batch (build the data the same way on every worker: "
                         "a seeded dataset, the same files)")
    steps = epoch_data.steps
    callbacks = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
        steps=steps, model=model)
    model.stop_training = False
    callbacks.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        dataset = replica_batches(
            distribution,
            lambda: epoch_data.dataset(skip if epoch == initial_epoch else 0))
        trained = 0
        for step, batch in enumerate(dataset):
            callbacks.on_train_batch_begin(step)
            # The progress bar's running values are this worker's first replica's (no
            # collective op per step); the epoch's logs below are over every row.
            logs = {k: float(distribution.experimental_local_results(v)[0])
                    for k, v in train(batch).items()}
            callbacks.on_train_batch_end(step, logs)
            trained += 1
            if model.stop_training:
                break
        # Across replicas: the epoch's metrics over every row (none if no step ran).
        logs = _results(model) if trained else {}
        if validation_data is not None:
            logs.update({f"val_{k}": v for k, v in _evaluate(model, validation_data, test).items()})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)  # as Keras' fit ends (EMA)
    callbacks.on_train_end(logs)
    return model.history


def same_on_every_worker(distribution, values, what):
    """Raises `ValueError` on every worker when `values` (numbers) differ between workers:
    a mismatch would otherwise leave the workers' collective ops waiting for each other."""
    local = tf.constant([[float(v) for v in values]], tf.float64)
    every = distribution.gather(distribution.run(lambda: tf.identity(local)), axis=0).numpy()
    if not (every == every[:1]).all():
        raise ValueError(f"The workers differ in {what}: this worker has {values}; all "
                         f"workers: {every.tolist()}.")


def _fingerprint(dataset):
    """A number that differs, but by chance, between two different first batches."""
    total = tf.constant(0.0, tf.float64)
    for batch in dataset.take(1):
        for i, tensor in enumerate(tf.nest.flatten(batch)):
            if tensor.dtype == tf.string:
                tensor = tf.strings.to_hash_bucket_fast(tensor, 1 << 20)
            values = tf.reshape(tf.cast(tensor, tf.float64), [-1])
            position = tf.range(1, tf.size(values) + 1, dtype=tf.float64)
            total += tf.reduce_sum(values * tf.math.sin(position + float(i)))
    return float(total)


def evaluate_multi_worker(model, dataset):
    """`model.evaluate` under `MultiWorkerMirroredStrategy` (Keras 3's fails there too): the
    model's `test_step` on `strategy.run` over each replica's slice of `dataset`'s batches
    (the same on every worker); the metrics over every row, as a dict."""
    distribution = model.distribute_strategy
    return _evaluate(model, replica_batches(distribution, dataset), _test_function(model))


def _test_function(model):
    distribution = model.distribute_strategy

    @tf.function(reduce_retracing=True)
    def test(batch):
        distribution.run(model.test_step, args=(batch,))

    return test


def _evaluate(model, batches, test):
    model.reset_metrics()
    for batch in batches:
        test(batch)
    return _results(model)


def _results(model):
    return {k: float(v) for k, v in model.get_metrics_result().items()}
