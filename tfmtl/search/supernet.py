"""AutoMTL's supernet: one interaction choice block, N experts of n choice blocks, expert selection."""

import keras
from keras import ops

from tfmtl.layers.feature_lookup import FeatureLookup
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.mlp import MLP
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.task_head import TaskHead
from tfmtl.schema.names import internal_names
from tfmtl.search.choice import ChoiceBlock
from tfmtl.search.ops import EXPERT_OPS, INTERACTIONS
from tfmtl.serialization import register

BETA = "beta"


def jsd_loss(betas):
    """The extended Jensen-Shannon auxiliary loss of AutoMTL's Eq. 2.

    `L_JSD = sum_i m_i log m_i - (1/K) sum_k sum_i p_i^(k) log p_i^(k)`, with
    `p^(k) = softmax(beta^(k))` task `k`'s distribution over the `N`
    experts and `m = (1/K) sum_k p^(k)` their mixture: `-JSD(p^(1..K))`, in
    `[-log K, 0]`. Minimising it drives the tasks' expert choices apart and
    sharpens each. Natural logarithms (the authors' code uses log2: a
    constant factor).

    Args:
        betas: `(K, N)` expert-selection parameters.

    Example:

    >>> float(jsd_loss(keras.ops.convert_to_tensor([[10.0, -10.0], [-10.0, 10.0]])))  # doctest: +ELLIPSIS
    -0.693...
    """
    p = ops.softmax(betas, axis=-1)  # (K, N)
    m = ops.mean(p, axis=0)  # (N,)
    eps = 1e-12
    return ops.sum(m * ops.log(m + eps)) - ops.mean(ops.sum(p * ops.log(p + eps), axis=-1))


@register
class NumericField(keras.layers.Layer):
    """The dense features as one more field: a linear map of all of them to the embedding width.

    As AutoMTL does with numerical features ("linearly transformed to the
    same dimension as embedding"; the authors' code maps them together).
    """

    def __init__(self, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = int(embedding_dim)
        self.dense = keras.layers.Dense(self.embedding_dim, name="dense", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x)[:, None, :]  # (batch, 1, E)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, self.embedding_dim)

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim}


def field_embeddings(schema, embedding_dim, features, lookup, embedding, numeric, numeric_field):
    """`(batch, F, E)`: the categorical fields' embeddings and, last, the numbers as one field."""
    parts = []
    if embedding is not None:
        parts.append(embedding(lookup(features)))
    if numeric is not None:
        parts.append(numeric_field(numeric(features)))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)


class Supernet(keras.Model):
    """Every candidate architecture at once (AutoMTL, Fig. 2 and Sec. 3.3-3.4).

    embeddings -> interaction choice block (`(batch, F * E)`) -> a dense
    projection to `units` (the experts' width; the paper gives none, the
    authors' code uses 64) -> `num_experts` experts of `blocks` chained
    choice blocks -> task `k`'s aggregation `f^k = sum_i softmax(beta^(k))_i E_i`
    (expert selection, instance-independent) -> towers -> heads.

    Variants (the paper's ablations): `interaction=False` (w/o INT: the
    flat embeddings go straight to the projection), `selection=False` (w/o
    SEL: per-task softmax gates over all experts, as MMoE, in place of
    `beta`), `homogeneous=True` (hom Expert: block `j` of every expert shares
    one `alpha`).

    Variable groups: `architecture_variables` (every `alpha`),
    `selection_variables` (`beta`), `network_variables` (the rest).
    """

    def __init__(self, schema, tasks, embedding_dim=16, num_experts=8, blocks=3, units=64,
                 tower_units=(128, 64), interactions=INTERACTIONS, expert_ops=EXPERT_OPS,
                 dropout=0.1, interaction=True, selection=True, homogeneous=False, **kwargs):
        super().__init__(**kwargs)
        self.schema, self.tasks = schema, list(tasks)
        self.keys = internal_names([t.name for t in self.tasks], "Task names")
        self.embedding_dim, self.units = int(embedding_dim), int(units)
        self.num_experts, self.blocks = int(num_experts), int(blocks)
        self.use_interaction, self.use_selection = bool(interaction), bool(selection)
        self.homogeneous = bool(homogeneous)
        self.lookup = FeatureLookup(schema, name="lookup") if schema.fields else None
        self.embedding = (FieldEmbedding(schema, embedding_dim, name="embedding")
                          if schema.fields else None)
        self.numeric = NumericFeatures(schema, name="numeric") if schema.dense else None
        self.numeric_field = NumericField(embedding_dim, name="numeric_field") if schema.dense \
            else None
        self.interaction = (ChoiceBlock(interactions, "interaction", dropout=dropout,
                                        name="interaction") if self.use_interaction else None)
        self.projection = keras.layers.Dense(self.units, name="projection")
        self.experts = [[ChoiceBlock(expert_ops, "expert", dropout=dropout,
                                     name=f"expert_{e}_block_{b}") for b in range(self.blocks)]
                        for e in range(self.num_experts)]
        if self.homogeneous:  # block j of every expert shares expert 0's alpha
            for expert in self.experts[1:]:
                for block, first in zip(expert, self.experts[0]):
                    block.tie(first)
        self.gates = (None if self.use_selection else
                      [SoftmaxGate(self.num_experts, name=f"gate_{self.keys[t.name]}")
                       for t in self.tasks])
        self.towers = [MLP(tower_units, name=f"{self.keys[t.name]}_tower") for t in self.tasks]
        self.heads = [TaskHead.for_task(t, name=self.keys[t.name]) for t in self.tasks]

    def build(self, input_shape=None):
        fields = len(self.schema.fields) + (1 if self.schema.dense else 0)
        shape = (None, fields, self.embedding_dim)
        if self.embedding is not None:
            self.embedding.build()
        if self.numeric_field is not None:
            self.numeric_field.build((None, len(self.schema.dense)))
        if self.interaction is not None:
            self.interaction.build(shape)
        self.projection.build((None, fields * self.embedding_dim))
        for expert in self.experts:
            for block in expert:
                block.build((None, self.units))
        if self.use_selection:
            self.beta = self.add_weight(shape=(len(self.tasks), self.num_experts), name=BETA,
                                        initializer=keras.initializers.RandomNormal(stddev=1e-3),
                                        autocast=False)  # float32 under a mixed policy too
        else:
            for gate in self.gates:
                gate.build((None, self.units))
        for tower, head in zip(self.towers, self.heads):
            tower.build((None, self.units))
            head.build((None, tower.compute_output_shape((None, self.units))[-1]))
        self.built = True

    def encode(self, features):
        """The raw features' table indices and dense columns: what `call(..., encoded=True)` takes.

        The search runs the lookups (string and integer tables, which XLA
        cannot compile) in its input pipeline, so that each step is one
        XLA-compiled function of numbers.
        """
        encoded = {}
        if self.lookup is not None:
            encoded["ids"] = self.lookup(features)
        if self.numeric is not None:
            encoded["dense"] = {n: features[n] for n in self.schema.dense_names}
        return encoded

    def call(self, features, training=None, encoded=False):
        if encoded:
            parts = []
            if self.embedding is not None:
                parts.append(self.embedding(features["ids"]))
            if self.numeric is not None:
                parts.append(self.numeric_field(self.numeric(features["dense"])))
            x = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        else:
            x = field_embeddings(self.schema, self.embedding_dim, features, self.lookup,
                                 self.embedding, self.numeric, self.numeric_field)
        if self.interaction is not None:
            x = self.interaction(x, training=training)  # (batch, F * E)
        else:
            x = ops.reshape(x, (-1, x.shape[1] * x.shape[2]))
        x = self.projection(x)  # (batch, units)
        outputs = []
        for expert in self.experts:
            h = x
            for block in expert:
                h = block(h, training=training)
            outputs.append(h)
        if self.use_selection:  # f^k for every task k: one (K, N) x (N, batch * units) product
            selection = ops.cast(ops.softmax(self.beta, axis=-1), outputs[0].dtype)
            stacked = ops.reshape(ops.stack(outputs, axis=0), (self.num_experts, -1))
            mixtures = ops.reshape(ops.matmul(selection, stacked),
                                   (len(self.tasks), -1, self.units))
        else:
            experts = ops.stack(outputs, axis=1)  # (batch, experts, units)
        result = {}
        for k, task in enumerate(self.tasks):
            if self.use_selection:
                mixed = mixtures[k]
            else:
                mixed = self.gates[k](x, experts)
            h = self.towers[k](mixed, training=training)
            result[self.keys[task.name]] = self.heads[k](h)
        return result

    def choice_blocks(self):
        blocks = [self.interaction] if self.interaction is not None else []
        return blocks + [block for expert in self.experts for block in expert]

    @property
    def architecture_variables(self):
        seen, found = set(), []
        for block in self.choice_blocks():
            if id(block.alpha) not in seen:
                seen.add(id(block.alpha))
                found.append(block.alpha)
        return found

    @property
    def selection_variables(self):
        return [self.beta] if self.use_selection else []

    @property
    def network_variables(self):
        special = {id(v) for v in self.architecture_variables + self.selection_variables}
        return [v for v in self.trainable_variables if id(v) not in special]
