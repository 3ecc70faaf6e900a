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


def fdn_synthetic(num_rows, dim=32, scales=(1.0, 1.0, 1.0), num_sin=10, variance_reading=True,
                  delta_scale=1.0, orthogonal=False, seed=0):
    """FDN's synthetic regression data, Eq. 5-11 of its appendix (Zhou et al., AAAI 2023).

    1. Unit vectors `u1, u2, us` in R^d (Eq. 5; independent normalised
       Gaussians: the equation asks unit length only) and weights
       `w_k = c_k u_k` (Eq. 6).
    2. Latent inputs `x1 ~ N(-1, 0.1)`, `x2 ~ N(1, 0.1)`, `xs ~ N(0, 1)`.
    3. Labels (Eq. 7-8): `y_k = s + phi(w_k^T x_k) + eps_k` with the shared
       term `s = phi(w_s^T x_s)`, the same value in both tasks, and
       `phi(z) = z + sum_{i=1..m} sin(alpha_i z + beta_i)`, `eps_k ~ N(0, 0.01)`.
    4. Features (Eq. 9-11), column `i` of each data set:
       `h(a_i) = sin(delta_i a_i + gamma_i) + cos(delta_i a_i + gamma_i) + noise`
       with `a_i = u1_i x1_i + us_i xs_i` for data set A (task 1's oracle),
       `u2_i x2_i + us_i xs_i` for B (task 2's) and
       `u1_i x1_i + u2_i x2_i + us_i xs_i` for the multi-task set: there the
       two tasks' inputs are mixed inside every column, so an oracle on A
       (B) is an upper bound for any model on the multi-task set.

    Constants the paper leaves open, and our choices: `N(mu, 0.1)` and
    `N(0, 0.01)` read as variances (standard notation; `variance_reading=
    False` reads standard deviations); `d = 32` (at d = 100 the per-column
    signal `delta_i u_i ~ 0.1` is as small as the noise and the oracle is no
    reliable upper bound); `m = 10`; `alpha, beta, delta, gamma ~ N(0, 1)`,
    drawn once per seed; `c1 = c2 = cs = 1`; fresh noise per entry.

    Args:
        num_rows: int. Rows to draw; the three data sets share them row by row.
        dim: int. `d`, columns per data set. Defaults to `32`.
        scales: `(c1, c2, cs)`. Defaults to `(1, 1, 1)`.
        num_sin: int. `m`. Defaults to `10`.
        variance_reading: bool. See above. Defaults to `True`.
        delta_scale: float. Multiplies `delta`. Defaults to `1.0`.
        orthogonal: bool. Orthonormal `u` (MMoE's generator) instead of
            independent unit vectors. Defaults to `False`.
        seed: int. Seeds everything drawn, parameters included.

    Returns:
        `{"multi": (frame, schema, tasks), "a": (...), "b": (...)}`; the
        multi-task set has columns `x_0 ..` and labels `y1`, `y2`, set A
        `xa_0 ..` and `y1`, set B `xb_0 ..` and `y2`; dense features
        standardised with the statistics of all rows.

    Example:

    >>> sets = fdn_synthetic(100, dim=4)
    >>> sorted(sets), len(sets["multi"][1].dense), len(sets["a"][1].dense)
    (['a', 'b', 'multi'], 4, 4)
    """
    if int(num_rows) < 1 or int(dim) < 2:
        raise ValueError(f"num_rows must be >= 1 and dim >= 2. Received: {num_rows}, {dim}")
    rng = np.random.default_rng(seed)
    sd_x = np.sqrt(0.1) if variance_reading else 0.1
    sd_noise = np.sqrt(0.01) if variance_reading else 0.01
    if orthogonal:
        u1, u2, us = np.linalg.qr(rng.normal(size=(dim, 3)))[0].T
    else:
        u1, u2, us = (v / np.linalg.norm(v) for v in rng.normal(size=(3, dim)))
    c1, c2, cs = scales
    w1, w2, ws = c1 * u1, c2 * u2, cs * us
    alpha, beta = rng.normal(size=num_sin), rng.normal(size=num_sin)
    delta, gamma = delta_scale * rng.normal(size=dim), rng.normal(size=dim)
    x1 = rng.normal(-1.0, sd_x, size=(num_rows, dim))
    x2 = rng.normal(1.0, sd_x, size=(num_rows, dim))
    xs = rng.normal(0.0, 1.0, size=(num_rows, dim))

    def phi(z):
        return z + np.sin(np.outer(z, alpha) + beta).sum(axis=1)

    shared = phi(xs @ ws)
    labels = {"y1": shared + phi(x1 @ w1) + rng.normal(0.0, sd_noise, num_rows),
              "y2": shared + phi(x2 @ w2) + rng.normal(0.0, sd_noise, num_rows)}

    def h(mixed):
        angle = delta * mixed + gamma
        return np.sin(angle) + np.cos(angle) + rng.normal(0.0, sd_noise, mixed.shape)

    features = {"a": h(u1 * x1 + us * xs), "b": h(u2 * x2 + us * xs),
                "multi": h(u1 * x1 + u2 * x2 + us * xs)}
    prefix = {"a": "xa", "b": "xb", "multi": "x"}
    label_names = {"a": ["y1"], "b": ["y2"], "multi": ["y1", "y2"]}
    sets = {}
    for name in ("multi", "a", "b"):
        columns = {f"{prefix[name]}_{i}": features[name][:, i].astype("float32")
                   for i in range(dim)}
        frame = pd.DataFrame({**columns,
                              **{y: labels[y].astype("float32") for y in label_names[name]}})
        schema = Schema([DenseFeature(c, mean=float(v.mean()), variance=float(v.var()))
                         for c, v in columns.items()])
        sets[name] = (frame, schema, [Task(y, "regression") for y in label_names[name]])
    return sets


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


def selection_synthetic(num_rows, shared=2, specific=2, noise=6, vocabulary=50, effect=1.0,
                        seed=0):
    """Two binary tasks whose labels depend on planted fields only (MultiSFS's test bed).

    Every field is categorical with `vocabulary` uniformly drawn values.
    Task `a` reads the `shared` fields `s0..` and its own `specific` fields
    `a0..`, task `b` the shared fields and `b0..`; the `noise` fields `n0..`
    are read by no task. For a task and a field it reads, each value has an
    effect drawn from `N(0, effect^2)` (a shared field has an independent
    effect per task), and `P(y = 1) = sigmoid(sum of the effects + c)`, `c`
    centring the rate near 0.3.

    Returns:
        `(frame, schema, tasks, planted)`: `planted[task]` lists the fields
        the task's label depends on.
    """
    rng = np.random.default_rng(seed)
    names = ([f"s{i}" for i in range(shared)] + [f"a{i}" for i in range(specific)]
             + [f"b{i}" for i in range(specific)] + [f"n{i}" for i in range(noise)])
    values = {n: rng.integers(0, vocabulary, num_rows) for n in names}
    planted = {"a": [n for n in names if n[0] in "sa"], "b": [n for n in names if n[0] in "sb"]}
    frame = pd.DataFrame({n: v.astype("int64") for n, v in values.items()})
    for task, fields in planted.items():
        logit = sum(rng.normal(0, effect, vocabulary)[values[n]] for n in fields)
        logit = logit - np.quantile(logit, 0.7)
        frame[task] = (rng.random(num_rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    schema = Schema([SparseFeature(n, vocabulary=tuple(range(vocabulary)), dtype="int64")
                     for n in names])
    return frame, schema, [Task("a"), Task("b")], planted


def _offset_for_rate(logits, rate):
    """The constant `c` with `mean(sigmoid(logits + c)) == rate` (bisection)."""
    low, high = -40.0, 40.0
    for _ in range(80):
        middle = (low + high) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logits + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def preference_conflict(num_rows, num_users=200, num_items=120, shared_rank=2, specific_rank=12,
                        shared_weight=0.7, specific_weight=2.0, bias_scale=0.5,
                        rates=(0.28, 0.016), popularity=0.0, side_fields=False, seed=0):
    """A dense and a sparse task whose preferences one shared embedding cannot hold.

    The setting of STEM-Net's premise (Su et al., AAAI 2024, Fig. 1): a dense
    task (`finish`, 28% positives, TikTok's rate) and a sparse one (`like`,
    1.6%) over the same users and items, where each task has user and item
    preferences of its own. Every user and item has independent latent
    factors: shared `s` (rank `shared_rank`), finish-specific `f` and
    like-specific `l` (rank `specific_rank` each), entries `N(0, r^-1/2)` so
    that every inner product has unit variance, and the logits are

        z_finish = c_F + w_s <s_u, s_i> + w_k <f_u, f_i> + a_u + b_i
        z_like   = c_L + w_s <s_u, s_i> + w_k <l_u, l_i> + a'_u + b_i

    with per-user biases `a, a'` and per-item biases `b` from `N(0, bias_scale^2)`
    and offsets `c` found by bisection so that the mean probabilities are
    `rates`. The only features are the ids: no group or attribute column
    reveals a factor. With the defaults, `shared_rank + 2 * specific_rank = 26`
    dimensions are needed and a 16-dimensional table holds each task's
    `2 + 12 = 14` but not both: a shared table must trade one task for the
    other, task-specific tables need not. 400,000 rows give every user about
    25 `like` positives (every item about 40) in an 80% training split, so a
    single-task model learns the sparse task.

    Args:
        num_rows: int.
        num_users, num_items: int. Defaults to `200`, `120`.
        shared_rank, specific_rank: int. Defaults to `2`, `12`.
        shared_weight, specific_weight: float (`w_s`, `w_k`). Defaults to
            `0.7`, `2.0`.
        bias_scale: float. Defaults to `0.5`.
        rates: `(finish, like)` mean probabilities. Defaults to `(0.28, 0.016)`.
        popularity: float. Zipf exponent of how often each id is drawn
            (`0`: uniform; `1.1`: a head of data-rich ids and a long tail).
        side_fields: bool. Adds `user_segment` and `item_category`: 32
            quantile buckets of the first shared factor of the user / item
            (side fields that leak part of the shared preference, for
            STEM-Net's Table 5 variants). Defaults to `False`.
        seed: int. Seeds everything drawn.

    Returns:
        `(frame, schema, tasks)`; the frame also holds the true probabilities
        `p_finish`, `p_like` (not features).

    Example:

    >>> frame, schema, tasks = preference_conflict(20_000, seed=0)
    >>> list(schema.names), [t.name for t in tasks]
    (['user_id', 'item_id'], ['finish', 'like'])
    >>> round(float(frame.p_like.mean()), 3)
    0.016
    """
    if int(num_rows) < 1 or min(num_users, num_items, shared_rank, specific_rank) < 1:
        raise ValueError("num_rows, num_users, num_items and the ranks must be >= 1.")
    if not all(0.0 < r < 1.0 for r in rates) or len(rates) != 2:
        raise ValueError(f"rates must be two probabilities in (0, 1). Received: {rates}")
    rng = np.random.default_rng(seed)

    def factors(count, rank):
        return rng.normal(0.0, rank ** -0.25, size=(count, rank))

    shared_u, shared_i = factors(num_users, shared_rank), factors(num_items, shared_rank)
    finish_u, finish_i = factors(num_users, specific_rank), factors(num_items, specific_rank)
    like_u, like_i = factors(num_users, specific_rank), factors(num_items, specific_rank)
    bias_finish, bias_like = rng.normal(0.0, bias_scale, size=(2, num_users))
    bias_item = rng.normal(0.0, bias_scale, size=num_items)

    def ids(count):
        weights = np.arange(1, count + 1, dtype="float64") ** -float(popularity)
        order = rng.permutation(count)  # which id is the most popular: random
        return order[rng.choice(count, size=num_rows, p=weights / weights.sum())]

    user, item = ids(num_users), ids(num_items)
    shared = np.sum(shared_u[user] * shared_i[item], axis=1)
    z_finish = (shared_weight * shared + specific_weight * np.sum(finish_u[user] * finish_i[item], 1)
                + bias_finish[user] + bias_item[item])
    z_like = (shared_weight * shared + specific_weight * np.sum(like_u[user] * like_i[item], 1)
              + bias_like[user] + bias_item[item])
    p_finish = 1.0 / (1.0 + np.exp(-(z_finish + _offset_for_rate(z_finish, rates[0]))))
    p_like = 1.0 / (1.0 + np.exp(-(z_like + _offset_for_rate(z_like, rates[1]))))
    frame = pd.DataFrame({"user_id": user.astype("int64"), "item_id": item.astype("int64")})
    features = [SparseFeature("user_id", vocabulary=tuple(range(num_users)), dtype="int64"),
                SparseFeature("item_id", vocabulary=tuple(range(num_items)), dtype="int64")]
    if side_fields:
        for column, base, values in (("user_segment", user, shared_u[:, 0]),
                                     ("item_category", item, shared_i[:, 0])):
            edges = np.quantile(values, np.linspace(0, 1, 33)[1:-1])
            frame[column] = np.digitize(values, edges)[base].astype("int64")
            features.append(SparseFeature(column, vocabulary=tuple(range(32)), dtype="int64"))
    frame["finish"] = (rng.random(num_rows) < p_finish).astype("int64")
    frame["like"] = (rng.random(num_rows) < p_like).astype("int64")
    frame["p_finish"], frame["p_like"] = p_finish.astype("float32"), p_like.astype("float32")
    return frame, Schema(features), [Task("finish"), Task("like")]
