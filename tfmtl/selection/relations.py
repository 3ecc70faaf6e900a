"""MultiSFS's field-wise task relations (Sec. 3.3, Algorithm 1, Eq. 11-23): a GNN on the data-task graph."""

import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmtl.data.pipeline import to_dataset
from tfmtl.data.targets import Targets
from tfmtl.layers.base import Layer
from tfmtl.layers.feature_lookup import FeatureLookup
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.serialization import register


@register
class FieldwiseSAGE(Layer):
    """One bi-directional field-wise GraphSAGE layer (Eq. 16-18).

    Data nodes `E` (`(batch, N, D)`) and task nodes `Z` (`(T, N, D)`) update
    field by field; for field `n`:

    `e'_n = U_n [Mean({ReLU(W^t_n z_n) : z in N(x)}) ; e_n]` (Eq. 18),
    `z'_n = U_n [Mean({ReLU(W^d_n e_n) : x in N(z)}) ; z_n]`,

    with `W^t_n, W^d_n` (D x D) and `U_n` (D x 2D) per field, one `U` for both
    directions as Eq. 16-17 write it, no bias. The neighbourhoods are the
    edges of the data-task graph (`edges[b, t] = 1` when sample `b`'s label
    of task `t` is a known positive); an empty neighbourhood's mean is 0.
    Messages are mean-aggregated over the data nodes of the batch.

    Args:
        num_fields: int. N.
        dim: int. D.

    Call arguments:
        data: `(batch, N, D)`. tasks: `(T, N, D)`. edges: `(batch, T)`.

    Returns:
        `(data', tasks')`, the same shapes.
    """

    def __init__(self, num_fields, dim, **kwargs):
        super().__init__(**kwargs)
        self.num_fields = int(num_fields)
        self.dim = int(dim)

    def build(self, data_shape=None, tasks_shape=None, edges_shape=None):
        n, d = self.num_fields, self.dim
        self.task_message = self.add_weight(shape=(n, d, d), initializer="glorot_uniform",
                                            name="task_message")  # W^t
        self.data_message = self.add_weight(shape=(n, d, d), initializer="glorot_uniform",
                                            name="data_message")  # W^d
        self.update = self.add_weight(shape=(n, 2 * d, d), initializer="glorot_uniform",
                                      name="update")  # U

    def call(self, data, tasks, edges):
        edges = ops.cast(edges, data.dtype)
        task_messages = ops.relu(ops.einsum("tnd,nde->tne", tasks, self.task_message))
        degree = ops.maximum(ops.sum(edges, axis=1), 1.0)[:, None, None]  # (batch, 1, 1)
        to_data = ops.einsum("bt,tne->bne", edges, task_messages) / degree
        data_messages = ops.relu(ops.einsum("bnd,nde->bne", data, self.data_message))
        degree = ops.maximum(ops.sum(edges, axis=0), 1.0)[:, None, None]  # (T, 1, 1)
        to_tasks = ops.einsum("bt,bne->tne", edges, data_messages) / degree
        new_data = ops.einsum("bnk,nke->bne", ops.concatenate([to_data, data], axis=-1),
                              self.update)
        new_tasks = ops.einsum("tnk,nke->tne", ops.concatenate([to_tasks, tasks], axis=-1),
                               self.update)
        return new_data, new_tasks


class TaskRelationGNN(keras.Model):
    """The data-task bipartite graph's node representations and the field-level prediction.

    Data nodes embed a sample's fields with tables of their own (`V'`,
    Eq. 11; a dense feature's field vector is its normalised value times a
    learned vector plus a bias); task nodes are learned `(N, D)` vectors
    `z^t` (Eq. 12); `L` `FieldwiseSAGE` layers pass messages (Eq. 14-20).

    The field-level prediction of test label `j` of sample `i`,
    `y^ = sum_n Sigmoid(e_{L,n} . z_{L,n}^j)` (Eq. 21), lies in (0, N) and is
    no probability; this takes the mean over fields instead of the sum,
    `(1/N) sum_n Sigmoid(...)`, which keeps each field's bounded vote and is
    a probability, so the BCE of Eq. 22 (with its minus sign) is defined.
    """

    def __init__(self, schema, num_tasks, dim=16, num_layers=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema
        self.num_tasks = int(num_tasks)
        self.dim = int(dim)
        self.names = list(schema.names)
        self.lookup = FeatureLookup(schema, name="lookup") if schema.fields else None
        self.embedding = FieldEmbedding(schema, dim, name="data_tables") if schema.fields else None
        self.numeric = NumericFeatures(schema, name="numeric") if schema.dense else None
        n_dense = len(schema.dense)
        if n_dense:
            self.dense_scale = self.add_weight(shape=(n_dense, dim),
                                               initializer=keras.initializers.GlorotUniform(seed),
                                               name="dense_scale")
            self.dense_bias = self.add_weight(shape=(n_dense, dim), initializer="zeros",
                                              name="dense_bias")
        self.task_nodes = self.add_weight(shape=(self.num_tasks, len(self.names), dim),
                                          initializer=keras.initializers.GlorotUniform(seed),
                                          name="task_nodes")  # z^t_n
        self.sage = [FieldwiseSAGE(len(self.names), dim, name=f"sage_{i}")
                     for i in range(int(num_layers))]
        # Position of each schema feature in concat([fields, dense], axis=1).
        order = list(schema.field_names) + list(schema.dense_names)
        self.positions = [order.index(n) for n in self.names]

    def nodes(self, features, edges):
        """`(E_L, Z_L)`: data nodes `(batch, N, D)` and task nodes `(T, N, D)` after `L` layers."""
        parts = []
        if self.embedding is not None:
            parts.append(self.embedding(self.lookup(features)))
        if self.numeric is not None:
            x = self.numeric(features)  # (batch, dense)
            parts.append(x[:, :, None] * self.dense_scale[None] + self.dense_bias[None])
        data = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        data = ops.take(data, self.positions, axis=1)
        tasks = ops.convert_to_tensor(self.task_nodes)
        for layer in self.sage:
            data, tasks = layer(data, tasks, edges)
        return data, tasks

    def call(self, features, edges):
        """`(batch, T)` probabilities of every task's label from the field-level scores."""
        data, tasks = self.nodes(features, edges)
        logits = ops.einsum("bnd,tnd->btn", data, tasks)  # (batch, T, N)
        return ops.mean(ops.sigmoid(logits), axis=-1)

    def relations(self):
        """`(N, T, T)` cosine of the task nodes' field vectors `z_n` (Eq. 23), 1 on the diagonal."""
        z = ops.convert_to_numpy(self.task_nodes)  # (T, N, D)
        unit = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
        r = np.einsum("tnd,snd->nts", unit, unit)
        for n in range(r.shape[0]):
            np.fill_diagonal(r[n], 1.0)
        return r


def graph_labels(frame, schema, tasks, batch_size, seed, shuffle=True, facets=None):
    """Batches of `(features, labels (batch, T), known (batch, T))` for the graph.

    A binary task's label is its label; a regression task's is whether it is
    above its median over `frame` (the graph's edges are positive labels).
    `known` is 0 where the task's mask leaves the label undefined (CVR on
    unclicked rows): such a label is neither an edge nor a test label.
    """
    targets = Targets(tasks, facets)
    thresholds = {}
    values, weights = targets(frame)
    for task in tasks:
        if task.kind == "regression":
            key = targets.keys[task.name]
            kept = values[key].numpy()[:, 0]
            if weights is not None:
                kept = kept[weights[key].numpy() > 0]
            thresholds[key] = float(np.median(kept))
    dataset = to_dataset(frame, schema, targets, batch_size, shuffle=shuffle, seed=seed)
    keys = [targets.keys[t.name] for t in tasks]

    def pack(*element):
        x, y = element[0], element[1]
        labels = []
        for k in keys:
            value = y[k][:, 0]
            labels.append(tf.cast(value > thresholds[k], "float32") if k in thresholds else value)
        known = ([tf.cast(element[2][k] > 0, "float32") for k in keys] if len(element) > 2
                 else [tf.ones_like(labels[0]) for _ in keys])
        return x, tf.stack(labels, axis=1), tf.stack(known, axis=1)

    return dataset.map(pack), thresholds


def learn_relations(schema, tasks, frame, dim=16, num_layers=1, epochs=5, batch_size=2048,
                    learning_rate=1e-3, seed=0, verbose=0, facets=None):
    """Algorithm 1: field-wise task relations `r_n^{t1,t2}`, `(N, T, T)` NumPy array.

    1. The data-task graph: an edge between sample `i` and task `t` when
       `y_t^(i) = 1`.
    2. Data nodes from tables `V'` separate from any model's; task nodes
       `z_n^t` learned.
    3. Each sample's tasks are split at random into auxiliary labels (given:
       they make the edges) and test labels (to predict): one test task per
       sample, drawn anew every batch (the paper defers the split to its
       reference [6]; drawing it per batch uses every label as a test label).
    4. `num_layers` field-wise GraphSAGE layers (the paper: L = 1), the
       field-level prediction (see `TaskRelationGNN` for its mean) and BCE
       on the test labels, Adam at `learning_rate`, `epochs` passes of
       batches of `batch_size` (2048, the paper's; the paper gives no
       optimiser, learning rate or epochs).
    5. `r_n^{t1,t2}` = cosine of the learned task vectors `z_n^{t1}`, `z_n^{t2}`.

    `facets`: the `FacetedTasks` of facet tasks (MFH), whose rows' weights
    decide which labels are known.

    Returns:
        `(relations, info)`: the `(N, T, T)` array (rows and columns in task
        order, `N` in `schema.names` order) and `{"seconds", "losses", ...}`.
    """
    started = time.time()
    keras.utils.set_random_seed(seed)
    model = TaskRelationGNN(schema, len(tasks), dim, num_layers, seed=seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    batches, thresholds = graph_labels(frame, schema, tasks, batch_size, seed, facets=facets)
    generator = tf.random.Generator.from_seed(seed)
    num_tasks = len(tasks)

    @tf.function
    def step(x, labels, known):
        pick = generator.uniform([tf.shape(labels)[0]], 0, num_tasks, dtype=tf.int32)
        test = tf.one_hot(pick, num_tasks) * known  # (batch, T)
        edges = (known - test) * labels  # auxiliary positives only: no test label leaks
        with tf.GradientTape() as tape:
            prediction = tf.clip_by_value(model(x, edges), 1e-7, 1.0 - 1e-7)
            bce = -(labels * tf.math.log(prediction) + (1.0 - labels) * tf.math.log(1.0 - prediction))
            loss = tf.reduce_sum(bce * test) / tf.maximum(tf.reduce_sum(test), 1.0)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    losses = []
    for epoch in range(epochs):
        epoch_losses = [float(step(x, y, k)) for x, y, k in batches]
        losses.append(float(np.mean(epoch_losses)))
        if verbose:
            print(f"relation GNN epoch {epoch + 1}/{epochs}: test-label BCE {losses[-1]:.4f}")
    relations = model.relations()
    info = {"seconds": time.time() - started, "losses": losses, "dim": dim,
            "num_layers": num_layers, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "regression_thresholds": thresholds}
    return relations, info


def label_relations(frame, tasks, num_fields, facets=None):
    """MultiSFS-2: the Pearson correlation of the tasks' labels, the same for every field.

    Labels are compared on the rows where both tasks' masks keep them.
    Returns `(N, T, T)`.
    """
    targets = Targets(tasks, facets)
    y, weights = targets(frame)
    keys = [targets.keys[t.name] for t in tasks]
    matrix = np.eye(len(tasks))
    for a in range(len(tasks)):
        for b in range(a + 1, len(tasks)):
            ya, yb = y[keys[a]].numpy()[:, 0], y[keys[b]].numpy()[:, 0]
            keep = np.ones(len(ya), bool)
            if weights is not None:
                keep = (weights[keys[a]].numpy() > 0) & (weights[keys[b]].numpy() > 0)
            with np.errstate(invalid="ignore", divide="ignore"):  # a constant label: no relation
                value = np.corrcoef(ya[keep], yb[keep])[0, 1] if keep.sum() > 1 else 0.0
            matrix[a, b] = matrix[b, a] = 0.0 if not np.isfinite(value) else value
    return np.repeat(matrix[None], num_fields, axis=0)
