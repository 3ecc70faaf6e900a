import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.schema.schema import Schema
from tfmtl.serialization import register


@register
class TaskEmbeddings(Layer):
    """A shared embedding table set and one per task (STEM-Net, Sec. 4.1).

    Each task `t` embeds the `specific_fields` with tables of its own and
    the other fields with the shared tables; the shared set embeds every
    field. Which fields get task-specific tables is the paper's Table 5
    choice: all fields, a named subset (user and item ids), the user-side
    fields, or none (`[]`, STEM-Net-∅: every task reads the shared tables).

    Args:
        schema: `Schema` or its config.
        embedding_dim: int. Width of every embedding.
        num_tasks: int. Number of task-specific table sets.
        specific_fields: `"all"` or a list of field names. Defaults to
            `"all"`.
        embeddings_initializer: Defaults to `"uniform"`.
        embeddings_regularizer: every table's. Defaults to `None`.

    Call arguments:
        indices: dict of field name to indices, from `FeatureLookup`.

    Returns:
        A list of `num_tasks + 1` tensors `(batch, fields, dim)`: each
        task's embeddings, then the shared ones.

    Example:

    >>> from tfmtl.schema import Schema, SparseFeature
    >>> s = Schema([SparseFeature("u", num_bins=9), SparseFeature("i", num_bins=9)])
    >>> out = TaskEmbeddings(s, 4, 2, specific_fields=["u"])({"u": ops.array([1]), "i": ops.array([2])})
    >>> [tuple(o.shape) for o in out]
    [(1, 2, 4), (1, 2, 4), (1, 2, 4)]
    """

    def __init__(
        self,
        schema,
        embedding_dim,
        num_tasks,
        specific_fields="all",
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.schema = Schema.of(schema)
        if int(num_tasks) < 1:
            raise ValueError(f"num_tasks must be >= 1. Received: num_tasks={num_tasks}")
        names = self.schema.field_names
        if specific_fields == "all":
            chosen = list(names)
        else:
            chosen = list(specific_fields)
            unknown = [f for f in chosen if f not in names]
            if unknown:
                raise ValueError(
                    f"specific_fields must be 'all' or a list of categorical fields "
                    f"of the schema {list(names)}. Received: {specific_fields!r}"
                )
        self.embedding_dim = int(embedding_dim)
        self.num_tasks = int(num_tasks)
        self.specific_fields = specific_fields if specific_fields == "all" else chosen
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.shared = FieldEmbedding(self.schema, embedding_dim, embeddings_initializer,
                                     self.embeddings_regularizer,
                                     **self.sublayer_options("shared"))
        specific_schema = self.schema.select(chosen) if chosen else None
        self.specific = [
            FieldEmbedding(specific_schema, embedding_dim, embeddings_initializer,
                           self.embeddings_regularizer, **self.sublayer_options(f"task_{t}"))
            for t in range(self.num_tasks)
        ] if chosen else []  # none (Table 5's STEM-Net-∅): every set is the shared one
        # Position of each field in concat([shared (F), specific (F_s)], axis=1).
        order = {name: k for k, name in enumerate(specific_schema.field_names if chosen else [])}
        self.positions = [
            len(names) + order[name] if name in order else f for f, name in enumerate(names)
        ]

    def build(self, input_shape=None):
        self.shared.build()
        for table in self.specific:
            table.build()

    def call(self, indices):
        shared = self.shared(indices)  # (batch, fields, dim)
        if not self.specific:
            return [shared] * (self.num_tasks + 1)
        tasks = [
            ops.take(ops.concatenate([shared, table(indices)], axis=1), self.positions, axis=1)
            for table in self.specific
        ]
        return tasks + [shared]

    def compute_output_spec(self, indices):
        batch = indices[self.schema.field_names[0]].shape[0]
        shape = (batch, len(self.schema.fields), self.embedding_dim)
        return [keras.KerasTensor(shape, dtype=self.compute_dtype) for _ in range(self.num_tasks + 1)]
