"""Paired comparisons over seeds for the benchmarks (NumPy only).

Every benchmark that compares two models runs both on the same seeds (same
data split, same initialisation seed), so the per-seed differences are
paired. `paired` summarises them: mean, standard deviation, a 95% t interval,
wins, and the exact two-sided p-value of the sign-flip permutation test (under
"no difference" every difference is as likely positive as negative; with
`n` seeds all `2^n` sign patterns are enumerated, so no distribution is
assumed).
"""

import itertools
import math

import numpy as np

# t_{0.975, df} for df = 1..30 (two-sided 95%).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df):
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be >= 1. Received: {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def sign_flip_p(differences):
    """Exact two-sided p of the paired sign-flip permutation test on the mean."""
    d = np.asarray(differences, dtype="float64")
    if len(d) > 16:
        raise ValueError("The exact test enumerates 2^n patterns; use at most 16 seeds.")
    observed = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    means = np.abs((signs * d).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


def rank_sum_p(a, b):
    """Exact one-sided p of the rank-sum (Mann-Whitney) test that `a` lies above `b`.

    The statistic counts the pairs `(x in a, y in b)` with `x > y` (a tie
    counts one half); under "no difference" every way of choosing which
    `len(a)` of the pooled values are `a`'s is as likely, and all of them
    are enumerated, so no distribution is assumed. With every `a` above every
    `b`, p is `1 / C(len(a) + len(b), len(a))` (four against three: 1/35).
    """
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if len(a) < 1 or len(b) < 1:
        raise ValueError(f"Both groups need a value. Received: {len(a)} and {len(b)}")
    pooled = np.concatenate([a, b])
    if len(pooled) > 20:
        raise ValueError("The exact test enumerates every split; use at most 20 values in all.")

    def statistic(x, y):
        return float(np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :]))

    observed = statistic(a, b)
    above = 0
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        mask = np.zeros(len(pooled), dtype=bool)
        mask[list(chosen)] = True
        above += statistic(pooled[mask], pooled[~mask]) >= observed - 1e-12
    return above / math.comb(len(pooled), len(a))


def paired(differences):
    """Summary of per-seed paired differences `a - b` (positive: `a` ahead).

    Returns:
        dict with `n`, `mean`, `sd`, `low`, `high` (95% t interval of the
        mean), `wins` (seeds with `a` ahead) and `p` (sign-flip test).
    """
    d = np.asarray(differences, dtype="float64")
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = t975(n - 1) * sd / np.sqrt(n) if n > 1 else float("nan")
    return dict(n=n, mean=float(d.mean()), sd=sd, low=float(d.mean() - half),
                high=float(d.mean() + half), wins=int(np.sum(d > 0)), p=sign_flip_p(d))


def describe(summary, digits=4):
    """`+0.0123 [−0.0010, +0.0256], 4/5 ahead, p=0.19` for a `paired` summary."""
    s, f = summary, f"+.{digits}f"
    return (f"{s['mean']:{f}} [{s['low']:{f}}, {s['high']:{f}}], "
            f"{s['wins']}/{s['n']} ahead, p={s['p']:.2f}")
