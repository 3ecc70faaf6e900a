"""Seeded synthetic data sets with planted, known structure."""

import numpy as np
import pandas as pd

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.schema import Schema
from tfmtl.schema.sparse_feature import SparseFeature
from tfmtl.schema.task import Task


def mmoe_regression(
    num_rows, correlation, dim=100, scale=1.0, num_sin=10, noise=0.1, seed=0
):
    """The MMoE paper's two regression tasks with a chosen correlation.

    With orthogonal unit vectors `u1, u2`, `w1 = c u1`,
    `w2 = c (p u1 + sqrt(1 - p^2) u2)`, `x ~ N(0, I)` and
    `y_k = w_k^T x + sum_i sin(alpha_i w_k^T x + beta_i) + eps_k`
    (Ma et al., KDD 2018, Sec. 3.2). The Pearson correlation of the two
    linear parts is `p`; the sine terms lower the labels' correlation as
    the paper describes.

    Args:
        num_rows: int. Rows to draw.
        correlation: float in [-1, 1]. `p`.
        dim: int. Input dimension `d`. Defaults to `100`.
        scale: float. `c`. Defaults to `1.0`.
        num_sin: int. `m`, the number of sine terms. Defaults to `10`.
        noise: float. Standard deviation of `eps`. Defaults to `0.1`
            (the paper's `N(0, 0.01)`).
        seed: int. Seeds everything drawn, parameters included.

    Returns:
        `(frame, schema, tasks)`: columns `x0..x{d-1}`, `y1`, `y2`; dense
        features; tasks `y1`, `y2` (regression).
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1]. Received: {correlation}")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, 2)))
    u1, u2 = basis[:, 0], basis[:, 1]
    w1 = scale * u1
    w2 = scale * (correlation * u1 + np.sqrt(1.0 - correlation**2) * u2)
    alpha = rng.normal(size=num_sin)
    beta = rng.normal(size=num_sin)
    x = rng.normal(size=(num_rows, dim))
    labels = {}
    for name, w in (("y1", w1), ("y2", w2)):
        wx = x @ w
        labels[name] = wx + np.sin(np.outer(wx, alpha) + beta).sum(axis=1) + rng.normal(
            scale=noise, size=num_rows
        )
    columns = {f"x{i}": x[:, i].astype("float32") for i in range(dim)}
    frame = pd.DataFrame({**columns, **{k: v.astype("float32") for k, v in labels.items()}})
    schema = Schema([DenseFeature(f"x{i}") for i in range(dim)])
    tasks = [Task("y1", "regression"), Task("y2", "regression")]
    return frame, schema, tasks


def ctr_synthetic(
    num_rows,
    cardinalities=(10, 50, 200, 1000, 5000),
    num_dense=3,
    tasks=("click", "like", "finish"),
    shared_strength=1.0,
    specific_strength=1.0,
    seed=0,
):
    """CTR-style rows: categorical fields, dense fields, binary tasks.

    Every categorical value gets a shared effect and one effect per task
    (drawn `N(0, 1)`), values are Zipf-like distributed, and each dense
    field has a shared and a per-task slope. A task's logit is
    `shared_strength * shared + specific_strength * own + bias` (with the
    sums scaled to unit variance) and its label is drawn from the sigmoid.
    A model that learns the fields beats AUC 0.5 by a clear margin; the
    Bayes-optimal probabilities are returned in columns `p_<task>`, which
    are not features.

    Args:
        num_rows: int.
        cardinalities: list of int. One categorical field (`c0`, `c1`, ...)
            per entry.
        num_dense: int. Dense fields `d0`, `d1`, ...
        tasks: list of str. Task names.
        shared_strength, specific_strength: float. Weights of the shared
            and task-specific signal.
        seed: int.

    Returns:
        `(frame, schema, tasks)`.
    """
    rng = np.random.default_rng(seed)
    columns, shared, own = {}, np.zeros(num_rows), {t: np.zeros(num_rows) for t in tasks}
    for i, cardinality in enumerate(cardinalities):
        ranks = np.arange(1, cardinality + 1)
        popularity = 1.0 / ranks**1.1
        values = rng.choice(cardinality, size=num_rows, p=popularity / popularity.sum())
        columns[f"c{i}"] = values.astype("int64")
        shared += rng.normal(size=cardinality)[values]
        for t in tasks:
            own[t] += rng.normal(size=cardinality)[values]
    for j in range(num_dense):
        values = rng.normal(size=num_rows)
        columns[f"d{j}"] = values.astype("float32")
        shared += rng.normal() * values
        for t in tasks:
            own[t] += rng.normal() * values
    shared = shared / shared.std()
    frame = pd.DataFrame(columns)
    for t in tasks:
        logit = shared_strength * shared + specific_strength * own[t] / own[t].std() - 1.0
        probability = 1.0 / (1.0 + np.exp(-logit))
        frame[t] = (rng.random(num_rows) < probability).astype("int64")
        frame[f"p_{t}"] = probability
    schema = Schema(
        [SparseFeature(f"c{i}", vocabulary=tuple(range(c)), dtype="int64")
         for i, c in enumerate(cardinalities)]
        + [DenseFeature(f"d{j}") for j in range(num_dense)]
    )
    return frame, schema, [Task(t) for t in tasks]


def conflict_synthetic(num_rows, num_users=2000, num_items=1000, groups=20, conflict=0.3,
                       seed=0):
    """Two binary tasks whose preferences disagree on part of the user-item pairs.

    Users and items fall into `groups` groups each; a preference `P[g_u, g_i]`
    (drawn `N(0, 1.5^2)`) says how much a user group likes an item group.
    Task A's logit is `P[g_u, g_i] + a_u + c_i`; task B's is
    `s * P[g_u, g_i] + b_u + c_i`, where `s = -1` on a `conflict` share of the
    (user group, item group) cells and `+1` elsewhere: there the two tasks'
    preferences disagree. `a_u`, `b_u`, `c_i` are per-user and per-item
    biases (`N(0, 0.5^2)`). Features: `user_id`, `item_id`, `user_group`,
    `item_group`; labels `a`, `b`; the column `conflict` marks the planted
    pairs (not a feature).

    Returns:
        `(frame, schema, tasks)`.
    """
    rng = np.random.default_rng(seed)
    preference = rng.normal(scale=1.5, size=(groups, groups))
    sign = np.where(rng.random((groups, groups)) < conflict, -1.0, 1.0)
    user_group = rng.integers(0, groups, num_users)
    item_group = rng.integers(0, groups, num_items)
    bias_a, bias_b = rng.normal(scale=0.5, size=(2, num_users))
    bias_item = rng.normal(scale=0.5, size=num_items)
    u = rng.integers(0, num_users, num_rows)
    i = rng.integers(0, num_items, num_rows)
    gu, gi = user_group[u], item_group[i]
    logit_a = preference[gu, gi] + bias_a[u] + bias_item[i]
    logit_b = sign[gu, gi] * preference[gu, gi] + bias_b[u] + bias_item[i]
    frame = pd.DataFrame({
        "user_id": u.astype("int64"), "item_id": i.astype("int64"),
        "user_group": gu.astype("int64"), "item_group": gi.astype("int64"),
    })
    frame["a"] = (rng.random(num_rows) < 1 / (1 + np.exp(-logit_a))).astype("int64")
    frame["b"] = (rng.random(num_rows) < 1 / (1 + np.exp(-logit_b))).astype("int64")
    frame["conflict"] = sign[gu, gi] < 0
    schema = Schema([
        SparseFeature("user_id", vocabulary=tuple(range(num_users)), dtype="int64"),
        SparseFeature("item_id", vocabulary=tuple(range(num_items)), dtype="int64"),
        SparseFeature("user_group", vocabulary=tuple(range(groups)), dtype="int64"),
        SparseFeature("item_group", vocabulary=tuple(range(groups)), dtype="int64"),
    ])
    return frame, schema, [Task("a"), Task("b")]


def fdn_synthetic(num_rows, dim=16, scale=1.0, num_sin=10, noise=0.1, seed=0):
    """FDN's synthetic regression data: task-specific and task-shared inputs.

    Orthogonal unit vectors `u1, u2, us` give weights `w = c u`. Each row has
    three blocks of `dim` inputs: `x1 ~ N(-1, 0.1)` that only task 1 needs,
    `x2 ~ N(1, 0.1)` that only task 2 needs and `xs ~ N(0, 1)` that both
    need (the second argument of `N` is the variance). With
    `z_k = w_k^T x_k + w_s^T x_s`, task `k`'s label is
    `y_k = z_k + sum_i sin(alpha_i z_k + beta_i) + eps_k`, the MMoE paper's
    form that FDN's appendix builds on. The three data sets share the rows:
    `"a"` holds `x1, xs` and `y1`, `"b"` holds `x2, xs` and `y2` (what an
    oracle single-task model sees: only the features its task needs), and
    `"multi"` holds all inputs and both labels, so each task's model also
    sees the other task's features.

    This follows the generator's description (Zhou et al., AAAI 2023,
    appendix): vectors, input distributions, sine terms and noise. Inputs are
    fed raw (the schema does not standardise them).

    Args:
        num_rows: int. Rows to draw.
        dim: int. Inputs per block. Defaults to `16`.
        scale: float. `c`. Defaults to `1.0`.
        num_sin: int. Sine terms. Defaults to `10`.
        noise: float. Standard deviation of `eps`. Defaults to `0.1`.
        seed: int. Seeds everything drawn, parameters included.

    Returns:
        `{"multi": (frame, schema, tasks), "a": (...), "b": (...)}`; columns
        `x1_0.., x2_0.., xs_0..`, labels `y1`, `y2` (regression).

    Example:

    >>> sets = fdn_synthetic(100, dim=4)
    >>> sorted(sets), len(sets["multi"][1].dense), len(sets["a"][1].dense)
    (['a', 'b', 'multi'], 12, 8)
    """
    if int(num_rows) < 1 or int(dim) < 2:
        raise ValueError(f"num_rows must be >= 1 and dim >= 2. Received: {num_rows}, {dim}")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, 3)))
    weights = {"1": scale * basis[:, 0], "2": scale * basis[:, 1], "s": scale * basis[:, 2]}
    alpha = rng.normal(size=num_sin)
    beta = rng.normal(size=num_sin)
    blocks = {
        "1": rng.normal(-1.0, np.sqrt(0.1), size=(num_rows, dim)),
        "2": rng.normal(1.0, np.sqrt(0.1), size=(num_rows, dim)),
        "s": rng.normal(0.0, 1.0, size=(num_rows, dim)),
    }
    columns = {
        f"x{b}_{i}": blocks[b][:, i].astype("float32") for b in ("1", "2", "s") for i in range(dim)
    }
    labels = {}
    for k in ("1", "2"):
        z = blocks[k] @ weights[k] + blocks["s"] @ weights["s"]
        y = z + np.sin(np.outer(z, alpha) + beta).sum(axis=1) + rng.normal(scale=noise, size=num_rows)
        labels[f"y{k}"] = y.astype("float32")
    frame = pd.DataFrame({**columns, **labels})

    def subset(blocks_, label_names):
        names = [f"x{b}_{i}" for b in blocks_ for i in range(dim)]
        schema = Schema([DenseFeature(n) for n in names])
        return (frame[names + label_names].copy(), schema,
                [Task(n, "regression") for n in label_names])

    return {
        "multi": subset(("1", "2", "s"), ["y1", "y2"]),
        "a": subset(("1", "s"), ["y1"]),
        "b": subset(("2", "s"), ["y2"]),
    }


def group_synthetic(num_rows, shares=(0.02, 0.12, 0.86), groups=("new", "low", "high"),
                    num_users=2000, num_items=500, segments=20, deviation=1.0, seed=0):
    """Users in groups of very unequal size whose patterns differ (MFH's setting).

    Users fall into `segments` taste segments and items into as many
    categories; group `g` has its own preference table
    `P_g = (P + deviation * D_g) / sqrt(1 + deviation^2)` over (segment,
    category) (`P`, `D_g` entries `N(0, 1)`: a shared part and a
    group-specific part). A row's score is `s = P_g[segment, category] + c_i`
    (`c_i ~ N(0, 0.5^2)`, an item bias); `like ~ Bernoulli(sigmoid(2 s))` and
    `rating = 3 + s + N(0, 0.5^2)`. Users are assigned to groups so that the
    groups hold about `shares` of the rows. Features: `user_id`, `item_id`,
    `user_segment`, `item_category`, `user_group` (the group's name);
    `p_like` is the true probability (not a feature).

    Returns:
        `(frame, schema, tasks)` with behaviours `like` (binary) and
        `rating` (regression).

    Example:

    >>> frame, schema, tasks = group_synthetic(5000)
    >>> frame.user_group.value_counts(normalize=True).round(1).to_dict()
    {'high': 0.9, 'low': 0.1, 'new': 0.0}
    """
    shares = np.asarray(shares, dtype="float64")
    if len(shares) != len(groups) or (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"shares must be positive, one per group, summing to 1. "
                         f"Received: {shares.tolist()} for {groups}")
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(segments, segments))
    tables = (shared + deviation * rng.normal(size=(len(groups), segments, segments))) / np.sqrt(
        1.0 + deviation**2)
    user_segment = rng.integers(0, segments, num_users)
    item_category = rng.integers(0, segments, num_items)
    item_bias = rng.normal(scale=0.5, size=num_items)
    user_group = rng.choice(len(groups), size=num_users, p=shares)
    u = rng.integers(0, num_users, num_rows)
    i = rng.integers(0, num_items, num_rows)
    g = user_group[u]
    score = tables[g, user_segment[u], item_category[i]] + item_bias[i]
    p_like = 1.0 / (1.0 + np.exp(-2.0 * score))
    frame = pd.DataFrame({
        "user_id": u.astype("int64"), "item_id": i.astype("int64"),
        "user_segment": user_segment[u].astype("int64"),
        "item_category": item_category[i].astype("int64"),
        "user_group": np.asarray(groups)[g],
        "like": (rng.random(num_rows) < p_like).astype("int64"),
        "rating": (3.0 + score + rng.normal(scale=0.5, size=num_rows)).astype("float32"),
        "p_like": p_like,
    })
    schema = Schema([
        SparseFeature("user_id", vocabulary=tuple(range(num_users)), dtype="int64"),
        SparseFeature("item_id", vocabulary=tuple(range(num_items)), dtype="int64"),
        SparseFeature("user_segment", vocabulary=tuple(range(segments)), dtype="int64"),
        SparseFeature("item_category", vocabulary=tuple(range(segments)), dtype="int64"),
        SparseFeature("user_group", vocabulary=tuple(groups)),
    ])
    return frame, schema, [Task("like"), Task("rating", "regression")]
