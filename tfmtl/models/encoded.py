"""Training on looked-up ids: the lookups in the input pipeline, the rest compiled with XLA.

A zoo model maps raw values to table indices with one `FeatureLookup`
(string and integer hash tables, which XLA cannot compile), so Keras runs
its training step without XLA. `Encoder` cuts the model after the lookup:
`encode` turns raw features into the indices (plus the raw numbers) that
the numeric part takes, and `numeric` is that part, a functional model
sharing every layer and weight with the full one. `MultiTaskModel.compile(
jit_compile=True)` trains through it; the full model, lookups included, is
still what `model(x)` without encoding and the exported SavedModel run.
"""

import keras
import numpy as np
import tensorflow as tf

from tfmtl.layers.feature_lookup import FeatureLookup

# The key of an encoded batch: `{ENCODED: (ids of every field..., numbers...)}`.
ENCODED = "__tfmtl_encoded__"


class Encoder:
    """The lookup of a functional model and the numeric model after it.

    Args:
        model: a functional `MultiTaskModel` with a `schema` and one
            `FeatureLookup` (every zoo model). Numbers, and categorical
            columns other layers read raw (MFH's facet routing on an integer
            column), pass through to the numeric part unchanged.

    Raises:
        ValueError: when the model has no single lookup, or a layer other
            than the lookup reads a string column.
    """

    def __init__(self, model):
        self.schema = model.schema
        lookups = [layer for layer in model.layers if isinstance(layer, FeatureLookup)]
        if len(lookups) != 1 or len(lookups[0]._inbound_nodes) != 1:
            raise ValueError(
                "jit_compile=True moves the feature lookups into the input pipeline and needs a "
                "functional model with one FeatureLookup called once (every zoo model); this "
                f"model has {len(lookups)}.")
        self.lookup = lookups[0]
        # Keras flattens a dict output in sorted key order.
        fields = sorted(f.name for f in self.schema.fields)
        ids = dict(zip(fields, self.lookup._inbound_nodes[0].outputs))
        raw = model._inputs_struct
        self.fields = [f.name for f in self.schema.fields]
        # Numbers, and raw categorical columns other layers read as well (MFH's
        # facet routing), pass through unchanged.
        read = {id(t) for layer in model.layers if layer is not self.lookup
                for node in layer._inbound_nodes for t in node.input_tensors}
        self.passed = [f.name for f in self.schema
                       if f.name in self.schema.dense_names or id(raw[f.name]) in read]
        strings = [n for n in self.passed if raw[n].dtype == "string"]
        if strings:
            raise ValueError(
                f"jit_compile=True: layers other than the lookup read the string column(s) "
                f"{strings} (e.g. MFH's facet routing), and XLA cannot compile string ops. "
                "Compile without jit_compile, or make those columns numbers.")
        inputs = [ids[n] for n in self.fields] + [raw[n] for n in self.passed]
        # Keras builds a model from intermediate tensors by cloning the nodes
        # after them into the layers and pointing the outputs' history at the
        # clones, which the full model's `get_config` then fails on: the clones
        # stay with the numeric model only.
        nodes = {id(layer): len(layer._inbound_nodes) for layer in model.layers}
        history = [(t, t._keras_history) for layer in model.layers
                   for node in layer._inbound_nodes for t in node.outputs]
        try:
            self.numeric = keras.Model(inputs=inputs, outputs=model._outputs_struct,
                                       name=f"{model.name}_numeric")
        except ValueError as error:
            raise ValueError(
                "jit_compile=True needs a model whose raw categorical inputs reach the rest of "
                f"the graph only through its lookup: {error}") from None
        finally:
            for layer in model.layers:
                del layer._inbound_nodes[nodes[id(layer)]:]
            for tensor, record in history:
                tensor._keras_history = record

    def encode(self, features):
        """Raw feature tensors (a dict) to an encoded batch (TensorFlow ops)."""
        ids = self.lookup({n: features[n] for n in self.fields})
        return {ENCODED: tuple(ids[n] for n in self.fields)
                + tuple(features[n] for n in self.passed)}

    def encode_arrays(self, features, chunk=65_536):
        """In-memory raw features to an encoded dict of NumPy arrays, looked up once.

        Multi-valued fields are padded with 0 (the padding index) to the
        longest row of the whole data.
        """
        rows = len(next(iter(features.values())))
        parts = {n: [] for n in self.fields}
        for start in range(0, rows, chunk):
            ids = self.lookup({n: tf.constant(features[n][start:start + chunk])
                               for n in self.fields})
            for n in self.fields:
                parts[n].append(ids[n].numpy())
        columns = []
        for n in self.fields:
            if not parts[n]:  # no rows
                columns.append(np.zeros((0,), "int32"))
                continue
            width = max(p.shape[1:] for p in parts[n])
            columns.append(np.concatenate(
                [np.pad(p, [(0, 0)] + [(0, w - s) for w, s in zip(width, p.shape[1:])])
                 for p in parts[n]]))
        columns += [np.asarray(features[n]) for n in self.passed]
        return {ENCODED: tuple(columns)}

    def encode_dataset(self, dataset):
        """A dataset of `x` or `(x, ...)` batches with `x` encoded."""
        def encode(*element):
            if len(element) == 1:
                return self.encode(element[0])
            return (self.encode(element[0]),) + tuple(element[1:])

        return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def __call__(self, encoded, training=None):
        return self.numeric(list(encoded[ENCODED]), training=training)


def is_encoded(inputs):
    return isinstance(inputs, dict) and ENCODED in inputs
