"""STEM-Net and the multi-embedding baselines (Su et al., AAAI 2024)."""

import keras

from tfmtl.layers.experts import Experts
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.switchers import STEMLayer
from zoo.blocks import finish, key, raw_inputs, tower_heads, view
from zoo.registry import register


@register("stem", sharing="intersection",
          sizes={"stem_paper": {}, "stem_small": {"expert_units": (128, 64)}})
def stem(
    schema,
    tasks,
    embedding_dim=16,
    specific_fields="all",
    num_layers=1,
    num_shared_experts=8,
    num_specific_experts=1,
    expert_units=(512, 512, 512),
    gate_units=(128, 64),
    gate_input="concat",
    stop_gradient=True,
    tower_units=(128, 64),
    dropout=0.0,
    embedding_l2=0.0,
    selection=None,
):
    """STEM-Net: shared and task-specific embeddings, AFTB gating (Su et al., AAAI 2024).

    Task `t`'s experts read task `t`'s embeddings, shared experts the shared
    ones; each task's gate weighs every expert, with a stop-gradient on the
    other tasks' experts (All Forward, Task-specific Backward), so task
    `t`'s loss never updates another task's experts or embeddings.

    Args:
        embedding_dim: int. Defaults to `16`, the paper's.
        specific_fields: `"all"` or a list of fields with task-specific
            tables (Table 5's variants). Defaults to `"all"`.
        num_layers: int. Stacked STEM layers (a shared gate below the last).
        num_shared_experts: int. Defaults to `8`.
        num_specific_experts: int. Per task. Defaults to `1`.
        expert_units: list of int. Defaults to `(512, 512, 512)`.
        gate_units: list of int. Gate MLPs. Defaults to `(128, 64)`.
        gate_input: what each gate reads: `"concat"` (default, the paper's best)
            or `"sum"` of the task's and the shared embeddings, or only one of them,
            `"task"` or `"shared"` (Table 6).
        stop_gradient: bool. `False` for the ablation without AFTB.
        tower_units: list of int. Defaults to `(128, 64)`.
        dropout: float. Dropout in the experts.
        embedding_l2: float. L2 on every embedding table (see `zoo.blocks.embed`).
    """
    inputs = raw_inputs(schema)
    x = view("task_embeddings", schema, inputs, embedding_dim, len(tasks), specific_fields,
             selection=selection, tasks=tasks, sharing="intersection", embedding_l2=embedding_l2)
    for level in range(num_layers):
        x = STEMLayer(
            len(tasks), num_shared_experts, num_specific_experts, expert_units, gate_units,
            gate_input, stop_gradient, shared_output=level < num_layers - 1, dropout=dropout,
            name=f"stem_{level}",
        )(x)
    return finish("stem", inputs, tower_heads(tasks, x, tower_units), schema, tasks)


@register("me_mmoe", sharing="union",
          sizes={"stem_paper": {}, "stem_small": {"expert_units": (128, 64)}})
def me_mmoe(
    schema,
    tasks,
    embedding_dim=16,
    num_experts=8,
    expert_units=(512, 512, 512),
    gate_units=(128, 64),
    tower_units=(128, 64),
    dropout=0.0,
    embedding_l2=0.0,
    selection=None,
):
    """Multi-embedding MMoE (STEM-Net paper's baseline).

    Every expert reads an embedding table set of its own ("the same number
    of embedding tables as experts", Sec. 5.1.2); each task's gate reads the
    mean of the experts' embeddings (the paper does not say what the gates
    read; our reading adds no table) and mixes the experts as in MMoE.

    Args:
        embedding_dim: int. Defaults to `16`.
        num_experts: int, at least 2. Defaults to `8`.
        expert_units: list of int. Defaults to `(512, 512, 512)`.
        gate_units: list of int. Defaults to `(128, 64)`.
        tower_units: list of int. Defaults to `(128, 64)`.
        dropout: float. Dropout in the experts.
        embedding_l2: float. L2 on every embedding table (see `zoo.blocks.embed`).
    """
    if int(num_experts) < 2:
        raise ValueError(f"me_mmoe needs at least 2 experts (one table set each). "
                         f"Received: num_experts={num_experts}")
    inputs = raw_inputs(schema)
    # num_experts - 1 "task" sets and the "shared" one: one table set per expert.
    expert_inputs = view("task_embeddings", schema, inputs, embedding_dim, num_experts - 1,
                         embedding_l2=embedding_l2)
    gate_input = keras.layers.Average(name="gate_input")(expert_inputs)
    experts = keras.layers.Concatenate(axis=1, name="experts")([
        Experts(1, expert_units, dropout=dropout, name=f"expert_{e}")(x)
        for e, x in enumerate(expert_inputs)
    ])  # (batch, experts, units)
    branches = [
        SoftmaxGate(num_experts, hidden_units=gate_units, name=f"gate_{key(t)}")(gate_input, experts)
        for t in tasks
    ]
    return finish("me_mmoe", inputs, tower_heads(tasks, branches, tower_units), schema, tasks)
