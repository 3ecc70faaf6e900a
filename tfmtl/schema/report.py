"""What `infer_schema` made of each column, and what looks wrong: a printable report."""

import dataclasses

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature

NEAR_UNIQUE = 0.9  # distinct values per row above which an id is memorised, not learned
LEAKAGE_AUC = 0.99  # a feature alone scoring a label this well (held-out rows) is suspect
TIME_WORDS = ("time", "date", "ts", "timestamp", "datetime", "created", "updated")


@dataclasses.dataclass
class ColumnReport:
    column: str
    kind: str
    detail: str
    missing: float
    warnings: list


@dataclasses.dataclass
class SchemaReport:
    """One row per feature (kind, vocabulary or statistics, missing rate, warnings).

    `print(report)` shows the table; `report.warnings` lists every warning
    as `"column: text"`. `tfmtl.fit` and the command line print it once.
    """

    columns: list
    label_warnings: list = dataclasses.field(default_factory=list)
    shown: bool = False

    @property
    def warnings(self):
        found = [f"{c.column}: {w}" for c in self.columns for w in c.warnings]
        return found + list(self.label_warnings)

    def __str__(self):
        rows = [("column", "kind", "values", "missing", "warnings")]
        for c in self.columns:
            rows.append((c.column, c.kind, c.detail, f"{100 * c.missing:.1f}%",
                         "; ".join(c.warnings) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  --------")
        lines += [f"warning: {w}" for w in self.label_warnings]
        return "\n".join(lines)


def schema_report(frame, schema, tasks=()):
    """A `SchemaReport` of `frame`'s columns as `schema` reads them (and leakage into `tasks`)."""
    columns = []
    for feature in schema:
        values = frame[feature.name]
        missing = float(values.isna().mean()) if len(values) else 0.0
        warnings = []
        if isinstance(feature, DenseFeature):
            kind = "dense"
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            finite = numbers[np.isfinite(numbers)]
            detail = f"mean {feature.mean:.4g}, std {np.sqrt(feature.variance):.4g}"
            infinite = int(np.isinf(numbers).sum())
            if infinite:
                warnings.append(f"{infinite} inf value(s): treated as missing (the mean)")
            if len(finite) and np.all(finite == np.round(finite)) and np.isnan(numbers).any():
                warnings.append("integer-valued floats with NaN: an id with blanks? declare it "
                                "categorical")
            if len(finite) and np.unique(finite).size == 1:
                warnings.append("constant: carries no signal")
            elif _looks_like_time(feature.name, finite):
                warnings.append("looks like a timestamp")
        else:
            kind = "multi-valued" if isinstance(feature, SequenceFeature) else "categorical"
            present = values.dropna()
            distinct = _keys(present).nunique()
            detail = (f"vocabulary {len(feature.vocabulary)}" if feature.vocabulary is not None
                      else f"hashed into {feature.num_bins} bins")
            detail += f" ({distinct} distinct)"
            if distinct <= 1:
                warnings.append("constant: carries no signal")
            elif len(present) >= 100 and distinct / len(present) > NEAR_UNIQUE:
                warnings.append(f"near-unique id ({distinct} values in {len(present)} rows): the "
                                "model memorises it and overfits")
            if pd.api.types.is_numeric_dtype(values.dtype) and _looks_like_time(
                    feature.name, present.to_numpy(dtype="float64")):
                warnings.append("looks like a timestamp: as a category it will not generalise")
        if missing > 0.5:
            warnings.append(f"{100 * missing:.0f}% missing")
        columns.append(ColumnReport(feature.name, kind, detail, missing, warnings))
    report = SchemaReport(columns)
    for task in tasks:
        report.label_warnings += _leakage(frame, schema, task)
    for column in report.columns:
        column.warnings += [w.split(": ", 1)[1] for w in report.label_warnings
                            if w.startswith(f"{column.column}: ")]
    report.label_warnings = [w for w in report.label_warnings
                             if not any(w.startswith(f"{c.column}: ") for c in report.columns)]
    return report


def _keys(values):
    """The values as the lookup tells them apart: NumPy integer and boolean columns as they
    are (one string object per row would cost time and, through the allocator's fragments,
    memory that stays resident), other columns (nullable integers included) as strings."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        return values
    return values.astype(str)


def _looks_like_time(name, numbers):
    lowered = name.lower()
    if any(word == lowered or lowered.endswith(f"_{word}") or lowered.startswith(f"{word}_")
           for word in TIME_WORDS):
        return True
    numbers = numbers[np.isfinite(numbers)] if len(numbers) else numbers
    if len(numbers) < 20:
        return False
    seconds = (numbers > 6e8) & (numbers < 4e9)  # 1989 .. 2096 in seconds
    millis = (numbers > 6e11) & (numbers < 4e12)
    return bool(seconds.mean() > 0.95 or millis.mean() > 0.95) and np.unique(numbers).size > 100


def _leakage(frame, schema, task):
    """Features that alone predict the task's label almost perfectly on held-out rows."""
    if not isinstance(task.label, str) or task.label not in frame:
        return []
    label = pd.to_numeric(frame[task.label], errors="coerce")
    keep = label.notna().to_numpy().copy()
    if task.mask and task.mask in frame:
        keep &= pd.to_numeric(frame[task.mask], errors="coerce").fillna(0).to_numpy() > 0
    if keep.sum() < 50:
        return []
    found = []
    order = np.random.default_rng(0).permutation(np.flatnonzero(keep))
    fit, held = order[: len(order) // 2], order[len(order) // 2:]
    y = label.to_numpy(dtype="float64")
    for feature in schema:
        values = frame[feature.name]
        if isinstance(feature, DenseFeature):
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            score = np.where(np.isfinite(x), x, np.nanmean(x[np.isfinite(x)]) if np.isfinite(
                x).any() else 0.0)
        else:  # each value's mean label on half the rows, scored on the other half
            keys = _keys(values).to_numpy()
            means = pd.Series(y[fit]).groupby(keys[fit]).mean()
            score = pd.Series(keys).map(means).fillna(np.mean(y[fit])).to_numpy()
        strength = _strength(y[held], score[held], task.kind)
        if strength >= LEAKAGE_AUC:
            found.append(f"{feature.name}: alone predicts label {task.label!r} almost perfectly "
                         f"({strength:.3f} on held-out rows): a leak? exclude it")
        elif task.kind == "binary" and _later_outcome(values, y, keep):
            found.append(f"{feature.name}: a 0/1 column that is 1 only where label "
                         f"{task.label!r} is 1 (an outcome that comes after it, as a purchase "
                         f"after a click?): exclude it unless it is known when serving")
    return found


def _later_outcome(values, y, keep):
    """A 0/1 column whose ones all fall on positive rows of the label (a funnel's later step)."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")[keep]
    labels = y[keep]
    if not np.isin(x[np.isfinite(x)], (0.0, 1.0)).all():
        return False
    ones = x == 1
    positives = labels == 1
    if ones.sum() < 20 or positives.sum() < 20 or ones.sum() >= len(x) - 20:
        return False
    return bool(labels[ones].mean() >= 0.995 and ones.sum() >= 0.05 * positives.sum())


def _strength(y, score, kind):
    if np.unique(score).size < 2:
        return 0.0
    if kind == "binary":
        from tfmtl.metrics import roc_auc

        if np.unique(y).size < 2:
            return 0.0
        auc = roc_auc(y, score)
        return max(auc, 1 - auc)
    return abs(float(np.corrcoef(y, score)[0, 1]))
