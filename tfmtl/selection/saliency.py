"""MultiSFS's single-shot field importance: `s_tn = dL/dm_tn` at `M = 1` (Eq. 10), by GradientTape."""

import numpy as np
import pandas as pd
import tensorflow as tf

from tfmtl.data.arrays import columns_of
from tfmtl.models.multi_task_model import default_losses


def owners(model, rows):
    """`{output task name: mask row}`: which task's mask row each trained output belongs to.

    An output named after a row's task is that task's; an auxiliary head
    (FDN's `<task>_aux_<m>`) its task's; a derived output (ESMM's CTCVR,
    label `click x buy`) the task whose label is its last label column.
    """
    by_label = {}
    for task in model.tasks:
        if task.name in rows and isinstance(task.label, str):
            by_label.setdefault(task.label, task.name)
    found = {}
    for task in model.tasks:
        if task.loss_weight == 0:
            continue
        if task.name in rows:
            found[task.name] = task.name
        elif task.auxiliary and task.name.rsplit("_aux_", 1)[0] in rows:
            found[task.name] = task.name.rsplit("_aux_", 1)[0]
        elif task.label_columns[-1] in by_label:
            found[task.name] = by_label[task.label_columns[-1]]
        else:
            raise ValueError(f"Output {task.name!r} belongs to none of the tasks {rows}.")
    return found


def field_saliency(model, data, batch_size=2048, batches=1, seed=0, signed=False,
                   scale="embedding", calibrate=True):
    """Task-by-field importance of an (untrained) model: `(T, N)` NumPy array.

    For each mini-batch, task `t`'s outputs are computed with every
    embedding and number the model reads scaled by row `t` of the mask
    (`FieldMask`, Eq. 5-6), the loss `L = sum_t L_t` of Eq. 7 (the model's
    own per-output losses, weights and masks) is taken over all tasks, and
    one `tf.GradientTape` gives `dL/dM` at `M = 1` (Eq. 10). The model runs
    in inference mode (no dropout).

    Convention: the importance is the magnitude `|dL/dm_tn|` (how much the
    loss moves when field `n` is faded out of task `t`), averaged over
    `batches` mini-batches. The paper writes the signed derivative, but
    ranks by "a large s_tn indicates a significant impact on loss value";
    the authors' code takes the magnitude too. `signed=True` returns the
    mean signed derivative (the finite-difference check of Eq. 9 uses it).

    Scale: `dL/dm_tn` grows with the size of field `n`'s input. The paper's
    fields are all embeddings drawn from one initializer, so their scores
    compare fairly; a dense feature enters as its normalised value (root
    mean square about 1, some 30 times an initial embedding's). With
    `scale="embedding"` (default) a dense feature's score is multiplied by
    the ratio of the embeddings' mean root mean square to its own, as if it
    were an embedding; embedding fields' scores are the paper's, untouched.
    `scale=None` leaves every score as the derivative.

    Calibration: a freshly initialised head predicts about 0.5 (zero bias),
    so at `M = 1` the loss gradient carries a term `(p - y_mean)` times each
    field's summed response that is the same for relevant and irrelevant
    fields and, measured on `tfmtl.data.selection_synthetic`, drowns the
    signal (recovery of the planted fields at chance level even averaged
    over 32 initialisations). With `calibrate=True` (default) each task
    head's bias is first set so the untrained model predicts the first
    batch's base rate (the mean label of a regression task); nothing else
    of the random initialisation changes. The paper says only "randomly
    initialised"; this is our reading, `calibrate=False` the plain one.

    Args:
        model: a model built with `zoo.build(..., field_mask=True)`.
        data: DataFrame or dict of columns, or a `tf.data.Dataset` of
            batches (its first `batches` are used).
        batch_size: int. Rows per mini-batch. Defaults to `2048` (the paper's).
        batches: int. Mini-batches averaged (the paper: 5; Algorithm 2: 1).
        seed: int. Which rows form the mini-batches.
        signed: bool. See above.
        scale: `"embedding"` or `None`. See above.
        calibrate: bool. See above.

    Returns:
        `(T, N)` array; rows `model.field_mask.tasks`, columns
        `model.field_mask.fields`.
    """
    mask = model.get_layer("field_mask")
    scores = []
    for b, (x, y, sample_weight) in enumerate(_batches(model, data, batch_size, batches, seed)):
        if calibrate and b == 0:
            calibrate_heads(model, y, sample_weight)
        with tf.GradientTape() as tape:
            tape.watch(mask.mask.value)
            total = masked_loss(model, x, y, sample_weight)
        gradient = tf.convert_to_tensor(tape.gradient(total, mask.mask.value)).numpy()
        if scale == "embedding":
            gradient = gradient * _number_scale(mask)[None, :]
        elif scale is not None:
            raise ValueError(f"scale must be 'embedding' or None. Received: {scale!r}")
        scores.append(gradient if signed else np.abs(gradient))
    return np.mean(scores, axis=0)


def masked_loss(model, x, y, sample_weight=None):
    """`L(f(M * E), y) = sum_t L_t(f_t(M_t * E), y_t)` (Eq. 6-7) at the mask's current value.

    One forward pass per task row `t` of the `FieldMask`, with row `t`
    applied to every embedding and number; task `t`'s outputs of that pass
    enter its loss (the model's own losses, loss weights and masks).
    """
    mask = model.get_layer("field_mask")
    rows = list(mask.tasks)
    belongs = owners(model, rows)
    keys = model.output_keys
    losses = default_losses(model.tasks, keys)
    weights = {t.name: t.loss_weight for t in model.tasks}
    total = 0.0
    for t, row in enumerate(rows):
        mask.task.assign(t)
        outputs = model(x, training=False)
        for name, owner in belongs.items():
            if owner == row:
                key = keys[name]
                weight = None if sample_weight is None else sample_weight[key]
                total += weights[name] * losses[key](y[key], outputs[key], weight)
    mask.task.assign(0)
    return total


def calibrate_heads(model, y, sample_weight):
    """Sets each task head's bias to the base rate (mean label) of the given targets."""
    from tfmtl.layers.task_head import TaskHead

    for task in model.tasks:
        key = model.output_keys[task.name]
        head = next((model.get_layer(name) for name in (key, f"{key}_head")
                     if _has_layer(model, name) and isinstance(model.get_layer(name), TaskHead)),
                    None)
        if head is None:
            continue  # a derived output (ESMM's CTCVR, a routed output) has no head
        label = np.asarray(y[key])[:, 0]
        weight = np.ones_like(label) if sample_weight is None else np.asarray(sample_weight[key])
        if weight.sum() <= 0:
            continue
        mean = float((label * weight).sum() / weight.sum())
        if task.kind == "binary":
            mean = float(np.clip(mean, 1e-4, 1 - 1e-4))
            mean = np.log(mean / (1.0 - mean))
        head.dense.bias.assign([mean])


def _has_layer(model, name):
    return any(layer.name == name for layer in model.layers)


def _number_scale(mask):
    """Per field: 1 for embeddings; for numbers, mean embedding RMS / the number's RMS."""
    rms = mask.input_rms
    embeddings = [value for value, number in rms.values() if not number]
    factors = np.ones(len(mask.fields))
    if not embeddings:
        return factors
    reference = float(np.mean(embeddings))
    for n, field in enumerate(mask.fields):
        value, number = rms.get(field, (1.0, False))
        if number and value > 0:
            factors[n] = reference / value
    return factors


def _batches(model, data, batch_size, batches, seed):
    if isinstance(data, tf.data.Dataset):
        from tfmtl.data.targets import prepare_dataset

        for element in prepare_dataset(data, model.schema, model.targets).take(batches):
            x, y = element[0], element[1]
            yield x, y, (element[2] if len(element) > 2 else None)
        return
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(columns_of(data))
    order = np.random.default_rng(seed).permutation(len(frame))
    size = min(batch_size, len(frame))
    if batches * size > len(frame):
        raise ValueError(f"{batches} batches of {size} rows need {batches * size} rows; the data "
                         f"has {len(frame)}: pass fewer batches or a smaller batch_size.")
    for b in range(batches):
        rows = frame.iloc[order[b * size:(b + 1) * size]]
        x, y, weights = model.prepare(rows)
        yield ({k: tf.constant(v) for k, v in x.items()},
               {k: tf.constant(v) for k, v in y.items()},
               None if weights is None else {k: tf.constant(v) for k, v in weights.items()})
