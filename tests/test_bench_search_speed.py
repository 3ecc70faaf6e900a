"""bench/search_speed.py's accounting of the profiler's op times and its report."""

import argparse
import json

from bench import search_speed


def test_op_times_are_summed_by_type_and_grouped_by_part():
    times = {"supernet/expert_0/einsum/Einsum:_MklEinsum": 3.0,
             "supernet/expert_1/einsum/Einsum:_MklEinsum": 2.0,
             "a/dense/MatMul:_MklMatMul": 4.0, "b/conv:_MklNativeConv2D": 1.0,
             "drop/x:StatelessRandomUniformFullIntV2": 5.0, "drop/y:SelectV2": 1.5,
             "norm/z:_MklNativeFusedBatchNormV3": 2.5, "norm/m:Mean": 0.5, "w:Mul": 7.0}
    assert search_speed.op_types(times)["_MklEinsum"] == 5.0
    parts = search_speed.groups(times)
    assert parts == {"einsum, stack": 5.0, "matrix products and convolutions": 5.0,
                     "dropout (random numbers, select)": 6.5,
                     "batch normalisation, reductions": 3.0,
                     "other element-wise and bookkeeping": 7.0}


def test_report_gives_the_medians_speed_up_and_parts(tmp_path):
    payload = {"before": "abc1234", "after": "def5678 a change", "dirty": False,
               "times": {"before": [3.0, 2.0, 4.0], "after": [1.0, 2.0, 1.5]},
               "traced": {"before": 100.0, "after": 90.0},
               "profiles": {"before": {"x:_MklEinsum": 4.0, "y:_MklMatMul": 2.0},
                            "after": {"y:_MklMatMul": 2.0}}}
    args = argparse.Namespace(data="movielens", out=str(tmp_path))
    search_speed.report(args, payload)
    text = (tmp_path / "search_speed_movielens.md").read_text()
    assert "| before | 3.000 | 3.00 / 2.00 / 4.00 | 100 |" in text
    assert "Speed-up: 2.00x." in text  # 3.0 / 1.5
    assert "| einsum, stack | 2 | 0 |" in text  # ms per pair: 2 pairs profiled
    assert "| all ops | 3 | 1 |" in text
    assert json.loads((tmp_path / "search_speed_movielens.json").read_text()) == payload
