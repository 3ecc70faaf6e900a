"""Task specification."""

import dataclasses
import math

from tfmtl.schema.names import check_name

KINDS = ("binary", "regression")


@dataclasses.dataclass(frozen=True)
class Task:
    """One prediction target.

    Args:
        name: str. Output name of the task (`model(x)[name]`).
        kind: str. `"binary"` (sigmoid head, log loss, AUC) or
            `"regression"` (linear head, squared error). Defaults to
            `"binary"`.
        label: str or tuple of str. Label column; defaults to `name`. A
            tuple names binary columns whose product is the label (ESMM's
            CTCVR label is `("click", "conversion")`).
        loss_weight: float. Weight of the task's loss in the total. `0`
            keeps the output and its metrics but trains no loss on it.
            Defaults to `1.0`.
        mask: str or `None`. Column of per-row weights in [0, 1]: the
            task's loss and metrics count only rows where it is above 0 (CVR
            on clicked rows: the `click` column), a row of weight 0.1 a tenth
            as much as a row of weight 1 (MFH's group tasks that also learn
            a little from other groups' rows).
        auxiliary: bool. A training-only output (FDN's auxiliary heads):
            it has a loss but no metrics, and is not served. Defaults to
            `False`.
        initial_bias: float or `None`. The head's bias before training (a
            logit for a binary task); `None` starts it at 0. `infer_schema`
            sets a regression task's to its label's mean, so the linear head
            starts on the label's scale instead of spending the first steps,
            and the shared layers' first gradients, on reaching it (MMoE on
            MovieLens-100K after one epoch: like AUC 0.740 / 0.747 from 0,
            0.770 / 0.770 from the mean, seeds 0 / 1). ESMM's and AITM's
            chained probabilities start their heads at 0.

    Example:

    >>> Task("cvr", label="conversion", mask="click").label
    'conversion'
    """

    name: str
    kind: str = "binary"
    label: object = None
    loss_weight: float = 1.0
    mask: str = None
    auxiliary: bool = False
    initial_bias: float = None

    def __post_init__(self):
        check_name(self.name, "Task")
        if self.kind not in KINDS:
            raise ValueError(
                f"Task {self.name!r}: kind must be one of {KINDS}. "
                f"Received: kind={self.kind!r}"
            )
        label = self.name if self.label is None else self.label
        if isinstance(label, (list, tuple)):
            label = tuple(label)
            if not label or not all(isinstance(c, str) for c in label):
                raise ValueError(
                    f"Task {self.name!r}: label must be a column name or a "
                    f"non-empty tuple of column names. Received: label={label!r}"
                )
            if len(label) == 1:
                label = label[0]
            elif self.kind != "binary":
                raise ValueError(
                    f"Task {self.name!r}: a product of label columns needs "
                    f"kind='binary'. Received: kind={self.kind!r}"
                )
        elif not isinstance(label, str):
            raise ValueError(
                f"Task {self.name!r}: label must be a column name. "
                f"Received: label={label!r}"
            )
        object.__setattr__(self, "label", label)
        if not self.loss_weight >= 0:
            raise ValueError(
                f"Task {self.name!r}: loss_weight must be >= 0. "
                f"Received: loss_weight={self.loss_weight}"
            )
        object.__setattr__(self, "loss_weight", float(self.loss_weight))
        if self.initial_bias is not None:
            bias = float(self.initial_bias)
            if not math.isfinite(bias):
                raise ValueError(
                    f"Task {self.name!r}: initial_bias must be a finite number. "
                    f"Received: initial_bias={self.initial_bias!r}"
                )
            object.__setattr__(self, "initial_bias", bias)
        if self.mask is not None and not isinstance(self.mask, str):
            raise ValueError(
                f"Task {self.name!r}: mask must be a column name. "
                f"Received: mask={self.mask!r}"
            )

    @property
    def label_columns(self):
        return self.label if isinstance(self.label, tuple) else (self.label,)

    @property
    def columns(self):
        """Every data column the task reads: labels, then the mask."""
        return self.label_columns + ((self.mask,) if self.mask else ())

    def get_config(self):
        config = dataclasses.asdict(self)
        if isinstance(self.label, tuple):
            config["label"] = list(self.label)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
