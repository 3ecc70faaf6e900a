"""The functional multi-task model that every zoo model returns."""

import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfmtl.data.arrays import check_columns, columns_of, features_from
from tfmtl.data.targets import (Targets, clear_data_errors, features_dataset, prepare_arrays,
                                prepare_dataset, raise_data_error)
from tfmtl.models.encoded import Encoder, is_encoded
from tfmtl.optimizers import Adam
from tfmtl.schema.names import internal_names
from tfmtl.schema.schema import MODEL_SCHEMA, Schema
from tfmtl.schema.task import Task
from tfmtl.serialization import register

# Keras warns when a dict input's key differs from its tensor's name: here the
# keys are the users' column names and the tensors carry their internal names.
_KEY_WARNING = "When providing `inputs` as a dict, all keys in the dict must match"


def default_losses(tasks, keys=None):
    """Per-task Keras losses by output key: log loss for binary, squared error otherwise.

    Masked rows carry sample weight 0, and the loss is the mean over the
    rows that count (`"mean_with_sample_weight"`), so a task's loss does not
    shrink with its mask's rate.
    """
    keys = keys or internal_names([t.name for t in tasks], "Task names")
    losses = {}
    for task in tasks:
        if task.loss_weight == 0:
            continue
        kind = (keras.losses.BinaryCrossentropy if task.kind == "binary"
                else keras.losses.MeanSquaredError)
        losses[keys[task.name]] = kind(reduction="mean_with_sample_weight",
                                       name=f"{keys[task.name]}_loss")
    return losses


def default_metrics(tasks, keys=None):
    """AUC and log loss for binary tasks, MSE for regression, per task (by output key)."""
    keys = keys or internal_names([t.name for t in tasks], "Task names")
    metrics = {}
    for task in tasks:
        if task.auxiliary:
            continue
        if task.kind == "binary":
            metrics[keys[task.name]] = [
                keras.metrics.AUC(name="auc"),
                keras.metrics.BinaryCrossentropy(name="logloss"),
            ]
        else:
            metrics[keys[task.name]] = [keras.metrics.MeanSquaredError(name="mse")]
    return metrics


@register
class MultiTaskModel(keras.Model):
    """A functional Keras model that knows its schema, tasks and facets.

    Every zoo model is one. It takes a dict of raw feature values keyed by
    the users' column names and has one output per task. Knowing its tasks,
    it compiles with no arguments (per-task losses, loss weights, masks and
    metrics) and trains from data in any of these forms, all turned into
    targets by `tfmtl.data.Targets`:

    - a DataFrame or dict of columns holding features, labels and masks:
      `model.fit(frame)`;
    - Keras' `(x, y[, sample_weight])`, `y` holding the user's label columns
      (derived outputs such as ESMM's CTCVR need no label of their own);
    - a `tf.data.Dataset` of dicts of columns, or of such tuples.

    `predict` returns a dict keyed by task name. Names: any column name
    works; Keras layers, metrics and `model(x)`'s outputs use the internal
    names of `model.names` (equal to the user's where a name is already an
    identifier).

    Args:
        inputs, outputs: as for a functional `keras.Model` (outputs keyed by
            the tasks' internal names).
        schema: `Schema` (or its config): the raw inputs.
        tasks: list of `Task` (or configs): the outputs and their targets.
        facets: a `tfmtl.mfh.FacetedTasks` (or its config) for models over
            faceted tasks: their rows' weights are made from it.
        loss_normalization: how the default losses add up. `"per_task"`
            (default): each task's loss is the mean over the rows it trains
            on, weighted by its loss weight. `"per_sample"` (MFH's): the sum
            of every task's weighted row losses over the number of (row,
            task) pairs that count in the batch, so each task weighs in
            proportion to its rows (`compute_loss`; the per-task losses are
            still logged as their means).
    """

    LOSS_NORMALIZATIONS = ("per_task", "per_sample")

    def __init__(self, *args, schema=None, tasks=None, facets=None, loss_normalization="per_task",
                 **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_KEY_WARNING)
            super().__init__(*args, **kwargs)
        # `keras.models.clone_model` rebuilds the graph without them: the clone
        # then trains with explicit Keras arguments only (as its compile config has).
        self.schema = None if schema is None else Schema.of(schema)
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks or ()]
        if facets is not None and not hasattr(facets, "partition_weights"):
            from tfmtl.mfh.facets import FacetedTasks

            facets = FacetedTasks.from_config(facets)
        self.facets = facets
        if loss_normalization not in self.LOSS_NORMALIZATIONS:
            raise ValueError(f"loss_normalization must be one of {self.LOSS_NORMALIZATIONS}. "
                             f"Received: {loss_normalization!r}")
        self.loss_normalization = loss_normalization
        self._default_loss = False
        self._weights = {}
        self._encoder = None
        self.output_keys = internal_names([t.name for t in self.tasks], "Task names")
        missing = [t.name for t in self.tasks if self.output_keys[t.name] not in self.output_names]
        if missing:
            raise ValueError(
                f"Tasks {missing} have no model output. Outputs: {sorted(self.output_names)}")
        self.targets = Targets(self.tasks, self.facets, self.output_keys) if self.tasks else None

    @property
    def names(self):
        """`{"features": {name: internal}, "outputs": {task: internal}}`."""
        return {
            "features": dict(self.schema.internal_names) if self.schema is not None else {},
            "outputs": dict(self.output_keys),
        }

    def get_config(self):
        config = super().get_config()
        schema = None if self.schema is None else self.schema.get_config()
        if schema is not None:  # the schema once, not once per layer
            for layer in config.get("layers", ()):
                if layer.get("config", {}).get("schema") == schema:
                    layer["config"]["schema"] = MODEL_SCHEMA
        config.update(
            schema=schema,
            tasks=[t.get_config() for t in self.tasks],
            facets=None if self.facets is None else self.facets.get_config(),
            loss_normalization=self.loss_normalization,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        schema = config.get("schema")
        with Schema.loading(None if schema is None else Schema.from_config(schema)):
            return super().from_config(config, custom_objects=custom_objects)

    def _require_tasks(self, what):
        if self.schema is None or not self.tasks:
            raise ValueError(
                f"{what} needs the model's schema and tasks, which this model does not have "
                "(a `keras.models.clone_model` copy?). Build it with `zoo.build`, or pass "
                "Keras' own arguments."
            )

    @property
    def loss_tasks(self):
        return [t for t in self.tasks if t.loss_weight > 0]

    def compile(self, optimizer="adam", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, jit_compile="auto", **kwargs):
        """Keras' `compile`, with the tasks' losses, weights and metrics by default.

        `jit_compile=True` compiles the training, evaluation and prediction
        steps with XLA: the string and integer lookups, which XLA cannot
        compile, then run in the input pipeline (`fit`, `evaluate` and
        `predict` encode their data: in-memory data once, a dataset batch
        by batch) and each step runs the numeric rest of the model
        (`tfmtl.models.encoded.Encoder`). `model(x)` on raw values and the
        exported SavedModel keep the lookups inside. `"auto"` (default) and
        `False` leave the lookups in the model and the steps uncompiled.

        `optimizer="adam"` (the default) is `tfmtl.optimizers.Adam`: Keras'
        Adam with one fused kernel per variable (the same updates, faster).
        """
        if isinstance(optimizer, str) and optimizer.lower() == "adam":
            optimizer = Adam()
        if (kwargs.get("auto_scale_loss", True) and self.dtype_policy.name != "mixed_float16"
                and any(layer.dtype_policy.name == "mixed_float16"
                        for layer in self._flatten_layers(include_self=False))):
            # Keras adds loss scaling when the model's own policy is mixed_float16; a model
            # reloaded under another global policy keeps its layers' float16 but not that,
            # so its optimizer (and the state saved with it) would lose the scaling.
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer,
                                                                name="loss_scale_optimizer")
        self._encoder = None
        if jit_compile is True and self.schema is not None and self.schema.fields:
            self._encoder = Encoder(self)
        self._default_loss = loss is None
        if loss is None:
            self._require_tasks("compile() without `loss`")
            loss = default_losses(self.tasks, self.output_keys)
        if loss_weights is None and isinstance(loss, dict) and self.tasks:
            loss_weights = {self.output_keys[t.name]: t.loss_weight for t in self.tasks
                            if self.output_keys[t.name] in loss}
        # The weights compute_loss's own sums use (the tasks', or the ones given here).
        self._weights = dict(loss_weights) if isinstance(loss_weights, dict) else {}
        if metrics is None and weighted_metrics is None and self.tasks:
            weighted_metrics = default_metrics(self.tasks, self.output_keys)
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                        metrics=metrics, weighted_metrics=weighted_metrics,
                        jit_compile=False if self._encoder else jit_compile, **kwargs)
        if self._encoder:
            # Keras refuses XLA for a model holding lookup layers; the steps run
            # only the numeric part, which XLA compiles.
            self._jit_compile = True
            self._compile_config.config["jit_compile"] = True

    def __call__(self, inputs, *args, **kwargs):
        if is_encoded(inputs):  # looked-up ids (`jit_compile=True`): the numeric part only
            if self._encoder is None:
                self._encoder = Encoder(self)
            return self._encoder(inputs, training=kwargs.get("training"))
        return super().__call__(inputs, *args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' loss, made exact for the default losses under data parallelism.

        Keras divides each replica's loss by the number of replicas, so the
        summed gradients are those of the mean of the replicas' means: for a
        masked task that is not the mean over the global batch's counting
        rows. With the default losses, each replica's weighted row losses
        are divided by the global batch's weights (summed across replicas),
        so `MirroredStrategy` and multi-worker training take the same steps
        as one worker with the same global batch.
        """
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if not self._default_loss or (self.loss_normalization != "per_sample" and replicas == 1):
            return loss
        total = (per_sample_loss if self.loss_normalization == "per_sample" else per_task_loss)(
            self.loss_tasks, self.output_keys, y, y_pred, sample_weight, self._weights)
        for extra in self.losses:  # FDN's orthogonality, AITM's constraint: as Keras adds them
            total = total + self._aggregate_additional_loss(extra)
        return total

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._default_loss:
            config = {**config, "tfmtl_default_loss": True}
        return config

    def compile_from_config(self, config):
        config = dict(config)
        default = config.pop("tfmtl_default_loss", False)
        arguments = keras.saving.deserialize_keras_object(config)
        if default and self.tasks:  # the losses compile() makes (and their normalisation)
            arguments.update(loss=None, loss_weights=None, metrics=None, weighted_metrics=None)
        self.compile(**arguments)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, sample_weight=None, validation_data=None, **kwargs):
        x, y, sample_weight = self.prepare(x, y, sample_weight)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        if validation_data is not None:
            validation_data = self._prepare_validation(validation_data)
        clear_data_errors()
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [FiniteCheck()]
        try:
            return super().fit(x, y, *args, sample_weight=sample_weight,
                               validation_data=validation_data, **kwargs)
        except (tf.errors.OpError, ValueError):
            raise_data_error()
            raise

    def evaluate(self, x=None, y=None, *args, sample_weight=None, **kwargs):
        x, y, sample_weight = self.prepare(x, y, sample_weight)
        clear_data_errors()
        from tfmtl import distribute

        if distribute.is_multi_worker(self.distribute_strategy):
            if not isinstance(x, tf.data.Dataset) or args:
                raise ValueError("Under MultiWorkerMirroredStrategy, evaluate a dataset of "
                                 "global batches, the same on every worker (`model.dataset("
                                 "frame, shuffle=False)`, a seeded `parquet_dataset`).")
            results = distribute.evaluate_multi_worker(self, x)
            return results if kwargs.get("return_dict") else [
                results[k] for k in ["loss"] + [k for k in results if k != "loss"]]
        try:
            return super().evaluate(x, y, *args, sample_weight=sample_weight, **kwargs)
        except (tf.errors.OpError, ValueError):
            raise_data_error()
            raise

    def predict(self, x, *args, **kwargs):
        """Scores by task name: `{task: (rows, 1)}`, from a frame, dict of columns or dataset."""
        if self.schema is not None:
            if isinstance(x, tf.data.Dataset):
                x = self._encoded(features_dataset(x, self.schema))
            elif _has_tensors(x):
                x = self._encoded(x)
            elif isinstance(x, (pd.DataFrame, dict)) and not is_encoded(x):
                columns = columns_of(x)
                check_columns(columns, self.schema)
                x = self._encoded(features_from(columns, self.schema))
        outputs = super().predict(x, *args, **kwargs)
        if not self.tasks or not isinstance(outputs, dict):
            return outputs
        names = {key: name for name, key in self.output_keys.items()}
        return {names.get(k, k): v for k, v in outputs.items()}

    def _prepare_validation(self, data):
        x, y, sample_weight = self.prepare(*data) if isinstance(data, tuple) else self.prepare(data)
        if y is None:
            return x
        return (x, y) if sample_weight is None else (x, y, sample_weight)

    def prepare(self, x, y=None, sample_weight=None):
        """Checks training data and turns it into Keras' `(x, y, sample_weight)`.

        See the class docstring for the accepted forms; `tfmtl.data.Targets`
        makes the targets. Raises `ValueError` with a clear message when a
        column is missing, a label is not finite where it counts, a binary
        label is not 0/1, a mask is outside [0, 1], or the data is empty.
        """
        if self.schema is None or not self.tasks:
            if isinstance(x, pd.DataFrame) or (isinstance(x, dict) and y is None):
                self._require_tasks("Training from columns")
            return x, y, sample_weight  # plain Keras, for a model without tasks
        if isinstance(x, tf.data.Dataset):
            if y is not None or sample_weight is not None:
                raise ValueError("With a dataset, give labels and weights inside it, not as "
                                 "`y` / `sample_weight`.")
            return self._encoded(prepare_dataset(x, self.schema, self.targets)), None, None
        if _has_tensors(x):
            return self._encoded(x), y, sample_weight
        if not isinstance(x, (pd.DataFrame, dict)) or is_encoded(x):
            return x, y, sample_weight
        x, y, sample_weight = prepare_arrays(x, y, sample_weight, self.schema, self.targets)
        return self._encoded(x), y, sample_weight

    def _encoded(self, x):
        """`x` (features, or a dataset of `(x, ...)`) with the lookups done, under `jit_compile=True`."""
        if self._encoder is None:
            return x
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if is_encoded(spec[0] if isinstance(spec, tuple) else spec):
                return x  # prepared already (`tfmtl.fit` prepares, then calls `fit`)
            return self._encoder.encode_dataset(x)
        if _has_tensors(x):
            return self._encoder.encode(x)
        return self._encoder.encode_arrays(x)

    def dataset(self, frame, batch_size=1024, shuffle=True, seed=None, labels=True):
        """`tfmtl.data.to_dataset` of `frame` with this model's schema and targets."""
        from tfmtl.data.pipeline import to_dataset

        self._require_tasks("dataset()")
        return to_dataset(frame, self.schema, self.targets if labels else None, batch_size,
                          shuffle, seed)

    def metrics_by_task(self, logs):
        """`{task: {metric: value}}` from Keras logs (`evaluate(..., return_dict=True)`).

        Keras names metrics `<output key>_<metric>`, and drops the prefix
        when the model has one output; this maps them back to task names.
        """
        results = {}
        keys = sorted(self.output_keys.items(), key=lambda item: -len(item[1]))
        single = len(self.outputs) == 1
        for name, value in logs.items():
            if name.startswith("val_"):
                continue
            for task, key in keys:
                if name.startswith(f"{key}_"):
                    results.setdefault(task, {})[name[len(key) + 1:]] = float(value)
                    break
            else:
                if single and name not in ("loss",) and self.tasks:
                    results.setdefault(self.tasks[0].name, {})[name] = float(value)
        return results


def per_sample_loss(tasks, keys, y, y_pred, sample_weight, weights=None):
    """`sum_{t, r} w_t * m_rt * l_t(r) / #{(r, t): m_rt > 0}` over a batch (MFH's normalisation).

    `l_t` is the log loss (binary) or squared error of task `t` on row `r`,
    `m_rt` its sample weight (mask, facet weight), `w_t` its loss weight (`weights` by
    output key, else the task's). Under data parallelism the batch is the global one: the
    count is summed across replicas and each replica adds its rows' share.
    """
    total, count = 0.0, 0.0
    for task in tasks:
        rows, weight = _row_losses(task, keys[task.name], y, y_pred, sample_weight)
        total += _weight(task, keys, weights) * tf.reduce_sum(weight * rows)
        count += tf.reduce_sum(tf.cast(weight > 0, rows.dtype))
    return tf.math.divide_no_nan(total, _global_sum(count))


def per_task_loss(tasks, keys, y, y_pred, sample_weight, weights=None):
    """`sum_t w_t * sum_r m_rt * l_t(r) / sum_r m_rt`: Keras' `"mean_with_sample_weight"`
    per task, the sums over the global batch when replicas share it (one all-reduce of every
    task's weight sum)."""
    sums, counts = [], []
    for task in tasks:
        rows, weight = _row_losses(task, keys[task.name], y, y_pred, sample_weight)
        sums.append(_weight(task, keys, weights) * tf.reduce_sum(weight * rows))
        counts.append(tf.reduce_sum(weight))
    return tf.reduce_sum(tf.math.divide_no_nan(tf.stack(sums), _global_sum(tf.stack(counts))))


def _weight(task, keys, weights):
    return (weights or {}).get(keys[task.name], task.loss_weight)


def _row_losses(task, key, y, y_pred, sample_weight):
    target = tf.cast(y[key], y_pred[key].dtype)
    if task.kind == "binary":
        rows = keras.losses.binary_crossentropy(target, y_pred[key])
    else:
        rows = tf.reduce_mean(tf.square(target - y_pred[key]), axis=-1)
    weight = (tf.ones_like(rows) if sample_weight is None or sample_weight.get(key) is None
              else tf.cast(tf.reshape(sample_weight[key], tf.shape(rows)), rows.dtype))
    return rows, weight


def _global_sum(value):
    """`value` summed over the replicas of a distribution strategy (itself without one)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return tf.stop_gradient(context.all_reduce("sum", value))


class TrainingDiverged(ValueError):
    """The loss or a weight became NaN or infinite during training."""


class FiniteCheck(keras.callbacks.Callback):
    """Stops training with `TrainingDiverged` once the loss or a weight is not finite.

    Checked after every epoch (no cost per step): the message names the
    epoch, the first weights that broke and what usually helps.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        broken = [k for k, v in logs.items() if isinstance(v, (int, float)) and not np.isfinite(v)]
        weights = [v.path for v in self.model.weights
                   if "float" in str(v.dtype) and not np.isfinite(keras.ops.convert_to_numpy(v)).all()]
        if broken or weights:
            self.model.stop_training = True
            raise TrainingDiverged(
                f"Training diverged in epoch {epoch + 1}: "
                + (f"{broken} became NaN/inf" if broken else "the loss stayed finite")
                + (f"; {len(weights)} weight(s) are NaN/inf, e.g. {weights[:3]}" if weights else "")
                + ". Lower the learning rate, check the features' scales, or clip gradients.")


def _has_tensors(data):
    return isinstance(data, dict) and any(tf.is_tensor(v) for v in data.values())
