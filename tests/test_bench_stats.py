"""The paired statistics every benchmark reports."""

import numpy as np
import pytest

from bench.stats import paired, sign_flip_p, t975


def test_sign_flip_p_enumerates_every_sign_pattern():
    assert sign_flip_p([1.0] * 5) == pytest.approx(2 / 32)  # all + or all -
    assert sign_flip_p([1.0, -1.0]) == pytest.approx(1.0)
    assert sign_flip_p([3.0, 1.0, 1.0]) == pytest.approx(2 / 8)  # only +++ and --- reach |sum| 5


def test_paired_interval_is_the_t_interval():
    d = [0.5, 1.5, 1.0, 2.0, 0.0]
    s = paired(d)
    half = t975(4) * np.std(d, ddof=1) / np.sqrt(5)
    assert (s["mean"], s["low"], s["high"], s["wins"]) == pytest.approx((1.0, 1.0 - half, 1.0 + half, 4))
    assert t975(4) == pytest.approx(2.776)
