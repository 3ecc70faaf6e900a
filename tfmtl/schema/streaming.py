"""`infer_schema` in one streaming pass: data that does not fit in memory as a DataFrame."""

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.inference import _guess_kind, _tokens, check_arguments, lookup_from_counts
from tfmtl.schema.report import schema_report
from tfmtl.schema.schema import Schema
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.schema.sparse_feature import SparseFeature
from tfmtl.schema.task import Task

# Distinct values counted per column before it is declared hashed: counting stops there, so
# memory stays bounded by columns x COUNT_LIMIT x max_vocabulary values, whatever the data.
COUNT_LIMIT = 4


def infer_schema_streaming(
    chunks,
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
    """`infer_schema` over an iterable of DataFrame chunks, none of them kept.

    Gives what `infer_schema` gives on the concatenated chunks (the same
    kinds, vocabularies in the same order, means and variances up to float
    rounding, task kinds and initial biases), holding per column only the
    value counts and running moments. Column kinds are decided on the first
    chunk, as `infer_schema` decides them on a sample of 10,000 values. A
    categorical column whose distinct values pass `COUNT_LIMIT` times
    `max_vocabulary` stops being counted and is hashed into
    `max_vocabulary` bins (as `infer_schema` hashes one with more than
    `max_vocabulary` values; the one difference: with `min_frequency > 1`,
    `infer_schema` could still keep a vocabulary of that column's frequent
    values). An integer column with blanks in a later chunk is dense, as
    on the whole frame (pandas reads it as floats). `schema.report` is
    made from the first chunk.

    Args:
        chunks: an iterable of `pandas.DataFrame` with the same columns,
            e.g. `tfmtl.data.parquet_chunks(path)`.
        labels, masks, kinds, categorical, dense, multi_valued, exclude,
        separator, max_vocabulary, min_frequency: as for `infer_schema`.

    Returns:
        `(schema, tasks)`.
    """
    stats, first, rows = None, None, 0
    for chunk in chunks:
        if not isinstance(chunk, pd.DataFrame):
            raise TypeError(f"infer_schema_streaming needs DataFrame chunks. Received: "
                            f"{type(chunk)}")
        if len(chunk) == 0:
            continue
        if stats is None:
            first = chunk
            labels, masks, kinds, reserved = check_arguments(
                chunk, labels, masks, kinds, categorical, dense, multi_valued, exclude)
            stats = _Stats(chunk, labels, masks, kinds, reserved, categorical, dense,
                           multi_valued, separator, max_vocabulary)
        elif list(chunk.columns) != list(first.columns):
            raise ValueError(f"A chunk's columns differ from the first chunk's: "
                             f"{list(chunk.columns)} against {list(first.columns)}")
        stats.add(chunk)
        rows += len(chunk)
    if stats is None:
        raise ValueError("Cannot infer a schema from no rows.")
    schema, tasks = stats.result(min_frequency)
    schema.report = schema_report(first, schema, tasks)
    schema.rows = rows
    return schema, tasks


class _Stats:
    def __init__(self, chunk, labels, masks, kinds, reserved, categorical, dense, multi_valued,
                 separator, max_vocabulary):
        self.labels, self.masks, self.kinds = labels, masks, kinds
        self.separator, self.max_vocabulary = separator, max_vocabulary
        self.features = {}
        for column in chunk.columns:
            if column in reserved:
                continue
            kind = ("sequence" if column in multi_valued else "sparse" if column in categorical
                    else "dense" if column in dense else _guess_kind(chunk[column], separator))
            dtype = ("int64" if kind == "sparse" and pd.api.types.is_integer_dtype(
                chunk[column].dtype) else "string")
            self.features[column] = {
                "kind": kind, "dtype": dtype, "counts": pd.Series(dtype="int64"),
                "hashed": False, "n": 0, "mean": 0.0, "m2": 0.0,
                # An integer column guessed categorical whose later chunks hold blanks (read as
                # floats) is dense on the whole frame: its moments are kept in case.
                "guessed_int": dtype == "int64" and column not in categorical, "blanks": False}
        self.tasks = {name: {"binary": True, "sum": 0.0, "weight": 0.0} for name in labels}

    def add(self, chunk):
        for column, state in self.features.items():
            values = chunk[column]
            if state["kind"] == "dense":
                self._moments(state, column, values)
                continue
            if state["guessed_int"]:
                state["blanks"] |= not pd.api.types.is_integer_dtype(values.dtype)
                self._moments(state, column, values)
            if not state["hashed"]:
                if state["kind"] == "sequence":
                    tokens = values.map(lambda v: _tokens(v, self.separator)).explode().dropna()
                    values = tokens.astype(str)
                    values = values[values != ""]
                elif state["dtype"] == "int64":
                    values = values.dropna().astype("int64")
                else:
                    values = values.dropna().astype(str)
                state["counts"] = state["counts"].add(values.value_counts(), fill_value=0)
                if len(state["counts"]) > COUNT_LIMIT * self.max_vocabulary:
                    state["hashed"], state["counts"] = True, None
        for name, column in self.labels.items():
            values = pd.to_numeric(chunk[column], errors="coerce").to_numpy(dtype="float64")
            weights = (np.ones_like(values) if not self.masks.get(name) else pd.to_numeric(
                chunk[self.masks[name]], errors="coerce").to_numpy(dtype="float64"))
            state = self.tasks[name]
            counted = values[(weights == 1) if self.masks.get(name) else np.ones(len(values), bool)]
            counted = counted[np.isfinite(counted)]
            state["binary"] &= bool(np.isin(counted, (0.0, 1.0)).all())
            keep = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
            state["sum"] += float(np.sum(values[keep] * weights[keep]))
            state["weight"] += float(np.sum(weights[keep]))

    @staticmethod
    def _moments(state, column, values):
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        text = values.notna().to_numpy() & np.isnan(numbers)
        if text.any():
            examples = list(dict.fromkeys(values[text].astype(str)))[:3]
            raise ValueError(f"Column {column!r} is numeric but has {int(text.sum())} value(s) "
                             f"that are not numbers, e.g. {examples}; declare it categorical or "
                             "clean it.")
        finite = numbers[np.isfinite(numbers)]
        if not len(finite):
            return
        # Chan et al.'s pairwise update of (count, mean, sum of squared deviations).
        n, mean, m2 = len(finite), float(finite.mean()), float(((finite - finite.mean()) ** 2).sum())
        total = state["n"] + n
        delta = mean - state["mean"]
        state["mean"] += delta * n / total
        state["m2"] += m2 + delta ** 2 * state["n"] * n / total
        state["n"] = total

    def result(self, min_frequency):
        tasks = []
        for name, column in self.labels.items():
            state = self.tasks[name]
            kind = self.kinds.get(name) or ("binary" if state["binary"] else "regression")
            bias = (round(state["sum"] / state["weight"], 6)
                    if kind == "regression" and state["weight"] > 0 else None)
            tasks.append(Task(name, kind=kind, label=column, mask=self.masks.get(name),
                              initial_bias=bias))
        features = []
        for column, state in self.features.items():
            name = str(column)
            if state["kind"] == "dense" or state["blanks"]:
                mean = state["mean"] if state["n"] else 0.0
                variance = state["m2"] / state["n"] if state["n"] else 1.0
                features.append(DenseFeature(name, mean=mean, variance=variance))
                continue
            lookup = ({"num_bins": int(self.max_vocabulary)} if state["hashed"]
                      else lookup_from_counts(state["counts"], self.max_vocabulary,
                                                           min_frequency))
            if state["kind"] == "sequence":
                features.append(SequenceFeature(name, separator=self.separator, **lookup))
            else:
                if "vocabulary" in lookup and state["dtype"] == "int64":
                    lookup["vocabulary"] = tuple(int(v) for v in lookup["vocabulary"])
                features.append(SparseFeature(name, dtype=state["dtype"], **lookup))
        return Schema(features), tasks
