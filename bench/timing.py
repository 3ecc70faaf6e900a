"""The peers harness's timed window for `model.fit`: an epoch after its first steps."""

import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Times an epoch from the end of its step `warmup_steps` to its end.

    The peers' runners time their steps the same way (the first steps hold
    tracing and warm-up). `seconds` is the window's wall time.

    Args:
        warmup_steps: int. Steps left out at the epoch's start (at least 1).
    """

    def __init__(self, warmup_steps):
        super().__init__()
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be at least 1, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.started = self.ended = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup_steps - 1:
            self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.ended = time.perf_counter()

    @property
    def seconds(self):
        if self.started is None:
            raise RuntimeError(f"the epoch had no more than {self.warmup_steps} steps: nothing timed")
        return self.ended - self.started
