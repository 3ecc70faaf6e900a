"""Tasks described by facets (MFH): behaviours x row partitions."""

import dataclasses
import itertools
import math

import numpy as np
import tensorflow as tf

from tfmtl.schema.names import check_name
from tfmtl.schema.task import Task


@dataclasses.dataclass(frozen=True)
class Facet:
    """A partition of the rows, e.g. user group = {new, low, high}.

    A row's value comes from the feature `column`: with `boundaries`, by
    bucketing a number (value `i` for `boundaries[i-1] <= x < boundaries[i]`;
    NaN goes to the first value); otherwise by matching the column against
    `keys` (the column's value for each facet value; defaults to `values`).
    A row whose key matches no value goes to the first value, so put the
    cold-start group first. The column must be a model feature: the model
    routes each row by it when serving.

    Args:
        name: str. The facet's name.
        values: tuple of str. Its partitions' names, unique across facets.
        column: str. The feature that decides a row's value.
        boundaries: tuple of float, increasing, `len(values) - 1` of them.
        keys: tuple of str or int. Column values, one per facet value.

    Example:

    >>> f = Facet("group", ("new", "low", "high"), "activity", boundaries=(5, 20))
    >>> f.index_of([0, 5, 19, 40, float("nan")]).tolist()
    [0, 1, 1, 2, 0]
    """

    name: str
    values: tuple
    column: str
    boundaries: tuple = None
    keys: tuple = None

    def __post_init__(self):
        check_name(self.name, "Facet")
        values = tuple(self.values)
        if len(values) < 1 or len(set(values)) != len(values):
            raise ValueError(f"Facet {self.name!r}: values must be unique and non-empty. "
                             f"Received: {values}")
        for value in values:
            check_name(value, f"Facet {self.name!r} value")
        object.__setattr__(self, "values", values)
        if not isinstance(self.column, str):
            raise ValueError(f"Facet {self.name!r}: column must be a feature name. "
                             f"Received: {self.column!r}")
        if self.boundaries is not None:
            if self.keys is not None:
                raise ValueError(f"Facet {self.name!r}: give boundaries or keys, not both.")
            bounds = tuple(float(b) for b in self.boundaries)
            if len(bounds) != len(values) - 1 or any(
                    not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
                raise ValueError(
                    f"Facet {self.name!r}: boundaries must be {len(values) - 1} finite, "
                    f"strictly increasing numbers. Received: {self.boundaries}")
            object.__setattr__(self, "boundaries", bounds)
        else:
            keys = values if self.keys is None else tuple(self.keys)
            if len(keys) != len(values) or len(set(keys)) != len(keys):
                raise ValueError(f"Facet {self.name!r}: keys must be {len(values)} unique "
                                 f"column values. Received: {self.keys}")
            object.__setattr__(self, "keys", keys)

    def index(self, column):
        """Each row's value index, `(rows,)` int32, from the column (TensorFlow ops).

        The one implementation of the rule: the model routes by it and the
        data path weighs each facet task's rows by it.
        """
        column = tf.convert_to_tensor(column)
        if column.shape.rank == 2:
            column = column[:, 0]
        if self.boundaries is not None:
            x = tf.cast(column, "float32")
            return tf.add_n([tf.cast(x >= b, "int32") for b in self.boundaries])
        index = tf.zeros(tf.shape(column), dtype="int32")
        for i, key in enumerate(self.keys):
            key = tf.constant(key, dtype=column.dtype)
            index = tf.where(tf.equal(column, key), tf.constant(i, "int32"), index)
        return index

    def index_of(self, column):
        """`index` of an in-memory column, as a NumPy array."""
        return self.index(_tensor(column)).numpy()

    def get_config(self):
        config = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class FacetedTasks:
    """Tasks as the product of behaviours and row facets (MFH, Sec. 3).

    Behaviour `b` (a `Task`: label and kind) crossed with one value of every
    facet is the task `b_v1_v2...`: `b`'s label, trained on the rows of that
    partition. `sharing` lets a task also learn from other partitions' rows
    (more data for small groups): `"paper"`, the rule of the paper's lessons
    learned (Sec. 5.1.4), on the first facet (the user groups): a group's
    task also trains on the rows of every group listed before it in the
    facet's values (list them from the least to the most active: new users'
    rows in every group's tasks, low-activity users' rows in the
    high-activity tasks; weight 1, the paper states none; other facets keep
    their own partition);
    `"symmetric"`: every other partition's rows at `other_weight`. Serving
    always reads the row's own group's task. `subset` keeps a chosen part of
    the product.

    The rows' weights are not data columns: a model built from these tasks
    keeps them (they are saved with it) and its data path weighs each row
    of each task by `partition_weights` of the row's `partition`, times the
    behaviour's own mask (CVR on clicks) if it has one. The model also
    gets, per behaviour whose tasks cover every partition, a routed output
    named after the behaviour: row by row, the task output of that row's
    partition. It trains no loss (its metrics are over all rows).

    Args:
        behaviours: list of `Task` (name, kind, label).
        facets: list of `Facet`.
        subset: list of task names to keep. Defaults to all.
        sharing: `None` (default: each task its own partition's rows),
            `"paper"` or `"symmetric"` (see above).
        other_weight: float in [0, 1). The weight of other partitions' rows
            with `sharing="symmetric"` (a value above 0 alone means it too).
            Defaults to `0.0`.
        behaviour_name: str. The behaviour facet's name in `order` and
            code lists. Defaults to `"behaviour"`.

    Example:

    >>> ft = FacetedTasks([Task("like"), Task("rating", "regression")],
    ...                   [Facet("group", ("new", "old"), "activity", boundaries=(10,))])
    >>> [t.name for t in ft.tasks]
    ['like_new', 'like_old', 'rating_new', 'rating_old', 'like', 'rating']
    """

    SHARING = (None, "paper", "symmetric")

    def __init__(self, behaviours, facets, subset=None, other_weight=0.0,
                 behaviour_name="behaviour", sharing=None):
        self.behaviours = list(behaviours)
        self.facets = list(facets)
        if not self.behaviours or not all(isinstance(b, Task) for b in self.behaviours):
            raise ValueError(f"behaviours must be a non-empty list of Task. Received: {behaviours}")
        if not all(isinstance(f, Facet) for f in self.facets):
            raise ValueError(f"facets must be a list of Facet. Received: {facets}")
        self.behaviour_name = behaviour_name
        names = [behaviour_name] + [f.name for f in self.facets]
        if len(set(names)) != len(names):
            raise ValueError(f"Facet names must be unique (and not {behaviour_name!r}). "
                             f"Received: {names}")
        values = [b.name for b in self.behaviours] + [v for f in self.facets for v in f.values]
        if len(set(values)) != len(values):
            raise ValueError(f"Behaviour names and facet values must be unique across facets "
                             f"(they name the tree's nodes). Received: {values}")
        if not 0.0 <= other_weight < 1.0:
            raise ValueError(f"other_weight must be in [0, 1). Received: {other_weight}")
        self.other_weight = float(other_weight)
        if sharing not in self.SHARING:
            raise ValueError(f"sharing must be one of {self.SHARING}. Received: {sharing!r}")
        if sharing is None and self.other_weight > 0:
            sharing = "symmetric"
        self.sharing = sharing
        full = [self.task_name(code) for code in self._product()]
        if subset is not None:
            unknown = sorted(set(subset) - set(full))
            if unknown:
                raise ValueError(f"subset names unknown tasks {unknown}; tasks are {full}")
        self.subset = None if subset is None else [n for n in full if n in set(subset)]

    @property
    def sizes(self):
        """Number of values of each facet, behaviour first."""
        return [len(self.behaviours)] + [len(f.values) for f in self.facets]

    @property
    def facet_names(self):
        return [self.behaviour_name] + [f.name for f in self.facets]

    def value_names(self, facet):
        """Names of facet `facet`'s values (0: the behaviours)."""
        if facet == 0:
            return [b.name for b in self.behaviours]
        return list(self.facets[facet - 1].values)

    def _product(self):
        return list(itertools.product(*(range(n) for n in self.sizes)))

    def task_name(self, code):
        """`code`: one value index per facet, behaviour first."""
        return "_".join(self.value_names(f)[i] for f, i in enumerate(code))

    @property
    def codes(self):
        """Value indices (behaviour first) of every kept task, in task order."""
        keep = None if self.subset is None else set(self.subset)
        return [c for c in self._product() if keep is None or self.task_name(c) in keep]

    def partition_values(self, code):
        return [self.value_names(f + 1)[i] for f, i in enumerate(code[1:])]

    def routed_behaviours(self):
        """Behaviours whose kept tasks cover every partition (none without facets)."""
        if not self.facets:
            return []
        partitions = math.prod(self.sizes[1:])
        return [b for i, b in enumerate(self.behaviours)
                if sum(1 for c in self.codes if c[0] == i) == partitions]

    @property
    def tasks(self):
        """The facet tasks, then one routed (loss-free) task per covered behaviour.

        Without facets, the behaviours themselves.
        """
        if not self.facets:
            keep = {self.task_name(c) for c in self.codes}
            return [b for b in self.behaviours if b.name in keep]
        tasks = []
        for code in self.codes:
            b = self.behaviours[code[0]]
            tasks.append(Task(self.task_name(code), b.kind, label=b.label,
                              loss_weight=b.loss_weight, mask=b.mask))
        tasks += [Task(b.name, b.kind, label=b.label, loss_weight=0.0, mask=b.mask)
                  for b in self.routed_behaviours()]
        return tasks

    def partition(self, columns):
        """Each row's partition, `(rows,)` int32: its index into the product of the facets.

        `columns`: a dict holding every facet column (tensors or arrays).
        """
        return partition_index(self.facets, columns)

    @property
    def num_partitions(self):
        return math.prod(self.sizes[1:])

    def partition_weights(self, task_name):
        """Weight of a row of each partition in task `task_name`'s loss and metrics.

        `None` for a task trained on every row (a routed output, or no facets);
        otherwise, per facet, 1 for the task's own value and what `sharing`
        gives the others, multiplied over the facets (in `partition` order).
        """
        code = self._codes_by_name().get(task_name)
        if code is None or not self.facets:
            return None
        if self.sharing == "symmetric":
            own = int(np.ravel_multi_index(code[1:], self.sizes[1:]))
            weights = np.full(self.num_partitions, self.other_weight, dtype="float32")
            weights[own] = 1.0
            return weights
        weights = np.ones(1, dtype="float32")
        for i, (facet, value) in enumerate(zip(self.facets, code[1:])):
            row = np.zeros(len(facet.values), dtype="float32")
            if self.sharing == "paper" and i == 0:
                row[: value + 1] = 1.0  # its own and the less active groups
            row[value] = 1.0
            weights = np.outer(weights, row).ravel()
        return weights

    def _codes_by_name(self):
        return {self.task_name(c): c for c in self.codes}

    def get_config(self):
        return {
            "behaviours": [b.get_config() for b in self.behaviours],
            "facets": [f.get_config() for f in self.facets],
            "subset": self.subset,
            "other_weight": self.other_weight,
            "behaviour_name": self.behaviour_name,
            "sharing": self.sharing,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["behaviours"] = [Task.from_config(b) for b in config["behaviours"]]
        config["facets"] = [Facet.from_config(f) for f in config["facets"]]
        return cls(**config)

    def __repr__(self):
        return (f"FacetedTasks({[b.name for b in self.behaviours]} x "
                f"{[(f.name, f.values) for f in self.facets]}, {len(self.codes)} tasks)")


def partition_index(facets, columns):
    """Each row's index into the product of `facets`' values, `(rows,)` int32."""
    index = None
    for facet in facets:
        own = facet.index(_tensor(columns[facet.column]))
        index = own if index is None else index * len(facet.values) + own
    return index


def _tensor(values):
    if tf.is_tensor(values):
        return values
    values = np.asarray(values)
    if values.dtype == object:
        return tf.constant(values.astype(str))
    return tf.constant(values)
