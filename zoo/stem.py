"""STEM-Net and the multi-embedding baselines (Su et al., AAAI 2024)."""

import keras

from tfmtl.layers.experts import Experts
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.stem_layer import STEMLayer
from tfmtl.layers.switchers import PLE
from tfmtl.layers.task_embeddings import TaskEmbeddings
from zoo.blocks import finish, flatten, lookup, numeric, raw_inputs, tower_heads
from zoo.registry import register


def _embedding_sets(schema, inputs, embedding_dim, count, specific_fields="all", name="embeddings"):
    """`count` task-specific flat inputs and the shared one (last)."""
    indices = lookup(schema, inputs)
    if indices is None:
        raise ValueError("Multi-embedding models need categorical fields in the schema.")
    dense = numeric(schema, inputs)
    sets = TaskEmbeddings(schema, embedding_dim, count, specific_fields, name=name)(indices)
    return [flatten(fields, dense) for fields in sets]


@register("stem")
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
        gate_input: `"concat"` (default, the paper's best) or `"sum"`.
        stop_gradient: bool. `False` for the ablation without AFTB.
        tower_units: list of int. Defaults to `(128, 64)`.
        dropout: float. Dropout in the experts.
    """
    inputs = raw_inputs(schema)
    x = _embedding_sets(schema, inputs, embedding_dim, len(tasks), specific_fields)
    for level in range(num_layers):
        x = STEMLayer(
            len(tasks), num_shared_experts, num_specific_experts, expert_units, gate_units,
            gate_input, stop_gradient, shared_output=level < num_layers - 1, dropout=dropout,
            name=f"stem_{level}",
        )(x)
    return finish("stem", inputs, tower_heads(tasks, x, tower_units), schema, tasks)


@register("me_mmoe")
def me_mmoe(
    schema,
    tasks,
    embedding_dim=16,
    num_experts=8,
    expert_units=(512, 512, 512),
    gate_units=(128, 64),
    tower_units=(128, 64),
    dropout=0.0,
):
    """Multi-embedding MMoE (STEM-Net paper's baseline).

    Every expert reads an embedding table set of its own; the task gates
    read one more set, and mix the experts as in MMoE.

    Args:
        embedding_dim: int. Defaults to `16`.
        num_experts: int. Defaults to `8`.
        expert_units: list of int. Defaults to `(512, 512, 512)`.
        gate_units: list of int. Defaults to `(128, 64)`.
        tower_units: list of int. Defaults to `(128, 64)`.
        dropout: float. Dropout in the experts.
    """
    inputs = raw_inputs(schema)
    *expert_inputs, gate_input = _embedding_sets(schema, inputs, embedding_dim, num_experts)
    experts = keras.layers.Concatenate(axis=1, name="experts")([
        Experts(1, expert_units, dropout=dropout, name=f"expert_{e}")(x)
        for e, x in enumerate(expert_inputs)
    ])  # (batch, experts, units)
    branches = [
        SoftmaxGate(num_experts, hidden_units=gate_units, name=f"gate_{t.name}")(gate_input, experts)
        for t in tasks
    ]
    return finish("me_mmoe", inputs, tower_heads(tasks, branches, tower_units), schema, tasks)


@register("me_ple")
def me_ple(
    schema,
    tasks,
    embedding_dim=16,
    num_levels=1,
    num_specific_experts=1,
    num_shared_experts=8,
    expert_units=(512, 512, 512),
    tower_units=(128, 64),
    dropout=0.0,
):
    """Multi-embedding PLE (STEM-Net paper's baseline).

    Task `t`'s experts and gate read task `t`'s embedding tables, the shared
    experts the shared tables; gating as in PLE (no stop-gradient).

    Args:
        embedding_dim: int. Defaults to `16`.
        num_levels: int. Extraction levels. Defaults to `1`.
        num_specific_experts: int. Defaults to `1`.
        num_shared_experts: int. Defaults to `8`.
        expert_units: list of int. Defaults to `(512, 512, 512)`.
        tower_units: list of int. Defaults to `(128, 64)`.
        dropout: float. Dropout in the experts.
    """
    inputs = raw_inputs(schema)
    x = _embedding_sets(schema, inputs, embedding_dim, len(tasks))
    branches = PLE(len(tasks), num_levels, num_specific_experts, num_shared_experts, expert_units,
                   dropout=dropout, name="ple")(x)
    return finish("me_ple", inputs, tower_heads(tasks, branches, tower_units), schema, tasks)
