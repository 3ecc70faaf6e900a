"""Zoo models that are one switcher between the embeddings and the towers."""

from tfmtl.layers.switchers import CGC, MMoE, OMoE, PLE, SharedBottom
from zoo.blocks import encode, finish, raw_inputs, tower_heads
from zoo.registry import register


def _switcher_model(name, switcher, schema, tasks, embedding_dim, tower_units, tower_dropout):
    inputs = raw_inputs(schema)
    branches = switcher(encode(schema, inputs, embedding_dim))
    outputs = tower_heads(tasks, branches, tower_units, dropout=tower_dropout)
    return finish(name, inputs, outputs, schema, tasks)


@register("shared_bottom")
def shared_bottom(
    schema,
    tasks,
    embedding_dim=16,
    bottom_units=(256, 128),
    tower_units=(64,),
    dropout=0.0,
    tower_dropout=0.0,
):
    """Shared-Bottom: one shared MLP, a tower per task (Caruana, 1997).

    Args:
        embedding_dim: int. Defaults to `16`.
        bottom_units: list of int. The shared MLP. Defaults to `(256, 128)`.
        tower_units: list of int. Each task's tower. Defaults to `(64,)`.
        dropout, tower_dropout: float. Dropout in the bottom / towers.
    """
    switcher = SharedBottom(len(tasks), bottom_units, dropout=dropout, name="shared_bottom")
    return _switcher_model(
        "shared_bottom", switcher, schema, tasks, embedding_dim, tower_units, tower_dropout
    )


@register("omoe")
def omoe(
    schema,
    tasks,
    embedding_dim=16,
    num_experts=8,
    expert_units=(256, 128),
    tower_units=(64,),
    dropout=0.0,
    tower_dropout=0.0,
):
    """One-gate Mixture-of-Experts (the MMoE paper's OMoE baseline).

    Args:
        embedding_dim: int. Defaults to `16`.
        num_experts: int. Defaults to `8`, as in the MMoE paper.
        expert_units: list of int. Defaults to `(256, 128)`.
        tower_units: list of int. Defaults to `(64,)`.
        dropout, tower_dropout: float. Dropout in the experts / towers.
    """
    switcher = OMoE(len(tasks), num_experts, expert_units, dropout=dropout, name="omoe")
    return _switcher_model("omoe", switcher, schema, tasks, embedding_dim, tower_units, tower_dropout)


@register("mmoe")
def mmoe(
    schema,
    tasks,
    embedding_dim=16,
    num_experts=8,
    expert_units=(256, 128),
    tower_units=(64,),
    dropout=0.0,
    tower_dropout=0.0,
):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

    Args:
        embedding_dim: int. Defaults to `16`.
        num_experts: int. Defaults to `8`, as in the paper.
        expert_units: list of int. Defaults to `(256, 128)`.
        tower_units: list of int. Defaults to `(64,)`.
        dropout, tower_dropout: float. Dropout in the experts / towers.
    """
    switcher = MMoE(len(tasks), num_experts, expert_units, dropout=dropout, name="mmoe")
    return _switcher_model("mmoe", switcher, schema, tasks, embedding_dim, tower_units, tower_dropout)


@register("cgc")
def cgc(
    schema,
    tasks,
    embedding_dim=16,
    num_specific_experts=1,
    num_shared_experts=1,
    expert_units=(256, 128),
    tower_units=(64,),
    dropout=0.0,
    tower_dropout=0.0,
):
    """Customized Gate Control: PLE with one extraction level (Tang et al., 2020).

    Args:
        embedding_dim: int. Defaults to `16`.
        num_specific_experts: int. Experts per task. Defaults to `1`.
        num_shared_experts: int. Defaults to `1`.
        expert_units: list of int. Defaults to `(256, 128)`.
        tower_units: list of int. Defaults to `(64,)`.
        dropout, tower_dropout: float. Dropout in the experts / towers.
    """
    switcher = CGC(
        len(tasks), num_specific_experts, num_shared_experts, expert_units, dropout=dropout,
        name="cgc",
    )
    return _switcher_model("cgc", switcher, schema, tasks, embedding_dim, tower_units, tower_dropout)


@register("ple")
def ple(
    schema,
    tasks,
    embedding_dim=16,
    num_levels=2,
    num_specific_experts=1,
    num_shared_experts=1,
    expert_units=(256, 128),
    tower_units=(64,),
    dropout=0.0,
    tower_dropout=0.0,
):
    """Progressive Layered Extraction (Tang et al., RecSys 2020).

    Args:
        embedding_dim: int. Defaults to `16`.
        num_levels: int. Extraction levels. Defaults to `2`.
        num_specific_experts: int. Experts per task and level. Defaults to `1`.
        num_shared_experts: int. Shared experts per level. Defaults to `1`.
        expert_units: list of int. Defaults to `(256, 128)`.
        tower_units: list of int. Defaults to `(64,)`.
        dropout, tower_dropout: float. Dropout in the experts / towers.
    """
    switcher = PLE(
        len(tasks), num_levels, num_specific_experts, num_shared_experts, expert_units,
        dropout=dropout, name="ple",
    )
    return _switcher_model("ple", switcher, schema, tasks, embedding_dim, tower_units, tower_dropout)
