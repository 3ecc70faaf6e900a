from tfmtl.layers.adaptive_information_transfer import AdaptiveInformationTransfer
from tfmtl.layers.label_constraint import LabelConstraint
from tfmtl.layers.mlp import MLP
from tfmtl.layers.task_head import TaskHead
from zoo.blocks import finish, key, raw_inputs, task_inputs
from zoo.registry import register


@register("aitm", sharing="none")
def aitm(
    schema,
    tasks,
    embedding_dim=5,
    tower_units=(128, 64, 32),
    tower_dropout=(0.1, 0.3, 0.3),
    constraint_weight=0.6,
    selection=None,
):
    """Adaptive Information Transfer Multi-task framework (Xi et al., KDD 2021).

    The tasks are the steps of a conversion funnel in order (click, then
    conversion, ...), all binary. Task `t`'s tower gives `q_t`; an AIT
    module fuses it with `p_{t-1} = h(z_{t-1})`, what the previous task
    transfers (`h` a dense ReLU layer), into `z_t` (Eq. 1-4; `z_1 = q_1`).
    The label-constraint loss `alpha * sum max(yhat_t - yhat_{t-1}, 0)` is
    added for each consecutive pair (Eq. 6) and shown as a metric.

    Args:
        embedding_dim: int. Defaults to `5`, the authors' code.
        tower_units: list of int. Defaults to `(128, 64, 32)`, the authors'.
        tower_dropout: float or list. Defaults to `(0.1, 0.3, 0.3)`.
        constraint_weight: float. `alpha`. Defaults to `0.6`.
        selection: a MultiSFS selection: each task's tower reads its fields.
    """
    if len(tasks) < 2 or any(t.kind != "binary" for t in tasks):
        raise ValueError(
            "AITM takes two or more binary tasks, in funnel order. Received: "
            f"{[(t.name, t.kind) for t in tasks]}"
        )
    last_dropout = tower_dropout[-1] if isinstance(tower_dropout, (list, tuple)) else tower_dropout
    inputs = raw_inputs(schema)
    xs = task_inputs(schema, inputs, embedding_dim, tasks, selection)
    outputs, z, previous = {}, None, None
    for t, task in enumerate(tasks):
        q = MLP(tower_units, dropout=tower_dropout, name=f"{key(task)}_tower")(xs[t])
        if z is None:
            z = q
        else:
            p = MLP([tower_units[-1]], dropout=last_dropout,
                    name=f"{key(tasks[t - 1])}_transfer")(z)
            z = AdaptiveInformationTransfer(name=f"{key(task)}_ait")(q, p)
        if previous is None:
            outputs[key(task)] = previous = TaskHead("binary", name=key(task))(z)
        else:
            prediction = TaskHead("binary", name=f"{key(task)}_head")(z)
            outputs[key(task)] = LabelConstraint(constraint_weight, name=key(task),
                                                 dtype=prediction.dtype)(previous, prediction)
            previous = prediction
    return finish("aitm", inputs, outputs, schema, tasks)
