"""The stages every zoo model is assembled from.

raw inputs -> lookups -> embeddings (+ normalised numbers) -> view ->
switcher -> towers -> heads. Each function here is one stage; `zoo/switcher_model.py`
chains them for the switcher models, and the other models call the stages
they need.
"""

import contextlib

import keras

from tfmtl.layers.feature_lookup import FeatureLookup
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.mlp import MLP
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.layers.task_head import TaskHead
from tfmtl.layers.views.field_view import FieldView
from tfmtl.layers.views.task_embeddings import TaskEmbeddings
from tfmtl.models.multi_task_model import MultiTaskModel
from tfmtl.schema.names import internal_name

VIEWS = ("shared", "task_embeddings")
SHARING = ("union", "intersection", "none")

# While `zoo.build(..., field_mask=True)` builds a model: MultiSFS's `FieldMask`,
# called on every embedding and number the model reads.
_FIELD_MASK = []


@contextlib.contextmanager
def field_mask_scope(mask):
    """Builds models whose embeddings and numbers pass through `mask` (a `FieldMask`)."""
    _FIELD_MASK.append(mask)
    try:
        yield mask
    finally:
        _FIELD_MASK.pop()


def _masked(x, names):
    return _FIELD_MASK[-1](x, names=list(names)) if _FIELD_MASK and x is not None else x


def key(task):
    """The Keras name of a task's output (its internal name)."""
    return internal_name(task.name)


def raw_inputs(schema):
    """One `(batch,)` `keras.Input` per feature, in the dtype users send.

    Keyed by the user's column name; the tensor carries the internal name
    (a SavedModel signature argument).
    """
    return {
        f.name: keras.Input(shape=(), dtype=f.dtype, name=schema.internal_names[f.name])
        for f in schema
    }


def lookup(schema, inputs):
    """Table indices of every categorical field (shared by all tables)."""
    if not schema.fields:
        return None
    return FeatureLookup(schema, name="lookup")({f.name: inputs[f.name] for f in schema.fields})


def embed(schema, indices, embedding_dim, name="embedding", embedding_l2=0.0):
    """`(batch, fields, dim)` embeddings, or `None` without categorical fields.

    `embedding_l2`: adds `embedding_l2 * sum(W^2)` of every table to each
    batch's loss (FuxiCTR's `embedding_regularizer`, whose 1e-6 is
    `(1e-6 / 2) ||W||^2`, i.e. `embedding_l2=5e-7`).
    """
    if indices is None:
        return None
    return _masked(FieldEmbedding(schema, embedding_dim, name=name,
                                  embeddings_regularizer=_l2(embedding_l2))(indices),
                   schema.field_names)


def _l2(value):
    return keras.regularizers.L2(float(value)) if value else None


def numeric(schema, inputs):
    """`(batch, dense)` normalised numbers, or `None` without dense features."""
    if not schema.dense:
        return None
    dense = {n: inputs[n] for n in schema.dense_names}
    return _masked(NumericFeatures(schema, name="numeric")(dense), schema.dense_names)


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


def view(kind, schema, inputs, embedding_dim, num_branches, specific_fields="all",
         selection=None, tasks=None, sharing="union", embedding_l2=0.0):
    """The switcher's input: one tensor, or `num_branches + 1` (one per branch, then the shared one).

    - `"shared"`: every branch reads the flat shared representation;
    - `"task_embeddings"` (STEM-Net, Sec. 4.1): branch `k` reads task `k`'s
      embedding tables for `specific_fields` and the shared tables for the
      rest; the shared input reads the shared tables.

    With a MultiSFS `selection` (`tfmtl.selection.Selection`; the schema
    already holds only selected fields) and `sharing="intersection"`, branch
    `k` reads only task `k`'s fields and the shared input the fields every
    task selected (Sec. 3.4, PLE); with `"union"` everything reads the
    selected fields (MMoE).
    """
    if kind == "shared":
        fields = embed(schema, lookup(schema, inputs), embedding_dim, embedding_l2=embedding_l2)
        dense = numeric(schema, inputs)
        if selection is None or sharing == "union":
            return flatten(fields, dense)
        sets = [fields] * (num_branches + 1)
    elif kind == "task_embeddings":
        indices = lookup(schema, inputs)
        if indices is None:
            raise ValueError("Task-specific embeddings need categorical fields in the schema.")
        dense = numeric(schema, inputs)
        sets = TaskEmbeddings(schema, embedding_dim, num_branches, specific_fields,
                              embeddings_regularizer=_l2(embedding_l2),
                              name="embeddings")(indices)
        sets = [_masked(fields, schema.field_names) for fields in sets]
        if selection is None or sharing == "union":
            return [flatten(fields, dense) for fields in sets]
    else:
        raise ValueError(f"Unknown view {kind!r}; choose from {VIEWS}.")
    chosen = [selection.fields_of(t.name) for t in tasks] + [selection.shared_for(sharing)]
    labels = [key(t) for t in tasks] + ["shared"]
    return [field_view(schema, part, dense, names, label)
            for part, names, label in zip(sets, chosen, labels)]


def field_view(schema, fields, dense, chosen, label):
    """The flat input of the fields `chosen` (a `FieldView` named `view_<label>`)."""
    layer = FieldView(schema.field_names, schema.dense_names, chosen, name=f"view_{label}")
    return layer([x for x in (fields, dense) if x is not None])


def task_inputs(schema, inputs, embedding_dim, tasks, selection=None, name="embedding"):
    """One flat input per task: all fields, or each task's selected fields (ESMM, AITM)."""
    fields, dense = embed(schema, lookup(schema, inputs), embedding_dim, name), numeric(schema,
                                                                                      inputs)
    if selection is None:
        return [flatten(fields, dense)] * len(tasks)
    return [field_view(schema, fields, dense, selection.fields_of(t.name), key(t))
            for t in tasks]


def tower_heads(tasks, branches, tower_units, dropout=0.0, batch_norm=False):
    """A tower and a head per task on its branch: `{output key: (batch, 1)}`."""
    outputs = {}
    for task, branch in zip(tasks, branches):
        h = MLP(tower_units, dropout=dropout, batch_norm=batch_norm, name=f"{key(task)}_tower")(
            branch
        )
        outputs[key(task)] = TaskHead.for_task(task, name=key(task))(h)
    return outputs


def finish(name, inputs, outputs, schema, tasks, facets=None, loss_normalization="per_task"):
    """The `MultiTaskModel` of the given graph (outputs keyed by `key(task)`)."""
    return MultiTaskModel(inputs=inputs, outputs=outputs, schema=schema, tasks=tasks,
                          facets=facets, loss_normalization=loss_normalization, name=name)
