from tfmtl.layers.mlp import MLP
from tfmtl.layers.task_head import TaskHead
from zoo.blocks import embed, finish, flatten, lookup, numeric, raw_inputs
from zoo.registry import register


@register("single_task")
def single_task(
    schema, tasks, embedding_dim=16, hidden_units=(256, 128, 64), dropout=0.0, batch_norm=False
):
    """Independent networks per task, behind one multi-task interface.

    Each task has its own embedding tables and MLP; nothing is shared but
    the (weightless) lookups. The reference point of negative transfer.

    Args:
        embedding_dim: int. Defaults to `16`.
        hidden_units: list of int. Each task's MLP. Defaults to `(256, 128, 64)`.
        dropout, batch_norm: as in `tfmtl.layers.MLP`.
    """
    inputs = raw_inputs(schema)
    indices = lookup(schema, inputs)
    dense = numeric(schema, inputs)
    outputs = {}
    for task in tasks:
        x = flatten(embed(schema, indices, embedding_dim, name=f"{task.name}_embedding"), dense)
        h = MLP(hidden_units, dropout=dropout, batch_norm=batch_norm, name=f"{task.name}_network")(x)
        outputs[task.name] = TaskHead(task.kind, name=task.name)(h)
    return finish("single_task", inputs, outputs, schema, tasks)
