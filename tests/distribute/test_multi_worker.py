"""Multi-worker training on `MultiWorkerMirroredStrategy`: two real worker processes on
127.0.0.1 with `TF_CONFIG`, against one worker with the same global batch."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tfmtl.checkpoint import completed_steps

WORKER = os.path.join(os.path.dirname(__file__), "worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Measured: 6e-7 (float summation order across replicas); the masked task's loss is
# normalised over the global batch, without which the gap was 8e-4 after 6 steps.
TOLERANCE = 1e-5


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster_env(index, ports, **extra):
    config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
              "task": {"type": "worker", "index": index}}
    return dict(os.environ, TF_CONFIG=json.dumps(config), CUDA_VISIBLE_DEVICES="-1",
                PYTHONPATH=ROOT, **extra)  # the working tree's tfmtl, not an installed copy


def _start(tmp_path, index, ports, out, checkpoint_dir=None, tag="", **env):
    log = open(tmp_path / f"worker{index}{tag}.log", "w")
    args = [sys.executable, WORKER, str(out)] + ([str(checkpoint_dir)] if checkpoint_dir else [])
    return subprocess.Popen(args, env=_cluster_env(index, ports, **env), stdout=log,
                            stderr=subprocess.STDOUT)


def _finish(processes, tmp_path, timeout=300, tag=""):
    with _killed_on_failure(processes):
        for index, process in enumerate(processes):
            rc = process.wait(timeout=timeout)
            assert rc == 0, (tmp_path / f"worker{index}{tag}.log").read_text()[-3000:]


@contextlib.contextmanager
def _killed_on_failure(processes):
    """Kills the processes still running when the block fails (a timeout, an assertion)."""
    try:
        yield
    except BaseException:
        for process in processes:
            if process.poll() is None:
                process.kill()
        raise


def _load(path):
    with np.load(path) as saved:
        weights = [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)]
        return weights, json.loads(str(saved["history"]))


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """The same training in one process, no strategy: the reference."""
    out = tmp_path_factory.mktemp("one") / "one.npz"
    sys.path.insert(0, os.path.dirname(WORKER))
    try:
        import worker

        worker.main(str(out))
    finally:
        sys.path.remove(os.path.dirname(WORKER))
    return _load(out)


def _assert_same(weights, reference, tolerance):
    assert len(weights) == len(reference)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(weights, reference))
    assert gap <= tolerance, gap


@pytest.mark.slow
def test_two_workers_train_like_one_worker_with_the_global_batch(tmp_path, one_worker):
    ports = _ports(2)
    outs = [tmp_path / f"w{i}.npz" for i in range(2)]
    _finish([_start(tmp_path, i, ports, outs[i]) for i in range(2)], tmp_path)
    (w0, h0), (w1, h1) = _load(outs[0]), _load(outs[1])
    _assert_same(w0, w1, 0.0)  # mirrored: the very same weights on both workers
    _assert_same(w0, one_worker[0], TOLERANCE)
    # Metrics are reduced across workers: the epoch's AUC and loss over every row.
    assert h0 == h1
    for key in ("loss", "click_auc", "like_auc", "val_loss", "val_like_auc"):
        np.testing.assert_allclose(h0[key], one_worker[1][key], rtol=1e-4, err_msg=key)


@pytest.mark.slow
def test_a_killed_worker_restarts_and_training_resumes_from_the_checkpoint(tmp_path, one_worker):
    """SIGKILL one worker mid-epoch: the other fails (its collective aborts, as a cluster
    manager sees), both restart, resume from the chief's last checkpoint, and end with the
    weights of an uninterrupted run: no step lost or repeated beyond the checkpoint. A restart
    where one worker does not see the checkpoint folder stops with a clear error first."""
    ports, checkpoints = _ports(2), tmp_path / "checkpoints"
    outs = [tmp_path / f"w{i}.npz" for i in range(2)]
    workers = [_start(tmp_path, i, ports, outs[i], checkpoints) for i in range(2)]
    deadline, state = time.time() + 300, None
    with _killed_on_failure(workers):
        while time.time() < deadline:  # into the second epoch, past its first checkpoint
            try:
                state = completed_steps(checkpoints)
            except (OSError, ValueError, KeyError):  # being renamed into place
                state = None
            if state is not None and state[0] >= 1 and state[1] > 0:
                break
            assert workers[0].poll() is None and workers[1].poll() is None, "a worker ended early"
            time.sleep(0.05)
        assert state is not None and state[0] >= 1, state
        workers[1].send_signal(signal.SIGKILL)
        killed = time.time()
        survivor = workers[0].wait(timeout=180)
        assert survivor != 0  # its collective ops aborted once the peer died
    saved = completed_steps(checkpoints)
    assert saved is not None and saved >= state
    print(f"killed after checkpoint {state} (epoch, step); the other worker stopped "
          f"{time.time() - killed:.0f} s later; restarting from {saved}")
    # Restarted with a checkpoint folder that worker 1 does not see: both stop, saying so,
    # before a step, and the chief's checkpoint is left as it was.
    elsewhere = tmp_path / "not_shared"
    ports = _ports(2)
    mismatched = [_start(tmp_path, 0, ports, outs[0], checkpoints, "m"),
                  _start(tmp_path, 1, ports, outs[1], elsewhere, "m")]
    with _killed_on_failure(mismatched):
        for index, process in enumerate(mismatched):
            assert process.wait(timeout=300) != 0
            log = (tmp_path / f"worker{index}m.log").read_text()
            assert "The workers differ in the epoch to resume from" in log, log[-3000:]
    assert completed_steps(checkpoints) == saved
    ports = _ports(2)
    restarted = [_start(tmp_path, i, ports, outs[i], checkpoints, "b")
                 for i in range(2)]
    _finish(restarted, tmp_path, tag="b")
    log = (tmp_path / "worker0b.log").read_text()
    assert f"epoch {saved[0] + 1}, after step {saved[1]}" in log, log[-2000:]
    (w0, _), (w1, _) = _load(outs[0]), _load(outs[1])
    _assert_same(w0, w1, 0.0)
    _assert_same(w0, one_worker[0], TOLERANCE)
    assert not (checkpoints / "state.npz").exists()  # the chief removes it at the end


@pytest.mark.slow
def test_mirrored_strategy_trains_like_one_device():
    """MirroredStrategy over two logical CPUs: Keras' own `fit`, with tfmtl's global-batch
    loss normalisation, against no strategy."""
    result = subprocess.run([sys.executable, os.path.join(os.path.dirname(WORKER), "mirrored.py")],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, CUDA_VISIBLE_DEVICES="-1", PYTHONPATH=ROOT),
                            cwd=os.path.dirname(WORKER))
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["replicas"] == 2
    assert measured["gap"] <= TOLERANCE, measured["gap"]
    for key in ("loss", "like_auc", "val_loss"):
        np.testing.assert_allclose(measured["history"][key], measured["one"][key], rtol=1e-4)


@pytest.mark.slow
def test_workers_with_different_batches_stop_with_a_clear_error(tmp_path):
    """A worker that shuffles with another seed builds other global batches: every worker
    stops with an error that says so, instead of training on mismatched slices or waiting."""
    ports = _ports(2)
    workers = [_start(tmp_path, i, ports, tmp_path / f"w{i}.npz", WORKER_SHUFFLE_SEED=str(i))
               for i in range(2)]
    with _killed_on_failure(workers):
        for index, process in enumerate(workers):
            assert process.wait(timeout=300) != 0
            log = (tmp_path / f"worker{index}.log").read_text()
            assert "ValueError: The workers differ in the first global batch" in log, log[-3000:]
            assert "Epoch 1/" not in log  # stopped before the first step
            assert not (tmp_path / f"w{index}.npz").exists()


@pytest.mark.slow
def test_command_line_multi_worker_saves_and_exports_on_the_chief_only(tmp_path):
    """`python -m tfmtl train --strategy multi-worker` on two workers with the same command:
    the chief writes --save and --export, the other worker saves into a temporary folder of
    its own and deletes it."""
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"user": rng.integers(0, 30, 2000), "price": rng.normal(size=2000)})
    rows["click"] = ((rows.user % 2 == 0) ^ (rng.random(2000) < 0.1)).astype(int)
    rows.to_parquet(tmp_path / "rows.parquet")
    command = [sys.executable, "-m", "tfmtl", "train", "--model", "mmoe", "--data",
               str(tmp_path / "rows.parquet"), "--labels", "click", "--epochs", "2",
               "--batch-size", "200", "--set", "num_experts=2", "--set", "expert_units=[8]",
               "--strategy", "multi-worker", "--save", str(tmp_path / "m.keras"),
               "--export", str(tmp_path / "served"), "--quiet"]
    ports, scratch = _ports(2), [tmp_path / f"tmp{i}" for i in range(2)]
    workers = []
    for i in range(2):
        scratch[i].mkdir()
        workers.append(subprocess.Popen(
            command, env=_cluster_env(i, ports, TMPDIR=str(scratch[i])), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    with _killed_on_failure(workers):
        outputs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
        assert "Test metrics (200 held-out rows" in output, output[-3000:]
    assert f"saved {tmp_path / 'm.keras'}" in outputs[0] and "not the chief" not in outputs[0]
    said = [line for line in outputs[1].splitlines() if line.startswith("not the chief: saved")]
    assert said and f"saved into {scratch[1] / 'tfmtl_worker_'}" in said[0], outputs[1][-3000:]
    assert not list(scratch[1].iterdir())  # its temporary folder is gone
    assert os.path.exists(tmp_path / "served" / "1" / "saved_model.pb")
    import keras

    import tfmtl  # noqa: F401  (registers the model's classes)

    model = keras.saving.load_model(tmp_path / "m.keras")
    scores = model.predict(rows.head(50), verbose=0)["click"]
    assert np.isfinite(scores).all()
