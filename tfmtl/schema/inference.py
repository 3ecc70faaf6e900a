"""Infers a schema and tasks from a pandas DataFrame."""

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.report import schema_report
from tfmtl.schema.schema import Schema
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.schema.sparse_feature import SparseFeature
from tfmtl.schema.task import Task


def infer_schema(
    frame,
    labels,
    masks=None,
    kinds=None,
    categorical=(),
    dense=(),
    multi_valued=(),
    exclude=(),
    separator="|",
    max_vocabulary=100_000,
    min_frequency=1,
):
    """Infers features and tasks from a DataFrame.

    Every column that is not a label, a mask or excluded becomes a feature:
    strings, categories and booleans are categorical, integers are
    categorical (ids, codes, buckets), floats are dense. A column whose
    values are lists, or strings of which at least 5% contain `separator`,
    is multi-valued. Pass column names in `categorical`, `dense` or
    `multi_valued` to decide a column yourself. A categorical column with
    more than `max_vocabulary` distinct values is hashed into
    `max_vocabulary` bins.

    Args:
        frame: `pandas.DataFrame`. The training data.
        labels: list of label columns (one task each, named after the
            column) or dict of task name to label column.
        masks: dict of task name to mask column, or `None`.
        kinds: dict of task name to `"binary"`/`"regression"`, or `None` to
            infer: binary when the labels are all 0 or 1.
        categorical, dense, multi_valued: column names whose kind you set.
        exclude: columns that are neither features nor labels.
        separator: str. Separator of multi-valued string columns.
        max_vocabulary: int. Largest vocabulary before hashing.
        min_frequency: int. Values seen fewer times go to the OOV bucket.

    Returns:
        A tuple `(schema, tasks)`. `schema.report` is a `SchemaReport` of
        what was made of each column and what looks wrong (integer ids with
        blanks read as floats, timestamps, constant columns, near-unique
        ids, inf values, a feature that alone predicts a label: a leak?);
        `print(schema.report)` shows it, and `tfmtl.fit` and the command
        line print it once.

    Example:

    >>> frame = pd.DataFrame({"user": ["a", "b", "a"], "price": [1.0, 2.0, 3.0],
    ...                       "click": [1, 0, 1]})
    >>> schema, tasks = infer_schema(frame, labels=["click"])
    >>> schema.names, tasks[0].kind
    (('user', 'price'), 'binary')
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"infer_schema needs a pandas DataFrame. Received: {type(frame)}"
        )
    if len(frame) == 0:
        raise ValueError("Cannot infer a schema from an empty DataFrame (0 rows).")
    labels, masks, kinds, reserved = check_arguments(
        frame, labels, masks, kinds, categorical, dense, multi_valued, exclude)

    tasks = []
    for name, column in labels.items():
        kind = kinds.get(name) or _task_kind(frame[column], masks.get(name), frame)
        bias = _initial_bias(frame[column], frame[masks[name]] if masks.get(name) else None) \
            if kind == "regression" else None
        tasks.append(Task(name, kind=kind, label=column, mask=masks.get(name),
                          initial_bias=bias))

    features = []
    for column in frame.columns:
        if column in reserved:
            continue
        features.append(
            _infer_feature(
                frame[column],
                kind=(
                    "sequence" if column in multi_valued
                    else "sparse" if column in categorical
                    else "dense" if column in dense
                    else None
                ),
                separator=separator,
                max_vocabulary=max_vocabulary,
                min_frequency=min_frequency,
            )
        )
    schema = Schema(features)
    schema.report = schema_report(frame, schema, tasks)
    return schema, tasks


def check_arguments(frame, labels, masks, kinds, categorical, dense, multi_valued, exclude):
    """`infer_schema`'s arguments checked against `frame`'s columns: `(labels, masks, kinds,
    reserved)`, labels as a dict of task name to column, `reserved` the non-feature columns."""
    if isinstance(labels, str):
        labels = [labels]
    labels = dict(labels) if isinstance(labels, dict) else {c: c for c in labels}
    if not labels:
        raise ValueError("infer_schema needs at least one label column.")
    masks = dict(masks or {})
    kinds = dict(kinds or {})
    unknown = sorted((set(masks) | set(kinds)) - set(labels))
    if unknown:
        raise ValueError(
            f"masks/kinds name tasks that have no label: {unknown}. "
            f"Tasks: {list(labels)}"
        )
    reserved = set(labels.values()) | set(masks.values()) | set(exclude)
    missing = sorted(
        c
        for c in reserved | set(categorical) | set(dense) | set(multi_valued)
        if c not in frame.columns
    )
    if missing:
        raise ValueError(f"Columns missing from the DataFrame: {missing}")
    return labels, masks, kinds, reserved


def _initial_bias(labels, weights=None):
    """A regression head's starting bias: the label's (mask-weighted) mean, 6 digits."""
    values = pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64")
    weights = (np.ones_like(values) if weights is None
               else pd.to_numeric(weights, errors="coerce").to_numpy(dtype="float64"))
    keep = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
    if not keep.any():
        return None
    return round(float(np.average(values[keep], weights=weights[keep])), 6)


def _task_kind(labels, mask_column, frame):
    values = labels.to_numpy(dtype=np.float64, na_value=np.nan)
    if mask_column is not None:
        values = values[frame[mask_column].to_numpy() == 1]
    values = values[np.isfinite(values)]
    return "binary" if np.isin(values, (0.0, 1.0)).all() else "regression"


def _infer_feature(column, kind, separator, max_vocabulary, min_frequency):
    name = str(column.name)
    if kind is None:
        kind = _guess_kind(column, separator)
    if kind == "dense":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
        text = column.notna().to_numpy() & np.isnan(values)
        if text.any():
            examples = list(dict.fromkeys(column[text].astype(str)))[:3]
            raise ValueError(f"Column {name!r} is numeric but has {int(text.sum())} value(s) "
                             f"that are not numbers, e.g. {examples}; declare it categorical or "
                             "clean it.")
        finite = values[np.isfinite(values)]  # inf is treated as missing, as the model does
        mean = float(finite.mean()) if len(finite) else 0.0
        variance = float(finite.var()) if len(finite) else 1.0
        return DenseFeature(name, mean=mean, variance=variance)
    if kind == "sequence":
        tokens = column.map(lambda v: _tokens(v, separator)).explode().dropna()
        tokens = tokens.astype(str)
        tokens = tokens[tokens != ""]
        return SequenceFeature(
            name, separator=separator, **_lookup(tokens, max_vocabulary, min_frequency)
        )
    if pd.api.types.is_integer_dtype(column.dtype):
        dtype = "int64"
        values = column
    else:
        dtype = "string"
        values = column.dropna().astype(str)
    return SparseFeature(
        name, dtype=dtype, **_lookup(values, max_vocabulary, min_frequency)
    )


def _guess_kind(column, separator):
    if pd.api.types.is_bool_dtype(column.dtype):
        return "sparse"
    if pd.api.types.is_integer_dtype(column.dtype):
        return "sparse"
    if pd.api.types.is_float_dtype(column.dtype):
        return "dense"
    sample = column.dropna().head(10_000)
    if len(sample) and sample.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "sequence"
    as_text = sample.astype(str)
    if len(as_text) and as_text.str.contains(separator, regex=False).mean() >= 0.05:
        return "sequence"
    return "sparse"


def _tokens(value, separator):
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return str(value).split(separator)


def _lookup(values, max_vocabulary, min_frequency):
    return lookup_from_counts(values.value_counts(), max_vocabulary, min_frequency)


def lookup_from_counts(counts, max_vocabulary, min_frequency):
    """A vocabulary (most frequent first) or hashing bins from a Series of value counts."""
    counts = counts[counts >= min_frequency]
    if len(counts) == 0:
        return {"num_bins": 2}
    if len(counts) > max_vocabulary:
        return {"num_bins": int(max_vocabulary)}
    # Most frequent first; ties in value order so the result is deterministic.
    order = sorted(zip(-counts.to_numpy().astype("int64"), counts.index.tolist()))
    return {"vocabulary": tuple(value for _, value in order)}
