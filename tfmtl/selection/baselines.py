"""Single-task feature selectors applied per task (MultiSFS's baselines): Chi2 and LASSO."""

import keras
import numpy as np
import pandas as pd
from keras import ops

from tfmtl.data.arrays import columns_of
from tfmtl.data.targets import Targets
from tfmtl.layers.feature_lookup import FeatureLookup
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.schema.dense_feature import DenseFeature


def _task_labels(frame, tasks, facets=None):
    """Per task: `(labels, rows that count)`; regression labels split at their median."""
    targets = Targets(tasks, facets)
    y, weights = targets(frame)
    out = []
    for task in tasks:
        key = targets.keys[task.name]
        label = y[key].numpy()[:, 0]
        keep = np.ones(len(label), bool) if weights is None else weights[key].numpy() > 0
        if task.kind == "regression":
            label = (label > np.median(label[keep])).astype("float64")
        out.append((label, keep))
    return out


def _categories(values, feature, bins=10, most=1000):
    """Integer codes of a column: dense values by quantile bins, categories by value."""
    if isinstance(feature, DenseFeature):
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, bins + 1)[1:-1]))
        codes = np.searchsorted(edges, numbers.to_numpy(), side="right")
        return np.where(numbers.isna().to_numpy(), len(edges) + 1, codes)
    series = pd.Series(values).astype(str)
    frequent = series.value_counts().index[:most]
    return pd.Categorical(series.where(series.isin(frequent), "<other>")).codes


def chi2_scores(frame, schema, tasks, facets=None):
    """`(T, N)` Chi2 importance of each field for each task.

    For field `n` and task `t`: the chi-squared statistic of the contingency
    table of the field's values (dense features in 10 quantile bins, at
    most 1000 categories) against the task's binary label (a regression
    label split at its median), over the rows the task's mask keeps. Fields
    differ in their degrees of freedom, so the score is the statistic's
    Wilson-Hilferty z-score, which ranks fields as their p-values do.
    """
    columns = columns_of(frame)
    scores = np.zeros((len(tasks), len(schema)))
    for t, (label, keep) in enumerate(_task_labels(frame, tasks, facets)):
        for n, feature in enumerate(schema):
            codes = _categories(columns[feature.name], feature)[keep]
            table = pd.crosstab(codes, label[keep]).to_numpy().astype("float64")
            if table.shape[0] < 2 or table.shape[1] < 2:
                scores[t, n] = 0.0
                continue
            expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
            statistic = float(((table - expected) ** 2 / np.maximum(expected, 1e-12)).sum())
            dof = (table.shape[0] - 1) * (table.shape[1] - 1)
            scores[t, n] = ((statistic / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / np.sqrt(
                2 / (9 * dof))
    return scores


class _FieldLinear(keras.Model):
    """A linear model with one weight per field value (one-hot) and per number: per-field terms."""

    def __init__(self, schema, l1, binary):
        super().__init__(name="field_linear")
        self.schema = schema
        self.binary = binary
        regularizer = keras.regularizers.L1(l1)
        self.lookup = FeatureLookup(schema) if schema.fields else None
        self.weights_of_values = (FieldEmbedding(schema, 1, embeddings_initializer="zeros",
                                                 embeddings_regularizer=regularizer)
                                  if schema.fields else None)
        self.numeric = NumericFeatures(schema) if schema.dense else None
        self.dense_weights = self.add_weight(shape=(max(len(schema.dense), 1),),
                                             initializer="zeros", regularizer=regularizer,
                                             name="dense_weights")
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")
        order = list(schema.field_names) + list(schema.dense_names)
        self.positions = [order.index(n) for n in schema.names]

    def terms(self, x):
        parts = []
        if self.weights_of_values is not None:
            parts.append(self.weights_of_values(self.lookup(x))[:, :, 0])
        if self.numeric is not None:
            parts.append(self.numeric(x) * self.dense_weights[None, :len(self.schema.dense)])
        terms = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        return ops.take(terms, self.positions, axis=1)  # (batch, N)

    def call(self, x):
        logit = ops.sum(self.terms(x), axis=1, keepdims=True) + self.bias
        return ops.sigmoid(logit) if self.binary else logit


def lasso_scores(frame, schema, tasks, l1=1e-4, epochs=3, batch_size=1024, seed=0, facets=None):
    """`(T, N)` LASSO importance of each field for each task.

    Per task, an L1-penalised linear model (logistic for a binary task,
    least squares for a regression task) with one weight per value of each
    categorical field (one-hot) and one per dense feature, trained with Adam
    (`epochs`, penalty `l1` per weight) on the rows the task's mask keeps.
    A field's importance is the mean absolute deviation of its term
    `w_{n, x_n}` over the rows: how much the field moves the prediction
    (for a one-hot field, the frequency-weighted size of its weights).
    """
    from tfmtl.data.arrays import features_from

    columns = columns_of(frame)
    x = features_from(columns, schema)
    targets = Targets(tasks, facets)
    y, weights = targets(frame)
    scores = np.zeros((len(tasks), len(schema)))
    for t, task in enumerate(tasks):
        key = targets.keys[task.name]
        label = y[key].numpy()
        keep = np.ones(len(label), bool) if weights is None else weights[key].numpy() > 0
        rows = {k: v[keep] for k, v in x.items()}
        keras.utils.set_random_seed(seed)
        model = _FieldLinear(schema, l1, task.kind == "binary")
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="binary_crossentropy" if task.kind == "binary" else "mse")
        model.fit(rows, label[keep], epochs=epochs, batch_size=batch_size, verbose=0)
        terms = ops.convert_to_numpy(model.terms(rows))
        scores[t] = np.abs(terms - terms.mean(axis=0)).mean(axis=0)
    return scores
