"""Serving signatures of a `MultiTaskModel` (TensorFlow-specific)."""

import tensorflow as tf

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature

EXAMPLES_SIGNATURE = "predict_examples"


def input_specs(schema):
    """One `(batch,)` `TensorSpec` per raw feature, in the dtype users send.

    Keyed by the user's column name; the spec's name, the signature
    argument, is the feature's internal name (`schema.internal_names`).
    """
    return {
        f.name: tf.TensorSpec((None,), tf.as_dtype(f.dtype), name=schema.internal_names[f.name])
        for f in schema
    }


def serving_outputs(model, features):
    """`{task name: (batch,)}` for every served task; auxiliary heads are left out."""
    outputs = model(features, training=False)
    return {
        t.name: tf.reshape(outputs[model.output_keys[t.name]], [-1])
        for t in model.tasks if not t.auxiliary
    }


def names_asset(model):
    """What the export's `assets.extra/tfmtl_names.json` holds.

    `features`: each feature's column name -> its `serving_default`
    argument; `examples`: the `tf.Example` keys (the column names);
    `outputs`: the served outputs (task names, as the signatures return them).
    """
    return {
        "features": dict(model.schema.internal_names),
        "examples": list(model.schema.names),
        "outputs": [t.name for t in model.tasks if not t.auxiliary],
    }


def example_features(schema, serialized):
    """Parses serialized `tf.Example`s into the model's raw inputs.

    Missing features take the value of a missing cell: `""` (strings),
    `-1` (integer ids, out of vocabulary), NaN (numbers, normalised to 0).
    A multi-valued feature is a bytes list of its values (or one joined
    string).
    """
    spec = {}
    for f in schema:
        if isinstance(f, SequenceFeature):
            spec[f.name] = tf.io.VarLenFeature(tf.string)
        elif isinstance(f, DenseFeature):
            spec[f.name] = tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
        elif f.dtype == "int64":
            spec[f.name] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
        else:
            spec[f.name] = tf.io.FixedLenFeature([], tf.string, default_value="")
    parsed = tf.io.parse_example(serialized, spec)
    for f in schema:
        if isinstance(f, SequenceFeature):
            values = tf.RaggedTensor.from_sparse(parsed[f.name])
            parsed[f.name] = tf.strings.reduce_join(values, axis=1, separator=f.separator)
    return parsed
