"""bench/peers.py: a run of some runners tabulates those runners, and their ratio, only."""

import json
import os
import sys

import pytest

from bench import peers


def record(train, rss):
    return {"data": "synth", "model": "mmoe", "status": "ok", "train_sps": {"median": train},
            "train_sps_end_to_end": None, "infer_sps": {"median": 1000.0},
            "latency_b1_best_p50_ms": 1.0, "peak_rss_mib": rss,
            "quality": {"epoch1": {"t0": {"auc": 0.78}}}}


def report(tmp_path, runners, *options):
    """bench/peers.py --report-only on one round of raw records, one per runner."""
    raw = tmp_path / "peers_raw"
    raw.mkdir()
    for runner, (train, rss) in runners.items():
        (raw / f"{runner}.json").write_text(json.dumps([record(train, rss)]))
    peers.main(["--peers", str(tmp_path), "--venvs", str(tmp_path), "--rounds", "1", "--out",
                str(tmp_path), "--report-only", *options])


def test_a_subset_of_runners_is_tabulated_alone(tmp_path):
    report(tmp_path, {"tfmtl_adam": (30_000.0, 1200.0), "rechub": (12_000.0, 800.0)})
    lines = (tmp_path / "peers.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| config"))
    assert header.split(" | ")[2:4] == ["tfmtl_adam", "rechub"] and "deepctr" not in header
    train = next(line for line in lines if "| training samples/s |" in line)
    assert train.rstrip(" |").endswith("| 2.50")
    rss = next(line for line in lines if "peak RSS" in line)
    assert rss.rstrip(" |").endswith("| 1.50")


def test_an_unknown_runner_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["peers.py", "--peers", str(tmp_path), "--venvs",
                                      str(tmp_path), "--runners", "tfmtl_adam,deepctr",
                                      "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        peers.main()
    assert "unknown runner(s) ['deepctr']" in capsys.readouterr().err


def test_bfloat16_runners_get_a_ratio_of_their_own(tmp_path):
    report(tmp_path, {"tfmtl_adam": (30_000.0, 1200.0), "tfmtl_adam_bf16": (45_000.0, 1300.0),
                      "rechub": (12_000.0, 800.0)})
    lines = (tmp_path / "peers.md").read_text().splitlines()
    train = next(line for line in lines if "| training samples/s |" in line)
    assert train.rstrip(" |").endswith("| 2.50 | 3.75")
    command = peers.command("tfmtl_lazy_adam_bf16", "synth", "mmoe", "x.json",
                            peers.argparse.Namespace(epochs=1, peers=str(tmp_path)))
    assert command[command.index("--optimizer") + 1] == "lazy_adam"
    assert command[command.index("--precision") + 1] == "mixed_bfloat16"
    assert "--jit" not in command
    assert "--precision" not in peers.command("tfmtl_adam", "synth", "mmoe", "x.json",
                                              peers.argparse.Namespace(epochs=1, peers="p"))


def test_measures_choose_the_rows_and_throughput_and_serving_delegate(tmp_path, monkeypatch):
    report(tmp_path, {"tfmtl_adam": (30_000.0, 1200.0), "deepctr_keras3": (20_000.0, 1000.0)},
           "--measures", "p50,infer", "--name", "serving")
    rows = [line.split(" | ")[1] for line in (tmp_path / "serving.md").read_text().splitlines()
            if line.startswith("| synth")]
    assert rows == ["inference samples/s, batch 4096", "batch-1 p50 ms"]
    with pytest.raises(SystemExit):
        peers.main(["--peers", "p", "--venvs", "v", "--measures", "p99"])

    from bench import serving, throughput

    seen = []
    monkeypatch.setattr(peers, "main", lambda argv: seen.append(argv))
    for module in (throughput, serving):
        monkeypatch.setattr(sys, "argv", [module.__name__, "--peers", "H", "--venvs", "V",
                                          "--out", "D"])
        module.main()
    measures = [argv[argv.index("--measures") + 1] for argv in seen]
    assert measures == ["train,whole,infer,rss,auc", "p50,infer"]
    assert all(argv[argv.index("--out") + 1] == "D" for argv in seen)
    monkeypatch.setattr(sys, "argv", ["throughput", "--peers", "H"])
    with pytest.raises(SystemExit, match="--peers needs --venvs"):
        throughput.main()


def test_an_earlier_commit_runs_after_ours_and_gets_its_own_ratio(tmp_path):
    report(tmp_path, {"tfmtl_adam": (30_000.0, 1200.0), "tfmtl_adam_before": (24_000.0, 1000.0),
                      "rechub": (12_000.0, 800.0)}, "--before", "abc123")
    text = (tmp_path / "peers.md").read_text()
    assert "commit abc123" in text
    header = next(line for line in text.splitlines() if line.startswith("| config"))
    assert header.split(" | ")[2:5] == ["tfmtl_adam", "tfmtl_adam_before", "rechub"]
    train = next(line for line in text.splitlines() if "| training samples/s |" in line)
    # against the best peer: this checkout's runner only (2.50), not the earlier one's
    assert train.rstrip(" |").endswith("| 2.50 |  | 1.25")
    rss = next(line for line in text.splitlines() if "peak RSS" in line)
    assert rss.rstrip(" |").endswith("| 1.20")
    args = peers.argparse.Namespace(epochs=1, peers="p")
    now = peers.command("tfmtl_adam", "synth", "mmoe", "x.json", args)
    then = peers.command("tfmtl_adam_before", "synth", "mmoe", "x.json", args, "/old")
    assert then[1] == "/old/bench/peer_tfmtl.py" and then[2:] == now[2:]


def test_before_runs_each_tfmtl_runner_after_ours_from_an_archive_it_removes(tmp_path,
                                                                            monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return peers.subprocess.CompletedProcess(command, 0, stdout=b"")

    monkeypatch.setattr(peers.subprocess, "run", fake_run)
    args = peers.argparse.Namespace(epochs=1, peers="p", venvs="v", before="abc123", rounds=1,
                                    configs="ml100k:mmoe", runners="tfmtl_adam,rechub")
    raw = tmp_path / "raw"
    raw.mkdir()
    peers.run(args, str(raw))
    assert calls[0][:3] == ["git", "archive", "abc123"] and calls[1][0] == "tar"
    extracted = calls[1][calls[1].index("-C") + 1]
    scripts = [c[1] for c in calls[2:]]
    assert scripts[0] == os.path.join(peers.HERE, "peer_tfmtl.py")
    assert scripts[1] == os.path.join(extracted, "bench", "peer_tfmtl.py")
    assert scripts[2].endswith("run_rechub.py") and len(scripts) == 3
    assert not os.path.exists(extracted)
