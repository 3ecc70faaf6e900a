"""`tfmtl.fit`: training with a validation split and early stopping, in one call."""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfmtl import distribute
from tfmtl.checkpoint import Checkpoints, EpochData
from tfmtl.models.multi_task_model import FiniteCheck
from tfmtl.optimizers import Adam


def fit(
    model,
    data,
    validation=0.1,
    epochs=20,
    batch_size=1024,
    patience=2,
    monitor="val_loss",
    mode="auto",
    optimizer=None,
    learning_rate=None,
    seed=0,
    verbose=1,
    tensorboard=None,
    checkpoint_dir=None,
    checkpoint_every="epoch",
    callbacks=(),
    validation_batch_size=8192,
    jit_compile=None,
):
    """Trains a tfmtl model with early stopping and returns Keras' `History`.

    The one training loop of the CLI, the benchmarks and the tests: the
    data becomes a shuffled `tf.data` pipeline (`model.dataset`), training
    stops when `monitor` has not improved for `patience` epochs, and the
    weights of the best epoch are restored.

    Args:
        model: a `tfmtl.MultiTaskModel` (from `zoo.build`). Compiled with
            `optimizer` (default Adam at `learning_rate`, default 1e-3) unless
            it is compiled already and neither is given.
        data: a DataFrame or dict of columns (features, labels, masks), or a
            `tf.data.Dataset` of them (see `MultiTaskModel`).
        validation: a fraction of `data`'s rows held out at random (seeded),
            a DataFrame / dict of columns / dataset, or `None` for no
            validation (then no early stopping: all `epochs` run).
        epochs: int. The most epochs. Defaults to `20`.
        batch_size: int. Defaults to `1024`.
        patience: int. Epochs without improvement before stopping.
        monitor: str. A key of the validation logs, e.g. `"val_loss"`
            (default) or `"val_<task>_auc"` (task by its internal name,
            `model.output_keys`). Checked after the first epoch.
        mode: `"auto"`, `"min"` or `"max"`, as in `keras.callbacks.EarlyStopping`.
        optimizer, learning_rate: see `model`.
        seed: int. Seeds the validation split and the shuffling.
        verbose: 0 (silent), 1 (progress bar) or 2 (one line per epoch).
        tensorboard: a log directory for TensorBoard, or `None`.
        checkpoint_dir: a directory: the whole training state (weights,
            optimizer, epoch and step, early stopping, history) is saved there
            (`tfmtl.checkpoint.Checkpoints`, written then renamed: a kill
            during a write leaves the previous one whole), and a new call
            with the same directory resumes where an interrupted one stopped,
            on the same batches an uninterrupted run would have seen (each
            epoch's row order is a function of `seed` and the epoch). Removed
            when training ends. A run resumed mid-epoch finishes that epoch
            in one `model.fit` call and trains the later ones in a second;
            the callbacks see one training.
        checkpoint_every: `"epoch"` (default) or a number of steps.
        callbacks: more Keras callbacks.
        validation_batch_size: int. Defaults to `8192`.
        jit_compile: `True` compiles the steps with XLA, the lookups moved
            into the input pipeline (see `MultiTaskModel.compile`); `None`
            (default) keeps a compiled model's setting.

    Returns:
        The `History`, with `best_epoch` (0-based) and `stopped_early` set.

    Example:

    >>> import zoo, tfmtl
    >>> from tfmtl.data import ctr_synthetic
    >>> frame, schema, tasks = ctr_synthetic(2_000, seed=0)
    >>> model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(8,))
    >>> history = tfmtl.fit(model, frame, epochs=2, verbose=0)
    >>> history.best_epoch in (0, 1)
    True
    """
    model._require_tasks("tfmtl.fit")
    report = getattr(model.schema, "report", None)
    if verbose and report is not None and not report.shown:
        print(f"Schema ({len(model.schema)} features):\n{report}\n")
        report.shown = True
    distribution = model.distribute_strategy
    multi_worker = distribute.is_multi_worker(distribution)
    if (not model.compiled or optimizer is not None or learning_rate is not None
            or jit_compile is not None):
        if jit_compile is None:
            jit_compile = model.jit_compile if model.compiled else "auto"
        with distribution.scope():  # the optimizer's variables mirrored like the model's
            model.compile(optimizer=optimizer or Adam(learning_rate or 1e-3),
                          jit_compile=jit_compile)
    replicas = distribution.num_replicas_in_sync
    if not multi_worker and replicas > 1 and batch_size % replicas:
        # Keras builds the model from the replicas' mean first batch, which fails unless the
        # replicas' batches have one size.
        raise ValueError(f"With {replicas} replicas (MirroredStrategy) the global batch_size "
                         f"must be a multiple of {replicas}. Received: {batch_size}")
    train, valid = _split(data, validation, seed)
    epoch_data = None
    if isinstance(train, tf.data.Dataset):
        if multi_worker:  # every worker slices the same global batches: a seeded dataset
            epoch_data = distribute.GlobalBatches(model.prepare(train)[0])
        if checkpoint_dir is not None and checkpoint_every != "epoch":
            raise ValueError("Step checkpoints need in-memory training data (a frame or a dict "
                             "of columns) to resume mid-epoch on the same batches.")
    else:
        epoch_data = EpochData(model, train, batch_size, seed)
    valid = None if valid is None else _dataset(model, valid, validation_batch_size, False, seed)
    if multi_worker and valid is not None:  # model.fit prepares it, the multi-worker loop not
        valid = model.prepare(valid)[0]
    found = list(callbacks)
    stopper = None
    if valid is not None:
        stopper = keras.callbacks.EarlyStopping(monitor, patience=patience, mode=mode,
                                                restore_best_weights=True)
        found += [_MonitorCheck(monitor), stopper]
    if tensorboard is not None:
        found.append(_tensorboard(tensorboard))
    checkpoints, initial_epoch, skip = None, 0, 0
    if checkpoint_dir is not None:
        checkpoints = Checkpoints(checkpoint_dir, checkpoint_every, epoch_data, stopper,
                                  write=not multi_worker or distribute.is_chief(distribution))
        checkpoints.set_model(model)
        resumed = checkpoints.restore()
        if resumed is not None:
            initial_epoch, skip = resumed
            if verbose:
                print(f"resuming from {checkpoint_dir}: epoch {resumed[0] + 1}, after step "
                      f"{resumed[1]}")
        found.append(checkpoints)
    elif epoch_data is not None:
        found.append(_EpochOrder(epoch_data))
    if isinstance(epoch_data, EpochData) and not isinstance(train, tf.data.Dataset):
        train = epoch_data.dataset()
    if multi_worker:
        history = distribute.fit_multi_worker(
            model, epoch_data, valid, epochs, found + [FiniteCheck()], verbose, initial_epoch,
            skip)
    elif skip:
        if not isinstance(epoch_data, EpochData) or skip >= epoch_data.steps:
            raise ValueError(
                f"The checkpoint in {checkpoint_dir} was written after step {skip} of epoch "
                f"{initial_epoch + 1}; resume it with the training data and batch_size it was "
                "written with (in-memory data: a frame or a dict of columns)"
                + (f", which make {epoch_data.steps} steps an epoch." if epoch_data else "."))
        history = _fit_resumed_mid_epoch(model, epoch_data, skip, valid, epochs, verbose,
                                         found, initial_epoch)
    else:
        history = model.fit(train, validation_data=valid, epochs=epochs, verbose=verbose,
                            callbacks=found, initial_epoch=initial_epoch)
    if checkpoints is not None:
        history.history = checkpoints.previous
        history.epoch = list(range(len(next(iter(checkpoints.previous.values()), []))))
    losses = history.history.get(monitor) or history.history.get("loss", [])
    history.best_epoch = (stopper.best_epoch if stopper is not None and stopper.best_weights
                          is not None else len(losses) - 1)
    history.stopped_early = bool(stopper is not None and stopper.stopped_epoch > 0)
    return history


def _split(data, validation, seed):
    if validation is None or not isinstance(validation, float):
        return data, validation
    if not 0.0 < validation < 1.0:
        raise ValueError(f"validation must be a fraction in (0, 1), data, or None. "
                         f"Received: {validation}")
    if isinstance(data, tf.data.Dataset):
        raise ValueError("A fraction of a dataset cannot be held out: pass validation data.")
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(round(len(frame) * validation))
    if cut < 1 or cut >= len(frame):
        raise ValueError(f"validation={validation} of {len(frame)} rows leaves no rows for "
                         "training or validation.")
    return frame.iloc[order[cut:]], frame.iloc[order[:cut]]


def _fit_resumed_mid_epoch(model, epoch_data, skip, valid, epochs, verbose, callbacks, epoch):
    """Trains the rest of `epoch` (after `skip` batches) in one `fit`, the later epochs in another.

    One `fit` cannot: Keras runs every epoch for as many steps as the data
    states, or, where it states none, as many as the first epoch ran, so
    the later epochs would be cut to the resumed epoch's length. The
    callbacks see one training across the two calls (`_OneTraining`).
    """
    # Keras' own progress bar and history stay outside: it adds its own unless it finds them.
    own = [c for c in callbacks if isinstance(c, (keras.callbacks.ProgbarLogger,
                                                  keras.callbacks.History))]
    whole = _OneTraining([c for c in callbacks if c not in own], epochs=epochs,
                         steps=epoch_data.steps)
    whole.last_epoch = epoch
    if not all(getattr(metric, "built", True) for metric in model.metrics):
        # Keras builds the compiled metrics in the first step; the checkpoint's running values
        # of them go in as the epoch begins, so build them now on one batch.
        model.evaluate(epoch_data.dataset(skip).take(1), verbose=0)
    optimizer = model.optimizer
    # `fit` ends by finalising the optimizer's variables (an EMA optimizer writes its averages
    # into the model): only the whole training's end may do that.
    optimizer.finalize_variable_values = lambda variables: None
    try:
        history = model.fit(epoch_data.dataset(skip), validation_data=valid, epochs=epochs,
                            verbose=verbose, callbacks=[whole, *own], initial_epoch=epoch)
    finally:
        del optimizer.finalize_variable_values  # the class's own again
    if whole.stopped or epoch + 1 >= epochs:
        optimizer.finalize_variable_values(model.trainable_weights)
        whole.end()
        return history
    whole.last_epoch = None
    history = model.fit(epoch_data.dataset(), validation_data=valid, epochs=epochs,
                        verbose=verbose, callbacks=[whole, *own], initial_epoch=epoch + 1)
    whole.end()
    return history


class _OneTraining(keras.callbacks.Callback):
    """`callbacks` over one training run as several `fit` calls.

    They see one `on_train_begin` (the first call's), one `on_train_end`
    (sent by `end()`), every epoch and batch, and the whole run's `epochs`
    and `steps` in their `params`. A call stops after `last_epoch`.
    """

    def __init__(self, callbacks, epochs, steps):
        super().__init__()
        self.inner = keras.callbacks.CallbackList(callbacks)
        self.whole = {"epochs": epochs, "steps": steps}
        self.last_epoch, self.stopped, self.began, self.end_logs = None, False, False, None

    def set_model(self, model):
        if self.model is None:  # once: TensorBoard's `set_model` opens new writers
            self.inner.set_model(model)
        super().set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.inner.set_params({**params, **self.whole})

    def on_train_begin(self, logs=None):
        if not self.began:
            self.began = True
            self.inner.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self.end_logs = logs  # passed on by `end`, once the last call is over

    def end(self):
        self.model.stop_training = self.stopped  # not the stop that ended a call
        self.inner.on_train_end(self.end_logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.on_epoch_end(epoch, logs)
        self.stopped = bool(self.model.stop_training)
        if epoch == self.last_epoch:
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        self.inner.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.inner.on_train_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        self.inner.on_test_begin(logs)

    def on_test_end(self, logs=None):
        self.inner.on_test_end(logs)

    def on_test_batch_begin(self, batch, logs=None):
        self.inner.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self.inner.on_test_batch_end(batch, logs)


class _EpochOrder(keras.callbacks.Callback):
    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        self.data.set_epoch(epoch)


def _dataset(model, data, batch_size, shuffle, seed):
    if isinstance(data, tf.data.Dataset):
        return data
    return model.dataset(data, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _tensorboard(log_dir):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ValueError("TensorBoard logging needs the tensorboard package: "
                         "pip install tensorboard") from None
    return keras.callbacks.TensorBoard(str(log_dir))


class _MonitorCheck(keras.callbacks.Callback):
    """Fails after the first epoch if `monitor` names no logged value."""

    def __init__(self, monitor):
        super().__init__()
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0 and self.monitor not in (logs or {}):
            raise ValueError(f"monitor={self.monitor!r} is not a logged value; choose from "
                             f"{sorted(logs or {})}")
