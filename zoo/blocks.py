"""Pieces every zoo model is assembled from: inputs, embeddings, towers, heads."""

import keras

from tfmtl.layers.feature_lookup import FeatureLookup
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.mlp import MLP
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.layers.task_head import TaskHead
from tfmtl.models.multi_task_model import MultiTaskModel


def raw_inputs(schema):
    """One `(batch,)` `keras.Input` per feature, in the dtype users send."""
    return {
        f.name: keras.Input(shape=(), dtype=f.dtype, name=f.name) for f in schema
    }


def lookup(schema, inputs):
    """Table indices of every categorical field (shared by all tables)."""
    return FeatureLookup(schema, name="lookup")(inputs) if schema.fields else None


def embed(schema, indices, embedding_dim, name="embedding"):
    """`(batch, fields, dim)` embeddings, or `None` without categorical fields."""
    if indices is None:
        return None
    return FieldEmbedding(schema, embedding_dim, name=name)(indices)


def numeric(schema, inputs):
    """`(batch, dense)` normalised numbers, or `None` without dense features."""
    return NumericFeatures(schema, name="numeric")(inputs) if schema.dense else None


def flatten(fields, dense):
    """Concatenates flattened field embeddings and dense features."""
    parts = []
    if fields is not None:
        parts.append(keras.layers.Flatten()(fields))
    if dense is not None:
        parts.append(dense)
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-1)(parts)


def encode(schema, inputs, embedding_dim):
    """Raw inputs to the flat `(batch, fields * dim + dense)` representation."""
    return flatten(embed(schema, lookup(schema, inputs), embedding_dim), numeric(schema, inputs))


def tower_heads(tasks, branches, tower_units, dropout=0.0, batch_norm=False):
    """A tower and a head per task on its branch: `{task: (batch, 1)}`."""
    outputs = {}
    for task, branch in zip(tasks, branches):
        h = MLP(tower_units, dropout=dropout, batch_norm=batch_norm, name=f"{task.name}_tower")(
            branch
        )
        outputs[task.name] = TaskHead(task.kind, name=task.name)(h)
    return outputs


def finish(name, inputs, outputs, schema, tasks):
    """The `MultiTaskModel` of the given graph."""
    return MultiTaskModel(inputs=inputs, outputs=outputs, schema=schema, tasks=tasks, name=name)
