"""The functional multi-task model that every zoo model returns."""

import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfmtl.data.arrays import columns_of, features_from, targets_from, validate
from tfmtl.schema.schema import Schema
from tfmtl.schema.task import Task
from tfmtl.serialization import register


def default_losses(tasks):
    """Per-task Keras losses: log loss for binary, squared error otherwise.

    Masked rows carry sample weight 0, and the loss is the mean over the
    rows that count (`"mean_with_sample_weight"`), so a task's loss does not
    shrink with its mask's rate.
    """
    losses = {}
    for task in tasks:
        if task.loss_weight == 0:
            continue
        if task.kind == "binary":
            losses[task.name] = keras.losses.BinaryCrossentropy(
                reduction="mean_with_sample_weight", name=f"{task.name}_loss"
            )
        else:
            losses[task.name] = keras.losses.MeanSquaredError(
                reduction="mean_with_sample_weight", name=f"{task.name}_loss"
            )
    return losses


def default_metrics(tasks):
    """AUC and log loss for binary tasks, MSE for regression, per task."""
    metrics = {}
    for task in tasks:
        if task.auxiliary:
            continue
        if task.kind == "binary":
            metrics[task.name] = [
                keras.metrics.AUC(name="auc"),
                keras.metrics.BinaryCrossentropy(name="logloss"),
            ]
        else:
            metrics[task.name] = [keras.metrics.MeanSquaredError(name="mse")]
    return metrics


@register
class MultiTaskModel(keras.Model):
    """A functional Keras model that knows its schema and tasks.

    Every zoo model is one. It takes a dict of raw feature values and
    returns a dict of `(batch, 1)` predictions keyed by task name. Knowing
    its tasks, it compiles with no arguments (per-task losses, loss
    weights, masks and metrics) and trains from data in any of these
    forms:

    - a DataFrame or dict of column arrays holding feature, label and mask
      columns: `model.fit(frame)`;
    - Keras' own `(x, y, sample_weight)`, with `y` and `sample_weight`
      dicts keyed by task name (mask columns left in `x` are applied);
    - a `tf.data.Dataset` of such tuples, or of single dicts of columns.

    In-memory data is checked before training starts (`tfmtl.data.validate`).

    Args:
        inputs, outputs: as for a functional `keras.Model`.
        schema: `Schema` (or its config): the raw inputs.
        tasks: list of `Task` (or configs): the outputs and their targets.
    """

    def __init__(self, *args, schema=None, tasks=None, **kwargs):
        super().__init__(*args, **kwargs)
        # `keras.models.clone_model` rebuilds the graph without them: the clone
        # then trains with explicit Keras arguments only (as its compile config has).
        self.schema = (
            schema if isinstance(schema, Schema) or schema is None else Schema.from_config(schema)
        )
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks or ()]
        outputs = set(self.output_names)
        missing = [t.name for t in self.tasks if t.name not in outputs]
        if missing:
            raise ValueError(f"Tasks {missing} have no model output. Outputs: {sorted(outputs)}")

    def get_config(self):
        config = super().get_config()
        config.update(
            schema=None if self.schema is None else self.schema.get_config(),
            tasks=[t.get_config() for t in self.tasks],
        )
        return config

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

    def compile(
        self,
        optimizer="adam",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        **kwargs,
    ):
        if loss is None:
            self._require_tasks("compile() without `loss`")
            loss = default_losses(self.tasks)
        if loss_weights is None and isinstance(loss, dict):
            loss_weights = {t.name: t.loss_weight for t in self.tasks if t.name in loss}
        if metrics is None and weighted_metrics is None and self.tasks:
            weighted_metrics = default_metrics(self.tasks)
        super().compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=loss_weights,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, sample_weight=None, validation_data=None, **kwargs):
        x, y, sample_weight = self.prepare(x, y, sample_weight)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        if validation_data is not None:
            validation_data = self._prepare_validation(validation_data)
        return super().fit(
            x, y, *args, sample_weight=sample_weight, validation_data=validation_data, **kwargs
        )

    def evaluate(self, x=None, y=None, *args, sample_weight=None, **kwargs):
        x, y, sample_weight = self.prepare(x, y, sample_weight)
        return super().evaluate(x, y, *args, sample_weight=sample_weight, **kwargs)

    def predict(self, x, *args, **kwargs):
        if isinstance(x, (pd.DataFrame, dict)) and not _has_tensors(x) and self.schema is not None:
            validate(x, self.schema, self.tasks, labels=False)
            x = features_from(x, self.schema)
        return super().predict(x, *args, **kwargs)

    def _prepare_validation(self, data):
        x, y, sample_weight = self.prepare(*data) if isinstance(data, tuple) else self.prepare(data)
        if y is None:
            return x
        return (x, y) if sample_weight is None else (x, y, sample_weight)

    def prepare(self, x, y=None, sample_weight=None):
        """Checks training data and splits it into `(x, y, sample_weight)`.

        See the class docstring for the accepted forms. Raises `ValueError`
        with a clear message when a column is missing, labels are not
        finite, binary labels are not 0/1, or the data is empty.
        """
        if isinstance(x, tf.data.Dataset):
            if self.schema is None:
                return x, y, sample_weight
            return self._prepare_dataset(x), y, sample_weight
        if not isinstance(x, (pd.DataFrame, dict)) or _has_tensors(x):
            return x, y, sample_weight
        if self.schema is None and y is not None:
            return x, y, sample_weight  # plain Keras, for a model without tasks
        self._require_tasks("Training from columns")
        if y is None:
            validate(x, self.schema, self.tasks)
            y, sample_weight = targets_from(x, self.tasks)
            return features_from(x, self.schema), y, sample_weight
        validate(x, self.schema, self.tasks, labels=False)
        if isinstance(y, dict):
            self._check_targets(x, y)
            y = {k: _column(v) for k, v in y.items()}
            if sample_weight is None:
                sample_weight = self._masks_in(x, y)
        return features_from(x, self.schema), y, sample_weight

    def _check_targets(self, x, y):
        missing = [t.name for t in self.loss_tasks if t.name not in y]
        if missing:
            raise ValueError(f"`y` has no labels for tasks {missing}. Keys: {sorted(y)}")
        columns = columns_of(x)
        frame = {**columns, **{f"__label_{k}": np.asarray(v) for k, v in y.items()}}
        tasks = [
            Task(t.name, t.kind, label=f"__label_{t.name}",
                 mask=t.mask if t.mask in columns else None)
            for t in self.tasks if t.name in y
        ]
        validate(frame, self.schema, tasks)

    def _masks_in(self, x, y):
        columns = columns_of(x)
        masked = [t for t in self.tasks if t.mask and t.name in y]
        absent = [t.name for t in masked if t.mask not in columns]
        if absent:
            warnings.warn(
                f"Tasks {absent} have mask columns that are not in `x` and no "
                "`sample_weight` was given: their losses count every row.",
                stacklevel=3,
            )
        present = [t for t in masked if t.mask in columns]
        if not present:
            return None
        n = len(next(iter(columns.values())))
        return {
            t.name: (
                np.asarray(columns[t.mask], "float32") if t in present else np.ones(n, "float32")
            )
            for t in self.tasks if t.name in y
        }

    def _prepare_dataset(self, dataset):
        spec = dataset.element_spec
        if not isinstance(spec, dict):
            first = spec[0] if isinstance(spec, tuple) else spec
            if isinstance(first, dict):
                missing = [n for n in self.schema.names if n not in first]
                if missing:
                    raise ValueError(f"Feature column(s) missing from the dataset: {missing}")
            return dataset
        missing = [n for n in self.schema.names if n not in spec]
        if missing:
            raise ValueError(f"Feature column(s) missing from the dataset: {missing}")
        missing = {c: t.name for t in self.tasks for c in t.columns if c not in spec}
        if missing:
            described = ", ".join(f"{c!r} (task {t!r})" for c, t in missing.items())
            raise ValueError(f"Label/mask column(s) missing from the dataset: {described}")
        names, tasks = self.schema.names, self.tasks
        any_mask = any(t.mask for t in tasks)

        def split(row):
            x = {n: row[n] for n in names}
            y, weights = {}, {}
            for task in tasks:
                label = tf.ones_like(tf.cast(row[task.label_columns[0]], "float32"))
                for column in task.label_columns:
                    label = label * tf.cast(row[column], "float32")
                mask = (
                    tf.cast(row[task.mask], "float32") if task.mask else tf.ones_like(label)
                )
                y[task.name] = tf.where(mask > 0, label, tf.zeros_like(label))[..., None]
                weights[task.name] = mask
            return (x, y, weights) if any_mask else (x, y)

        return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE)


def _column(values):
    values = np.asarray(values, dtype="float32")
    return values[:, None] if values.ndim == 1 else values


def _has_tensors(data):
    return isinstance(data, dict) and any(tf.is_tensor(v) for v in data.values())
