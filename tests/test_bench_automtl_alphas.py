import json

import pytest

from bench import automtl_alphas

CANDIDATES = ["gating", "mlp_16", "skip"]


def architecture(alphas):
    return {"candidates": {"expert": CANDIDATES, "interaction": ["skip"]},
            "alphas": {"interaction": [1.0], **alphas}}


def test_summarise_counts_the_winners_weights_positions_and_leads():
    arch = architecture({
        "expert_0_block_0": [0.2, 0.1, 0.7],  # skip, then gating: lead 0.5
        "expert_0_block_1": [0.5, 0.3, 0.2],  # gating, then mlp_16: lead 0.2
        "expert_1_block_0": [0.35, 0.25, 0.4],  # skip, then gating: lead 0.05
        "expert_1_block_1": [0.45, 0.1, 0.45 - 1e-6],  # gating by a hair, then skip
    })
    s = automtl_alphas.summarise(arch)
    assert s["blocks"] == 4
    assert dict(s["won"]) == {"skip": 2, "gating": 2}
    assert s["skip_weight"] == pytest.approx((0.7 + 0.2 + 0.4 + 0.45 - 1e-6) / 4)
    assert s["gating_weight"] == pytest.approx((0.2 + 0.5 + 0.35 + 0.45) / 4)
    assert s["uniform"] == pytest.approx(1 / 3)
    assert s["skip_won_by_position"] == {0: 1.0, 1: 0.0}
    assert s["leader_margin"] == pytest.approx(0.125)  # median of 0.5, 0.2, 0.05, 1e-6
    assert s["leaders_skip_gating"] == 3  # all but expert 0's block 1 (gating, then mlp_16)


def test_summarise_refuses_an_architecture_without_expert_alphas():
    with pytest.raises(ValueError, match="no expert block"):
        automtl_alphas.summarise(architecture({}))


def test_table_and_recorded_read_every_search_with_expert_alphas(tmp_path):
    arch = architecture({"expert_0_block_0": [0.1, 0.2, 0.7], "expert_1_block_0": [0.1, 0.8, 0.1]})
    runs = {"automtl": {"architecture": arch, "history": []},
            "w/o INT": {"architecture": arch, "history": []},
            "mmoe": {"auc": 0.7}}
    (tmp_path / "automtl_synthetic.json").write_text(json.dumps({"synthetic": runs}))
    found = automtl_alphas.recorded(str(tmp_path), "synthetic")
    assert [label for label, _ in found] == ["automtl", "w/o INT"]
    lines, frame = automtl_alphas.table(
        [("synthetic", label, automtl_alphas.summarise(a)) for label, a in found])
    assert lines[2].startswith("| synthetic | automtl | 1 / 0 / 1 of 2 | mlp_16 1 | 0.400 / 0.100")
    assert list(frame.won_others) == [1, 1] and list(frame.skip_won_position_0) == [0.5, 0.5]
    with pytest.raises(SystemExit, match="automtl_movielens.json does not exist"):
        automtl_alphas.recorded(str(tmp_path), "movielens")
