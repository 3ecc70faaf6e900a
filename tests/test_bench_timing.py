"""bench.timing.StepTimer: the peers harness's window, the steps after the warm-up."""

import types

import keras
import numpy as np
import pytest

from bench import timing


class Clock(keras.callbacks.Callback):
    """A clock that reads the number of steps ended so far."""

    now = 0.0

    def on_train_batch_end(self, batch, logs=None):
        Clock.now = float(batch + 1)


def fit(timer, rows):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((rows, 3), "float32"), np.ones((rows, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False, callbacks=[Clock(), timer])


def test_the_window_is_the_steps_after_the_warm_up(monkeypatch):
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: Clock.now))
    timer = timing.StepTimer(warmup_steps=2)
    fit(timer, rows=10)  # 5 steps: the window holds steps 3, 4 and 5
    assert (timer.started, timer.ended, timer.seconds) == (2.0, 5.0, 3.0)


def test_an_epoch_no_longer_than_the_warm_up_is_refused(monkeypatch):
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: Clock.now))
    timer = timing.StepTimer(warmup_steps=5)
    fit(timer, rows=8)  # 4 steps
    with pytest.raises(RuntimeError, match="no more than 5 steps"):
        timer.seconds
    with pytest.raises(ValueError, match="at least 1"):
        timing.StepTimer(0)
