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


def test_write_results_prints_and_writes_the_three_files(tmp_path, capsys):
    import json

    import pandas as pd

    from bench.output import write_results

    frame = pd.DataFrame({"model": ["a"], "auc": [0.75]})
    write_results(str(tmp_path / "out"), "x", "# title", {"n": np.int64(3), "v": np.float32(0.5)},
                  frame)
    assert "# title" in capsys.readouterr().out
    assert (tmp_path / "out" / "x.md").read_text() == "# title\n"
    assert json.loads((tmp_path / "out" / "x.json").read_text()) == {"n": 3, "v": 0.5}
    assert pd.read_csv(tmp_path / "out" / "x.csv").equals(frame)
    write_results(None, "y", "printed only", {})
    assert not (tmp_path / "y.md").exists()


def test_rank_sum_p_enumerates_every_split():
    from bench.stats import rank_sum_p

    assert rank_sum_p([5, 6, 7, 8], [1, 2, 3]) == pytest.approx(1 / 35)  # only one split as far
    assert rank_sum_p([1, 2, 3], [5, 6, 7, 8]) == pytest.approx(1.0)  # every split reaches U=0
    # a = [3, 1], b = [2]: U = 1 (3 > 2); of the 3 splits ({3,1}, {3,2}, {1,2}) U >= 1 for two.
    assert rank_sum_p([3, 1], [2]) == pytest.approx(2 / 3)
    # A tie counts one half: a = [2], b = [2, 1] gives U = 1.5; splits a=[2] (twice, 1.5) and
    # a=[1] (0), so p = 2/3.
    assert rank_sum_p([2], [2, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="Both groups"):
        rank_sum_p([], [1.0])
