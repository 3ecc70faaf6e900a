"""The one place where raw label and mask columns become per-output targets.

A model declares what each output needs (its `Task`s: label columns whose
product is the label, a mask column; its `FacetedTasks`: the weight of each
row partition in each facet task). `Targets` turns the user's columns into
the Keras `(y, sample_weight)` of the model's outputs with one rule and one
validation, written once in TensorFlow ops, for every form of data:

- a DataFrame or dict of columns holding features, labels and masks;
- Keras' `(x, y[, sample_weight])`, `y` holding the user's label columns
  (a dict by column name, or one array when the model reads one label
  column); `sample_weight` a dict by task name or one array for all tasks,
  multiplied into the masks;
- a `tf.data.Dataset` of dicts of columns, or of such `(x, y[, weights])`
  tuples.

In-memory data is checked whole before training starts; a dataset is checked
batch by batch as it streams (the first bad batch stops training with the
same message). The model never asks for a label of an output it derives
(ESMM's CTCVR, FDN's auxiliary heads, MFH's group tasks and routed outputs).
"""

import numpy as np
import pandas as pd
import tensorflow as tf

from tfmtl.schema.names import internal_names

_EXAMPLES = 3


class Targets:
    """The labels and sample weights of a model's outputs, from raw columns.

    For task `t` with label columns `c_1 ... c_m` and mask column `w` (if
    any), a row's label is `c_1 * ... * c_m` (0 as soon as a factor is 0, so
    a later factor may be NaN there: CVR is undefined on unclicked rows),
    and its weight is `w`, times the weight of the row's facet partition in
    `t` (MFH), times the user's `sample_weight`. Labels on rows of weight 0
    are set to 0, so a NaN never reaches a loss.

    Args:
        tasks: list of `Task`.
        facets: a `tfmtl.mfh.FacetedTasks` or `None`.
        keys: dict of task name to the Keras output key. Defaults to the
            internal names of the task names.

    Example:

    >>> from tfmtl.schema import Task
    >>> targets = Targets([Task("click"), Task("ctcvr", label=("click", "buy"))])
    >>> y, weights = targets({"click": [1, 0, 1], "buy": [1, np.nan, 0]})
    >>> y["ctcvr"].numpy()[:, 0].tolist(), weights
    ([1.0, 0.0, 0.0], None)
    """

    def __init__(self, tasks, facets=None, keys=None):
        self.tasks = list(tasks)
        self.facets = facets
        self.keys = dict(keys) if keys is not None else internal_names(
            [t.name for t in self.tasks], "Task names")
        self.partition_weights = {
            t.name: (facets.partition_weights(t.name) if facets is not None else None)
            for t in self.tasks
        }
        self.weighted = any(
            t.mask or self.partition_weights[t.name] is not None for t in self.tasks)

    @property
    def label_columns(self):
        """Every label column, once, in task order."""
        return _unique(c for t in self.tasks for c in t.label_columns)

    @property
    def mask_columns(self):
        return _unique(t.mask for t in self.tasks if t.mask)

    @property
    def facet_columns(self):
        if not any(w is not None for w in self.partition_weights.values()):
            return []
        return _unique(f.column for f in self.facets.facets)

    @property
    def columns(self):
        """The label and mask columns the rule reads (facet columns are features)."""
        return _unique(self.label_columns + self.mask_columns)

    def owners(self):
        """`{column: task name}`: the first task reading each label or mask column."""
        owners = {}
        for task in self.tasks:
            for column in task.columns:
                owners.setdefault(column, task.name)
        return owners

    # The rule -------------------------------------------------------------

    def __call__(self, columns, sample_weight=None):
        """`(y, sample_weight)` dicts by output key, from a dict of columns.

        TensorFlow ops: runs eagerly on whole columns and inside `tf.data`.
        `y[key]` is `(rows, 1)` float32; `sample_weight[key]` `(rows,)`, or
        `None` when no task is weighted.
        """
        y, weights = {}, {}
        partition = self._partition(columns)
        extra = _weights_by_task(sample_weight, self.tasks)
        for task in self.tasks:
            label, _ = self._label(task, columns)
            weight = self._weight(task, columns, partition)
            if extra is not None:
                weight = weight * tf.cast(tf.reshape(extra[task.name], [-1]), "float32")
            key = self.keys[task.name]
            y[key] = tf.where(weight > 0, label, tf.zeros_like(label))[:, None]
            weights[key] = weight
        return y, (weights if self.weighted or extra is not None else None)

    def _partition(self, columns):
        if not self.facet_columns:
            return None
        return self.facets.partition(columns)

    def _label(self, task, columns):
        """The label and, per label column, the rows where it matters."""
        label, matters = None, []
        for column in task.label_columns:
            values = _float_tensor(columns[column], column)
            if label is None:
                matters.append(tf.ones_like(values, dtype=tf.bool))
                label = values
            else:
                matters.append(tf.not_equal(label, 0.0))
                label = tf.where(tf.equal(label, 0.0), tf.zeros_like(label), label * values)
        return label, matters

    def _weight(self, task, columns, partition):
        rows = tf.shape(_float_tensor(columns[task.label_columns[0]], task.label_columns[0]))[0]
        weight = tf.ones([rows], "float32")
        if task.mask:
            weight = weight * _float_tensor(columns[task.mask], task.mask)
        table = self.partition_weights[task.name]
        if table is not None:
            weight = weight * tf.gather(tf.constant(table, "float32"), partition)
        return weight

    # The validation -------------------------------------------------------

    def problems(self, columns):
        """Counts of bad values, as tensors: `[(kind, task, column, count, examples)]`.

        Kinds: `"mask"` (a mask outside [0, 1], NaN included), `"finite"` (a
        NaN/inf label on a row that counts), `"binary"` (a binary task's
        label that is not 0 or 1 on a row that counts).
        """
        found = []
        partition = self._partition(columns)
        for task in self.tasks:
            if task.mask:
                values = _float_tensor(columns[task.mask], task.mask)
                bad = tf.logical_not((values >= 0.0) & (values <= 1.0))
                found.append(("mask", task.name, task.mask, _count(bad), _examples(values, bad)))
            weight = self._weight(task, columns, partition)
            counts = tf.logical_and(weight > 0, tf.math.is_finite(weight))
            _, matters = self._label(task, columns)
            for column, where in zip(task.label_columns, matters):
                values = _float_tensor(columns[column], column)
                keep = counts & where
                bad = keep & tf.logical_not(tf.math.is_finite(values))
                found.append(("finite", task.name, column, _count(bad), _examples(values, bad)))
                if task.kind == "binary":
                    bad = keep & tf.math.is_finite(values) & tf.logical_not(
                        tf.equal(values, 0.0) | tf.equal(values, 1.0))
                    found.append(("binary", task.name, column, _count(bad),
                                  _examples(values, bad)))
        return found

    def validate(self, columns):
        """Raises `ValueError` naming the first problem of in-memory columns."""
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise ValueError(missing_message(missing, self.owners()))
        for kind, task, column, count, examples in self.problems(columns):
            count = int(count)
            if count:
                raise ValueError(problem_message(kind, task, column, count,
                                                 np.asarray(examples).tolist()))


def missing_message(missing, owners, where="the data"):
    described = ", ".join(f"{c!r} (task {owners[c]!r})" for c in missing)
    return f"Label/mask column(s) missing from {where}: {described}"


def problem_message(kind, task, column, count, examples):
    """The one wording of each validation error, for every form of data."""
    if kind == "mask":
        return (f"Task {task!r}: mask column {column!r} has {count} value(s) outside [0, 1] "
                f"(e.g. {examples}).")
    if kind == "finite":
        return (f"Task {task!r}: label column {column!r} has {count} NaN/inf value(s) on "
                "rows that count.")
    return (f"Task {task!r} is binary but label column {column!r} has {count} value(s) that "
            f"are not 0 or 1 (e.g. {examples}).")


def _count(bad):
    return tf.reduce_sum(tf.cast(bad, "int64"))


def _examples(values, bad):
    """Up to 3 distinct bad values, smallest first (NaN last)."""
    picked = tf.unique(tf.boolean_mask(values, bad)).y
    picked = tf.sort(tf.where(tf.math.is_nan(picked), tf.fill(tf.shape(picked), np.inf), picked))
    return picked[:_EXAMPLES]


def _float_tensor(values, column):
    if tf.is_tensor(values):
        if values.dtype == tf.string or values.dtype == tf.bool:
            if values.dtype == tf.bool:
                return tf.cast(values, "float32")
            raise ValueError(f"Column {column!r} must be numeric. Received a string column.")
        return tf.reshape(tf.cast(values, "float32"), [-1])
    return tf.constant(_float_array(values, column).astype("float32"))


def _float_array(values, column):
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype="float64", na_value=np.nan) if _numeric(values) else \
            values.to_numpy()
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        sample = list(np.asarray(values, dtype=object).reshape(-1)[:3])
        raise ValueError(
            f"Column {column!r} must be numeric. Received values such as {sample}") from None


def _numeric(series):
    return pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)


def _weights_by_task(sample_weight, tasks):
    if sample_weight is None:
        return None
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - {t.name for t in tasks})
        if unknown:
            raise ValueError(f"sample_weight names unknown tasks {unknown}. "
                             f"Tasks: {[t.name for t in tasks]}")
        return {t.name: sample_weight.get(t.name, 1.0) for t in tasks}
    return {t.name: sample_weight for t in tasks}


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# The forms of data -----------------------------------------------------------


def label_columns_from(y, targets):
    """The user's label columns from Keras' `y`, as a dict of column name to values.

    `y` is a dict keyed by label (or mask) column names — a key equal to a
    task name whose label is another column is taken as that column — or one
    array when the model reads exactly one label column.
    """
    if y is None:
        return {}
    if not isinstance(y, dict):
        if len(targets.label_columns) != 1:
            raise ValueError(
                "`y` must be a dict of label columns for a model that reads several: "
                f"{targets.label_columns}. Received: {type(y).__name__}")
        return {targets.label_columns[0]: y}
    by_task = {t.name: t.label for t in targets.tasks if isinstance(t.label, str)}
    known = set(targets.columns)
    columns = {}
    for key, values in y.items():
        column = key if key in known else by_task.get(key, key)
        if column not in known:
            derived = {t.name: t.label_columns for t in targets.tasks}
            hint = (f" ({key!r} is derived from {list(derived[key])}: give those columns)"
                    if key in derived else "")
            raise ValueError(f"`y` has a key that is no label or mask column: {key!r}{hint}. "
                             f"Label and mask columns: {targets.columns}")
        columns[column] = values
    return columns


def prepare_arrays(x, y, sample_weight, schema, targets):
    """In-memory data to Keras `(x, y, sample_weight)` of NumPy arrays, checked whole.

    Args:
        x: DataFrame or dict of columns (features, and labels and masks
            unless `y` holds them).
        y: `None`, or the user's label columns (see `label_columns_from`).
        sample_weight: `None`, a dict by task name, or one array.
        schema: the model's `Schema`.
        targets: the model's `Targets`.

    Raises:
        ValueError: naming the first problem (see `Targets.validate`).
    """
    from tfmtl.data.arrays import check_columns, columns_of, features_from

    columns = columns_of(x)
    labels = {str(k): v for k, v in label_columns_from(y, targets).items()}
    columns.update({k: np.asarray(v) for k, v in labels.items()})
    check_columns(columns, schema)
    targets.validate(columns)
    features = features_from(columns, schema)
    warn_non_finite(features, schema)
    weights = None
    if sample_weight is not None:
        weights = ({k: np.asarray(v, "float32") for k, v in sample_weight.items()}
                   if isinstance(sample_weight, dict) else np.asarray(sample_weight, "float32"))
    y, weights = targets(columns, weights)
    return features, _numpy(y), _numpy(weights)


def warn_non_finite(features, schema):
    """Warns, naming the column and counting, about inf values in dense features.

    The model treats them as missing (the mean), as it does at serving time.
    """
    import warnings

    for name in schema.dense_names:
        values = features[name]
        infinite = int(np.isinf(values).sum()) if isinstance(values, np.ndarray) else 0
        if infinite:
            warnings.warn(f"Feature {name!r} has {infinite} inf value(s) in {len(values)} rows: "
                          "the model treats them as missing (the mean).", stacklevel=4)


def targets_from(data, tasks, facets=None):
    """`(y, sample_weight)` of NumPy arrays by output key from a frame or dict of columns.

    `Targets(tasks, facets)` applied to in-memory data, after validation.
    """
    from tfmtl.data.arrays import columns_of

    targets = Targets(tasks, facets)
    columns = columns_of(data)
    targets.validate(columns)
    y, weights = targets(columns)
    return _numpy(y), _numpy(weights)


def prepare_dataset(dataset, schema, targets):
    """A dataset of raw columns mapped to `(x, y[, sample_weight])` batches.

    Elements may be dicts of columns (features, labels, masks) or tuples
    `(x, y)` / `(x, y, sample_weight)` with `y` the user's label columns. A
    dataset whose targets are made already (`is_prepared`: `to_dataset`,
    `MultiTaskModel.dataset`) passes unchanged.
    Missing columns are named at once; bad values stop iteration at the
    first bad batch with the message in-memory data gets (`ValueError` from
    `MultiTaskModel.fit`/`evaluate`, see `raise_data_error`).
    """
    spec = dataset.element_spec
    if is_prepared(spec, targets):
        return dataset
    if isinstance(spec, tuple):
        if not spec or not isinstance(spec[0], dict) or len(spec) > 3:
            raise ValueError("A dataset of tuples must hold (x, y) or (x, y, sample_weight) "
                             f"with x a dict of columns. Received: {spec}")
        y_spec = spec[1] if len(spec) > 1 else None
        names = dict(spec[0])
        if y_spec is not None:
            names.update(label_columns_from(y_spec, targets))
    elif isinstance(spec, dict):
        names = dict(spec)
    else:
        raise ValueError("A dataset for a tfmtl model must hold dicts of columns, or "
                         f"(x, y[, sample_weight]) tuples of them. Received: {spec}")
    missing = [n for n in schema.names if n not in names]
    if missing:
        raise ValueError(f"Feature column(s) missing from the dataset: {missing}")
    missing = [c for c in targets.columns if c not in names]
    if missing:
        raise ValueError(missing_message(missing, targets.owners(), "the dataset"))
    for column in targets.columns:
        if names[column].dtype == tf.string:
            raise ValueError(f"Column {column!r} must be numeric. Received a string column.")

    def split(*element):
        if len(element) == 1:
            columns, weights = dict(element[0]), None
        else:
            columns = dict(element[0])
            columns.update(label_columns_from(element[1], targets))
            weights = element[2] if len(element) > 2 else None
        features = {f.name: _feature_tensor(columns[f.name], f) for f in schema}
        y, sample_weight = targets(columns, weights)
        ok = _checked(targets.problems(columns))
        with tf.control_dependencies([ok]):
            y = {k: tf.identity(v) for k, v in y.items()}
        return (features, y) if sample_weight is None else (features, y, sample_weight)

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def is_prepared(spec, targets):
    """Whether a dataset already holds targets: `(x, y[, weights])`, `y` keyed by the outputs, `(batch, 1)`.

    That is what `to_dataset` and `MultiTaskModel.dataset` yield; user
    label columns are `(batch,)` and keyed by column.
    """
    if not isinstance(spec, tuple) or len(spec) < 2 or not isinstance(spec[1], dict):
        return False
    outputs = set(targets.keys.values())
    y = spec[1]
    return bool(y) and set(y) <= outputs and all(
        s.shape.rank == 2 and s.shape[-1] == 1 for s in y.values())


def features_dataset(dataset, schema):
    """A dataset of raw columns (or of `(x, ...)` tuples) mapped to feature dicts."""
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(x_spec, dict):
        raise ValueError(f"A dataset for a tfmtl model must hold dicts of columns. Received: {spec}")
    missing = [n for n in schema.names if n not in x_spec]
    if missing:
        raise ValueError(f"Feature column(s) missing from the dataset: {missing}")

    def features(*element):
        columns = element[0]
        return {f.name: _feature_tensor(columns[f.name], f) for f in schema}

    return dataset.map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


_FAILURES = []


def raise_data_error():
    """Re-raises the validation error of a dataset batch as `ValueError`, if one failed."""
    if _FAILURES:
        message = _FAILURES.pop()
        _FAILURES.clear()
        raise ValueError(message) from None


def clear_data_errors():
    _FAILURES.clear()


def _checked(problems):
    counts = tf.stack([p[3] for p in problems]) if problems else tf.zeros([0], "int64")
    examples = [p[4] for p in problems]

    def fail(counts, *examples):
        for (kind, task, column, _, _), count, values in zip(problems, counts.numpy(), examples):
            if count:
                message = problem_message(kind, task, column, int(count), values.numpy().tolist())
                _FAILURES.append(message)
                raise ValueError(message)
        return True

    return tf.cond(
        tf.reduce_any(counts > 0),
        lambda: tf.py_function(fail, [counts, *examples], Tout=tf.bool),
        lambda: tf.constant(True),
    )


def _feature_tensor(values, feature):
    dtype = tf.as_dtype(feature.dtype)
    if values.dtype == dtype:
        return values
    if dtype == tf.string or values.dtype == tf.string:
        raise ValueError(f"Feature {feature.name!r} takes {feature.dtype} values. "
                         f"Received {values.dtype.name}.")
    return tf.cast(values, dtype)


def _numpy(structure):
    if structure is None:
        return None
    return {k: v.numpy() for k, v in structure.items()}
