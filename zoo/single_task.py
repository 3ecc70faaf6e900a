from tfmtl.layers.mlp import MLP
from tfmtl.layers.task_head import TaskHead
from zoo.blocks import embed, field_view, finish, flatten, key, lookup, numeric, raw_inputs
from zoo.registry import register


# STEM-Net's Single-Task: a bottom [512, 512, 512] and a tower [128, 128] (the authors' code).
@register("single_task", sharing="none",
          sizes={"stem_paper": {"hidden_units": (512, 512, 512, 128, 128)},
                 "stem_small": {"hidden_units": (128, 64, 128, 64)}})
def single_task(
    schema, tasks, embedding_dim=16, hidden_units=(256, 128, 64), dropout=0.0, batch_norm=False,
    embedding_l2=0.0, selection=None,
):
    """Independent networks per task, behind one multi-task interface.

    Each task has its own embedding tables and MLP; nothing is shared but
    the (weightless) lookups. The reference point of negative transfer.

    Args:
        embedding_dim: int. Defaults to `16`.
        hidden_units: list of int. Each task's MLP. Defaults to `(256, 128, 64)`.
        dropout, batch_norm: as in `tfmtl.layers.MLP`.
        embedding_l2: float. L2 on every embedding table (see `zoo.blocks.embed`).
        selection: a MultiSFS selection: each task's network reads its fields.
    """
    inputs = raw_inputs(schema)
    indices = lookup(schema, inputs)
    dense = numeric(schema, inputs)
    outputs = {}
    for task in tasks:
        fields = embed(schema, indices, embedding_dim, name=f"{key(task)}_embedding",
                       embedding_l2=embedding_l2)
        x = flatten(fields, dense) if selection is None else field_view(
            schema, fields, dense, selection.fields_of(task.name), key(task))
        h = MLP(hidden_units, dropout=dropout, batch_norm=batch_norm, name=f"{key(task)}_network")(x)
        outputs[key(task)] = TaskHead.for_task(task, name=key(task))(h)
    return finish("single_task", inputs, outputs, schema, tasks)
