"""In-memory data (DataFrames, dicts of arrays) to model inputs and targets."""

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature


def columns_of(data):
    """A dict of column name to 1-D NumPy array, from a DataFrame or dict."""
    if isinstance(data, pd.DataFrame):
        return {str(c): data[c].to_numpy() for c in data.columns}
    if isinstance(data, dict):
        return {str(k): np.asarray(v) if not _is_tensor(v) else v for k, v in data.items()}
    raise TypeError(
        "Expected a pandas DataFrame or a dict of column arrays. "
        f"Received: {type(data).__name__}"
    )


def _is_tensor(value):
    return hasattr(value, "numpy") and not isinstance(value, np.ndarray)


def validate(data, schema, tasks, labels=True):
    """Raises `ValueError` with a clear message if `data` cannot train.

    Checks, in order: the data has rows; every feature column is present;
    every label and mask column is present (when `labels`); labels are
    finite on the rows their mask keeps; binary labels are 0 or 1; masks
    are weights in [0, 1].

    Args:
        data: DataFrame or dict of column arrays.
        schema: `Schema`, or `None` to check labels only.
        tasks: list of `Task`.
        labels: bool. Whether label and mask columns must be present.
    """
    columns = columns_of(data)
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        raise ValueError("The data is empty (0 rows).")
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in columns.items()}
        raise ValueError(f"Columns have different lengths: {sizes}")
    missing = [n for n in (schema.names if schema is not None else ()) if n not in columns]
    if missing:
        raise ValueError(f"Feature column(s) missing from the data: {missing}")
    if not labels:
        return
    missing = {
        c: t.name for t in tasks for c in t.columns if c not in columns
    }
    if missing:
        described = ", ".join(f"{c!r} (task {t!r})" for c, t in missing.items())
        raise ValueError(f"Label/mask column(s) missing from the data: {described}")
    for task in tasks:
        keep = _mask(columns, task) > 0
        for column in task.label_columns:
            values = _float(columns[column], column)
            bad = ~np.isfinite(values) & keep
            if bad.any():
                raise ValueError(
                    f"Task {task.name!r}: label column {column!r} has "
                    f"{int(bad.sum())} NaN/inf value(s) on rows that count."
                )
            if task.kind == "binary":
                other = keep & ~np.isin(values, (0.0, 1.0))
                if other.any():
                    examples = sorted(set(values[other].tolist()))[:3]
                    raise ValueError(
                        f"Task {task.name!r} is binary but label column "
                        f"{column!r} has {int(other.sum())} value(s) that are "
                        f"not 0 or 1 (e.g. {examples})."
                    )


def _mask(columns, task):
    """The task's per-row weights in [0, 1] (all 1 without a mask)."""
    n = len(next(iter(columns.values())))
    if task.mask is None:
        return np.ones(n)
    values = _float(columns[task.mask], task.mask)
    bad = ~((values >= 0.0) & (values <= 1.0))  # NaN too
    if bad.any():
        raise ValueError(
            f"Task {task.name!r}: mask column {task.mask!r} has "
            f"{int(bad.sum())} value(s) outside [0, 1]."
        )
    return values


def _float(values, column):
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column {column!r} must be numeric. Received values such as "
            f"{list(np.asarray(values)[:3])}"
        ) from None


def features_from(data, schema):
    """Model inputs: a dict of arrays in the dtypes the model's inputs take.

    Strings of missing values become `""`, integer ids with missing values
    `-1` (out of vocabulary), and list values of multi-valued fields are
    joined with the field's separator.
    """
    columns = columns_of(data)
    inputs = {}
    for feature in schema:
        values = columns[feature.name]
        if _is_tensor(values):
            inputs[feature.name] = values
        elif isinstance(feature, DenseFeature):
            inputs[feature.name] = np.asarray(values, dtype=np.float32)
        elif isinstance(feature, SequenceFeature):
            inputs[feature.name] = np.array(
                [_join(v, feature.separator) for v in values], dtype=object
            )
        elif feature.dtype == "int64":
            values = np.asarray(values)
            if values.dtype.kind == "f":
                values = np.where(np.isnan(values), -1, values)
            inputs[feature.name] = values.astype(np.int64)
        else:
            inputs[feature.name] = np.array(
                ["" if _missing(v) else str(v) for v in values], dtype=object
            )
    return inputs


def targets_from(data, tasks):
    """Labels and sample weights: `(y, sample_weight)`, dicts by task name.

    Labels are `(rows, 1)`, the shape of the model's outputs; weights are
    `(rows,)`.
    A task's sample weight is its mask (1 where the row counts, 0 where it
    does not, a fraction to count it partly); labels on rows of weight 0
    are set to 0 so that they never reach a loss as NaN.
    `sample_weight` is `None` when no task has a mask.
    """
    columns = columns_of(data)
    y, weights = {}, {}
    any_mask = any(t.mask for t in tasks)
    for task in tasks:
        label = np.ones(len(next(iter(columns.values()))), dtype=np.float64)
        for column in task.label_columns:
            label = label * _float(columns[column], column)
        mask = _mask(columns, task).astype(np.float32)
        label = np.where(mask > 0, label, 0.0)
        y[task.name] = label.astype(np.float32)[:, None]
        if any_mask:
            weights[task.name] = mask
    return y, (weights if any_mask else None)


def _missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _join(value, separator):
    if isinstance(value, (list, tuple, np.ndarray)):
        return separator.join(str(v) for v in value)
    return "" if _missing(value) else str(value)
