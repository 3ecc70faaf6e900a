"""A feature selection for a multi-task model: plain data, JSON in and out."""

import dataclasses

import numpy as np

from tfmtl.serialization import JsonRecord

SHARING = ("union", "intersection", "none")


@dataclasses.dataclass
class Selection(JsonRecord):
    """Which fields each task reads, and why.

    `zoo.build(name, schema, tasks, selection=selection)` builds the model
    on these fields only: each task-specific part reads `task_fields[task]`,
    shared parts the union or intersection of them (the model's rule,
    `zoo.sharing(name)`); a field no task selected has no input and no
    embedding table.

    Args:
        tasks: list of str. The tasks, in the order of the score rows.
        fields: list of str. Every candidate field, in the order of the
            score columns (the schema's features).
        task_fields: dict of task to the list of its selected fields (in
            `fields` order).
        k: dict of task to its number of fields.
        method: str. How the selection was made (`"multisfs"`,
            `"multisfs-1"`, `"multisfs-2"`, `"multisfs-3"`, `"chi2"`, `"lasso"`).
        backbone: str or `None`. The model the selection was scored with.
        sharing: str. The backbone's rule for `shared_fields`.
        shared_fields: list of str. The shared set for `backbone`.
        scores: dict of task to `{field: s_tn}`: the importance before the
            relation merge (Eq. 10; the baselines' own scores).
        merged_scores: dict of task to `{field: s'_tn}` (Eq. 24), the
            scores the top-k is taken of.
        relations: dict of field to the `T x T` relation matrix
            `r_n^{t1,t2}` (Eq. 23), or `None`.
        info: dict. Settings and timings (seconds of saliency, of the GNN).
    """

    tasks: list
    fields: list
    task_fields: dict
    k: dict
    method: str = "multisfs"
    backbone: str = None
    sharing: str = "union"
    shared_fields: list = None
    scores: dict = None
    merged_scores: dict = None
    relations: dict = None
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        missing = sorted(set(self.tasks) - set(self.task_fields))
        if missing:
            raise ValueError(f"No selected fields for tasks {missing}.")
        for task in self.tasks:
            unknown = sorted(set(self.task_fields[task]) - set(self.fields))
            if unknown or not self.task_fields[task]:
                raise ValueError(f"Task {task!r}: selected fields must be a non-empty subset of "
                                 f"{self.fields}. Received: {self.task_fields[task]}")
        if self.sharing not in SHARING:
            raise ValueError(f"sharing must be one of {SHARING}. Received: {self.sharing!r}")
        if self.shared_fields is None and self.sharing != "none":
            self.shared_fields = self.shared_for(self.sharing)

    def fields_of(self, task):
        """Task `task`'s selected fields, in `fields` order."""
        chosen = set(self.task_fields[task])
        return [f for f in self.fields if f in chosen]

    def shared_for(self, sharing):
        """The shared set by a rule: `"union"` or `"intersection"` of the tasks' fields."""
        sets = [set(self.task_fields[t]) for t in self.tasks]
        if sharing == "union":
            keep = set.union(*sets)
        elif sharing == "intersection":
            keep = set.intersection(*sets)
            if not keep:
                raise ValueError(
                    f"The tasks' selected fields have none in common, so the shared experts "
                    f"would read nothing: {self.task_fields}. Keep more fields per task.")
        else:
            raise ValueError(f"A model with sharing {sharing!r} has no shared field set.")
        return [f for f in self.fields if f in keep]

    @property
    def used_fields(self):
        """Fields some task selected: the model's inputs."""
        return self.shared_for("union")

    def score_matrix(self, merged=True):
        """`(T, N)` NumPy array of (merged) scores, rows `tasks`, columns `fields`."""
        scores = self.merged_scores if merged and self.merged_scores else self.scores
        return np.array([[scores[t][f] for f in self.fields] for t in self.tasks])

    def summary(self):
        """A text table: per task its fields, then the shared set."""
        lines = [f"{self.method} selection ({self.backbone or 'no backbone'}, shared by "
                 f"{self.sharing}):"]
        width = max(len(t) for t in self.tasks + ["shared"])
        for task in self.tasks:
            lines.append(f"  {task:<{width}}  k={self.k[task]:<3} {', '.join(self.fields_of(task))}")
        if self.shared_fields is not None:
            lines.append(f"  {'shared':<{width}}  k={len(self.shared_fields):<3} "
                         f"{', '.join(self.shared_fields)}")
        dropped = [f for f in self.fields if f not in set(self.used_fields)]
        lines.append(f"  dropped: {', '.join(dropped) if dropped else 'none'}")
        return "\n".join(lines)


def resolve_k(k, num_fields, tasks):
    """`{task: count}` from a count, a fraction of the fields, or a dict of either per task.

    A fraction keeps `floor(k * N)` fields (at least 1), as the paper's
    Fig. 3 (`K = 0.5N ... N`) and the authors' code do.
    """
    per_task = k if isinstance(k, dict) else {t: k for t in tasks}
    missing = sorted(set(tasks) - set(per_task))
    if missing:
        raise ValueError(f"k has no value for tasks {missing}")
    counts = {}
    for task in tasks:
        value = per_task[task]
        if isinstance(value, float) and 0.0 < value <= 1.0:
            count = max(1, int(np.floor(value * num_fields + 1e-9)))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and \
                1 <= value <= num_fields:
            count = int(value)
        else:
            raise ValueError(f"k must be a count in [1, {num_fields}] or a fraction in (0, 1]. "
                             f"Received: {value!r} for task {task!r}")
        counts[task] = count
    return counts


def merge(scores, relations=None, mode="weighted"):
    """Eq. 24: each task's importance merged with its related tasks', field by field.

    Args:
        scores: `(T, N)` importance `s_tn`.
        relations: `(N, T, T)` field-wise relations `r_n^{t,i}` (1 on the
            diagonal), or `None` (MultiSFS-3: `s' = s`).
        mode: `"weighted"` (default): `s'_tn = sum_i r_n^{t,i} s_in`, the
            weighted sum of the tasks' scores the text describes ("tasks
            that are highly related ... make similar decisions"). `"as_printed"`:
            Eq. 24 exactly as printed, `s'_tn = sum_i r_n^{t,i} s_tn`, which
            rescales task `t`'s own score by its summed relations.

    Returns:
        `(T, N)` merged scores.
    """
    scores = np.asarray(scores, dtype="float64")
    if relations is None:
        return scores.copy()
    relations = np.asarray(relations, dtype="float64")
    if mode == "weighted":
        return np.einsum("nti,in->tn", relations, scores)
    if mode == "as_printed":
        return relations.sum(axis=2).T * scores
    raise ValueError(f"mode must be 'weighted' or 'as_printed'. Received: {mode!r}")


def top_k(scores, counts, tasks, fields):
    """`{task: [fields]}`: each task's `counts[task]` highest-scored fields (ties: field order)."""
    chosen = {}
    for t, task in enumerate(tasks):
        order = sorted(range(len(fields)), key=lambda n: (-scores[t][n], n))
        keep = set(order[:counts[task]])
        chosen[task] = [f for n, f in enumerate(fields) if n in keep]
    return chosen


def make_selection(scores, fields, tasks, k, method, backbone=None, sharing="union",
                   relations=None, merge_mode="weighted", info=None):
    """A `Selection` from `(T, N)` scores: merge (Eq. 24), top-k per task, shared set."""
    merged = merge(scores, relations, merge_mode)
    counts = resolve_k(k, len(fields), tasks)
    table = {t: {f: float(scores[i][n]) for n, f in enumerate(fields)} for i, t in enumerate(tasks)}
    merged_table = {t: {f: float(merged[i][n]) for n, f in enumerate(fields)}
                    for i, t in enumerate(tasks)}
    related = None if relations is None else {
        f: np.asarray(relations[n]).round(6).tolist() for n, f in enumerate(fields)}
    return Selection(tasks=list(tasks), fields=list(fields),
                     task_fields=top_k(merged, counts, tasks, fields), k=counts, method=method,
                     backbone=backbone, sharing=sharing, scores=table, merged_scores=merged_table,
                     relations=related, info=dict(info or {}))
