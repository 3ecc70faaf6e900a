"""In-memory data (DataFrames, dicts of arrays) to model inputs and targets."""

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature


def columns_of(data):
    """A dict of column name to 1-D NumPy array, from a DataFrame or dict.

    A dict of scalars is one row.
    """
    if isinstance(data, pd.DataFrame):
        return {str(c): data[c].to_numpy() for c in data.columns}
    if isinstance(data, dict):
        return {str(k): _column(v) for k, v in data.items()}
    raise TypeError(
        "Expected a pandas DataFrame or a dict of column arrays. "
        f"Received: {type(data).__name__}"
    )


def _column(value):
    if _is_tensor(value):
        return value
    values = np.asarray(value)
    return values.reshape(1) if values.ndim == 0 else values


def _is_tensor(value):
    return hasattr(value, "numpy") and not isinstance(value, np.ndarray)


def check_columns(columns, schema):
    """Raises `ValueError` unless the columns have rows, one length, and every feature.

    Args:
        columns: dict of column name to array (`columns_of`).
        schema: `Schema`, or `None` to check rows and lengths only.
    """
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        raise ValueError("The data is empty (0 rows).")
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in columns.items()}
        raise ValueError(f"Columns have different lengths: {sizes}")
    missing = [n for n in (schema.names if schema is not None else ()) if n not in columns]
    if missing:
        raise ValueError(f"Feature column(s) missing from the data: {missing}")


def validate(data, schema, tasks, labels=True, facets=None):
    """Raises `ValueError` with a clear message if `data` cannot train.

    Checks, in order: the data has rows; every feature column is present;
    then (when `labels`) the tasks' label and mask columns with the one
    validation of `tfmtl.data.Targets`: present, masks in [0, 1], labels
    finite on rows that count, binary labels 0 or 1.

    Args:
        data: DataFrame or dict of column arrays.
        schema: `Schema`, or `None` to check labels only.
        tasks: list of `Task`.
        labels: bool. Whether label and mask columns are checked.
        facets: the model's `FacetedTasks`, if any.
    """
    from tfmtl.data.targets import Targets

    columns = columns_of(data)
    check_columns(columns, schema)
    if labels:
        Targets(tasks, facets).validate(columns)


def features_from(data, schema):
    """Model inputs: a dict of arrays in the dtypes the model's inputs take.

    Strings of missing values become `""`, integer ids with missing values
    `-1` (out of vocabulary), and list values of multi-valued fields are
    joined with the field's separator.

    Raises:
        ValueError: naming the column, when a number column holds text that
            is not a number (`'n/a'`) or an integer id column holds a number
            that is not an integer (`12.5`, which would silently become 12).
    """
    columns = columns_of(data)
    inputs = {}
    for feature in schema:
        values = columns[feature.name]
        if _is_tensor(values):
            inputs[feature.name] = values
        elif isinstance(feature, DenseFeature):
            inputs[feature.name] = _numbers(values, feature.name)
        elif isinstance(feature, SequenceFeature):
            inputs[feature.name] = np.array(
                [_join(v, feature.separator) for v in values], dtype=object
            )
        elif feature.dtype == "int64":
            inputs[feature.name] = _integers(values, feature.name)
        else:
            inputs[feature.name] = np.array(
                ["" if _missing(v) else str(v) for v in values], dtype=object
            )
    return inputs


def _numbers(values, name):
    values = np.asarray(values)
    if values.dtype.kind in "iufb":
        return values.astype(np.float32, copy=False)  # the caller's array when it is float32
    numbers = pd.to_numeric(pd.Series(values.ravel()), errors="coerce")
    blank = pd.Series(values.ravel()).map(
        lambda v: _missing(v) or (isinstance(v, str) and not v.strip()))
    bad = numbers.isna() & ~blank
    if bad.any():
        examples = list(dict.fromkeys(pd.Series(values.ravel())[bad].astype(str)))[:3]
        raise ValueError(f"Feature {name!r} is numeric but has {int(bad.sum())} value(s) that are "
                         f"not numbers, e.g. {examples}.")
    return numbers.to_numpy(dtype=np.float32, na_value=np.nan)


def _integers(values, name):
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64, copy=False)  # the caller's array when it is int64
    numbers = _numbers(values, name).astype(np.float64) if values.dtype.kind != "f" else values
    finite = np.isfinite(numbers)
    fractional = finite & (numbers != np.round(numbers))
    if fractional.any():
        examples = sorted(set(numbers[fractional].tolist()))[:3]
        raise ValueError(f"Feature {name!r} holds integer ids but has {int(fractional.sum())} "
                         f"value(s) with a fraction, e.g. {examples}: they would be truncated.")
    return np.where(finite, numbers, -1).astype(np.int64)  # missing: out of vocabulary


def _missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _join(value, separator):
    if isinstance(value, (list, tuple, np.ndarray)):
        return separator.join(str(v) for v in value)
    return "" if _missing(value) else str(value)
