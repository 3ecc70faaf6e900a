"""MultiSFS end to end (Algorithm 2), its ablations and the per-task baselines."""

import time

import keras
import numpy as np
import pandas as pd

from tfmtl.data.arrays import columns_of
from tfmtl.selection.baselines import chi2_scores, lasso_scores
from tfmtl.selection.relations import label_relations, learn_relations
from tfmtl.selection.saliency import field_saliency
from tfmtl.selection.selection import make_selection

METHODS = ("multisfs", "multisfs-1", "multisfs-2", "multisfs-3", "chi2", "lasso")


def select_fields(name, schema, tasks, data, k=0.5, method="multisfs", hparams=None, batches=5,
                  batch_size=2048, seed=0, merge_mode="weighted", relations=None, gnn=None,
                  train=None, inits=1, calibrate=True, verbose=0):
    """A `Selection` of fields per task for zoo model `name`.

    - `"multisfs"` (Algorithm 2): the field importance `s_tn` of a freshly
      initialised `name` (`field_saliency`, averaged over `batches` mini-
      batches of `batch_size`; the paper: 5 of 2048), merged with the
      field-wise task relations of the relation GNN (`learn_relations`,
      Eq. 24), top-`k` per task.
    - `"multisfs-1"`: the importance of the model after training it
      (`tfmtl.fit` on `data`, 10 % held out), relations as MultiSFS.
    - `"multisfs-2"`: relations = the Pearson correlation of the labels.
    - `"multisfs-3"`: no relations (`s' = s`).
    - `"chi2"`, `"lasso"`: the single-task selectors per task
      (`chi2_scores`, `lasso_scores`), top-`k` per task.

    The shared set follows the model's rule (`zoo.sharing(name)`): union for
    MMoE, intersection for PLE/CGC, none for ESMM/AITM (Sec. 3.4).

    Args:
        name: str. A zoo model (the backbone).
        schema, tasks: as for `zoo.build` (a `FacetedTasks` too).
        data: a DataFrame or dict of columns (the training split); the
            saliency also takes a `tf.data.Dataset`, the relation GNN and the
            baselines need in-memory data.
        k: fields per task: a count, a fraction of the fields, or a dict per task.
        hparams: dict. The backbone's hyperparameters.
        merge_mode: see `tfmtl.selection.merge`.
        relations: a precomputed `(N, T, T)` relation array (the relations do
            not depend on the backbone: compute them once with
            `learn_relations` and reuse them).
        gnn: dict. Arguments of `learn_relations`.
        train: dict. Arguments of `tfmtl.fit` for `"multisfs-1"`.
        inits: int. The importance is averaged over this many independently
            initialised models (seeds `seed, seed + 1, ...`). The paper scores
            one (`1`, the default); each model's score of a field is one
            random projection of how the labels vary with it, so one draw is
            noisy (see `bench/multisfs.py`) and more draws average it out.
            Our extension; `"multisfs-1"` trains each of them.
        calibrate: bool. See `field_saliency`.

    Returns:
        A `Selection` (`info` holds the seconds of the saliency and the GNN).
    """
    import zoo

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: {method!r}")
    hparams = dict(hparams or {})
    rows = _rows(tasks)
    fields = list(schema.names)
    info = {"method": method, "seed": seed, "k": k}
    frame = _frame(data)
    sharing = zoo.sharing(name)
    if method in ("chi2", "lasso"):
        started = time.time()
        need_frame(frame, method)
        flat = _flat_tasks(tasks)
        scores = (chi2_scores if method == "chi2" else lasso_scores)(frame, schema, flat,
                                                                      facets=_facets(tasks))
        info["seconds_scores"] = time.time() - started
        return make_selection(scores, fields, rows, k, method, name, sharing, info=info)

    if method == "multisfs-1" and frame is None and "validation" not in (train or {}):
        raise ValueError("multisfs-1 trains the probe first and holds out 10% of the data for "
                         "early stopping, which a tf.data dataset cannot give: pass a DataFrame, "
                         "or train={'validation': <a validation dataset>}.")
    draws, info["seconds_saliency"], info["seconds_training"] = [], 0.0, 0.0
    for draw in range(int(inits)):
        keras.utils.set_random_seed(seed + draw)
        probe = zoo.build(name, schema, tasks, field_mask=True, **hparams)
        if method == "multisfs-1":
            import tfmtl

            started = time.time()
            tfmtl.fit(probe, data, **{"validation": 0.1, "verbose": verbose, "seed": seed,
                                      **(train or {})})
            info["seconds_training"] += time.time() - started
        started = time.time()
        draws.append(field_saliency(probe, data, batch_size=batch_size, batches=batches,
                                    seed=seed, calibrate=calibrate))
        info["seconds_saliency"] += time.time() - started
    scores = np.mean(draws, axis=0)
    info.update(batches=batches, batch_size=batch_size, inits=int(inits), calibrate=calibrate)
    if method in ("multisfs", "multisfs-1"):
        if relations is None:
            need_frame(frame, method)
            relations, gnn_info = learn_relations(schema, _flat_tasks(tasks), frame, seed=seed,
                                                  verbose=verbose, facets=_facets(tasks),
                                                  **(gnn or {}))
            info["gnn"] = gnn_info
            info["seconds_gnn"] = gnn_info["seconds"]
    elif method == "multisfs-2":
        need_frame(frame, method)
        relations = label_relations(frame, _flat_tasks(tasks), len(fields), _facets(tasks))
    else:
        relations = None
    return make_selection(scores, fields, rows, k, method, name, sharing, relations, merge_mode,
                          info)


def stability(name, schema, tasks, data, k=0.5, runs=((0, 0, 1), (0, 1, 1), (1, 0, 1)),
              hparams=None, batch_size=2048, calibrate=True):
    """How much the top-k of the importance alone moves with the batches and the initialisation.

    `runs`: `(init_seed, batch_seed, batches)` triples; each scores a model
    initialised with `init_seed` on `batches` mini-batches drawn with
    `batch_seed` (`field_saliency`) and takes each task's top-k. Runs that
    share `init_seed` measure the batches' effect, runs that share
    `batch_seed` the initialisation's.

    Returns:
        `{"mean_jaccard": ..., "per_task": {task: mean Jaccard similarity of
        its top-k between every two runs}, "sets": [...]}`.
    """
    import zoo

    rows = _rows(tasks)
    sets = []
    for init_seed, batch_seed, batches in runs:
        keras.utils.set_random_seed(init_seed)
        probe = zoo.build(name, schema, tasks, field_mask=True, **dict(hparams or {}))
        scores = field_saliency(probe, data, batch_size=batch_size, batches=batches,
                                seed=batch_seed, calibrate=calibrate)
        selection = make_selection(scores, list(schema.names), rows, k, "multisfs-3", name,
                                   "none")
        sets.append({t: set(selection.task_fields[t]) for t in rows})
    per_task = {}
    for task in rows:
        values = [len(a[task] & b[task]) / len(a[task] | b[task])
                  for i, a in enumerate(sets) for b in sets[i + 1:]]
        per_task[task] = float(np.mean(values))
    return {"mean_jaccard": float(np.mean(list(per_task.values()))), "per_task": per_task,
            "sets": [{t: sorted(s[t]) for t in rows} for s in sets],
            "runs": [list(r) for r in runs]}


def need_frame(frame, method):
    if frame is None:
        raise ValueError(f"{method} needs the data in memory (a DataFrame or dict of columns): "
                         "the relation GNN and the baselines read the whole training split.")


def _frame(data):
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame(columns_of(data))
    return None


def _flat_tasks(tasks):
    flat = tasks.tasks if hasattr(tasks, "partition_weights") else list(tasks)
    return [t for t in flat if t.loss_weight > 0 and not t.auxiliary]


def _facets(tasks):
    return tasks if hasattr(tasks, "partition_weights") else None


def _rows(tasks):
    return [t.name for t in _flat_tasks(tasks)]
