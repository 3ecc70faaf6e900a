"""The architecture an AutoMTL search derived (tfmtl/search), as a zoo model."""

import keras

from tfmtl.layers.switchers import switcher_for
from tfmtl.search.architecture import Architecture
from tfmtl.search.ops import make_interaction
from tfmtl.search.supernet import NumericField
from zoo.blocks import embed, finish, lookup, numeric, raw_inputs, tower_heads
from zoo.registry import register


@register("automtl", sharing="union")
def automtl(schema, tasks, architecture=None, selection=None):
    """An AutoMTL-derived architecture, built to train from scratch (Sec. 3.4.3).

    Embeddings (the dense features as one more field) -> the derived
    interaction operation -> the derived experts, each task's softmax gate
    over its selected experts (`tfmtl.search.SearchedExperts`) -> towers ->
    heads.

    Args:
        architecture: a `tfmtl.search.Architecture`, its dict, or the path of
            its JSON (`python -m tfmtl search --out arch.json`).
        selection: a MultiSFS selection: every part reads the union of the
            tasks' fields.
    """
    if architecture is None:
        raise ValueError("automtl needs architecture=...: the result of tfmtl.search.search or "
                         "of `python -m tfmtl search --out arch.json`.")
    if isinstance(architecture, str):
        architecture = Architecture.load(architecture)
    elif isinstance(architecture, dict):
        architecture = Architecture(**architecture)
    inputs = raw_inputs(schema)
    parts = []
    fields = embed(schema, lookup(schema, inputs), architecture.embedding_dim)
    if fields is not None:
        parts.append(fields)
    dense = numeric(schema, inputs)
    if dense is not None:
        parts.append(NumericField(architecture.embedding_dim, name="numeric_field")(dense))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=1)(parts)
    x = make_interaction(architecture.interaction, architecture.dropout, name="interaction")(x)
    spec = architecture.switcher_spec([t.name for t in tasks])
    branches = switcher_for(spec, len(tasks), name="automtl")(x)
    outputs = tower_heads(tasks, branches, architecture.tower_units)
    return finish("automtl", inputs, outputs, schema, tasks)
