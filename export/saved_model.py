"""Versioned, atomic SavedModel export in the layout TF Serving scans."""

import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export.signatures import (EXAMPLES_SIGNATURE, example_features, input_specs, names_asset,
                               serving_outputs)
from export.warmup import predict_request, write_warmup
from tfmtl.data.arrays import check_columns, columns_of, features_from
from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.sequence_feature import SequenceFeature

NAMES_FILE = os.path.join("assets.extra", "tfmtl_names.json")


def versions(base_dir):
    """The integer versions under `base_dir`, sorted."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(n) for n in os.listdir(base_dir) if n.isdigit())


def save(model, base_dir, version=None, sample=None, warmup_rows=8):
    """Exports `model` to `base_dir/<version>/` for TF Serving.

    The SavedModel has two signatures: `serving_default` takes one
    `(batch,)` tensor per raw feature (strings, int64 ids, float32 numbers)
    and `predict_examples` takes serialized `tf.Example`s keyed by the
    column names; both return one `(batch,)` output per task, named after
    it. `serving_default`'s arguments are the features' internal names
    (a column name such as `"Clothing ID"` is not a valid argument); the
    mapping is in `assets.extra/tfmtl_names.json` (`names_asset`), which
    `export.Client` and `serve-check` read.
    `assets.extra/tf_serving_warmup_requests` holds PredictionLog records of
    the first `warmup_rows` rows of `sample` (a frame or dict of feature
    columns), or, without a sample, of rows made from the schema (known
    vocabulary values, the numbers' means).

    The version is written to a temporary directory beside it and renamed
    when complete, so a server watching `base_dir` never sees half a
    version; an existing version is never overwritten.

    Args:
        model: a `tfmtl.MultiTaskModel`.
        base_dir: str. The model's base path in TF Serving.
        version: int or `None`. Defaults to one more than the newest.
        sample: DataFrame/dict of feature columns for warm-up requests, or
            `None` for rows made from the schema.
        warmup_rows: int. Rows per warm-up request.

    Returns:
        The path of the new version directory.
    """
    if getattr(model, "schema", None) is None or not getattr(model, "tasks", None):
        raise ValueError(
            "export.save needs a tfmtl model with its schema and tasks (from zoo.build or "
            "a .keras file of one)."
        )
    if sample is not None:  # checked before anything is written
        columns = columns_of(sample)
        check_columns(columns, model.schema)
        rows = {k: v[:warmup_rows] for k, v in features_from(columns, model.schema).items()}
    else:
        rows = schema_rows(model.schema, warmup_rows)
    existing = versions(base_dir)
    version = (existing[-1] + 1 if existing else 1) if version is None else int(version)
    if version < 0:
        raise ValueError(f"version must be >= 0. Received: version={version}")
    target = os.path.join(base_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"Version {version} already exists: {target}")
    os.makedirs(base_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base_dir)
    try:
        saved = os.path.join(staging, "model")
        _write(model, saved)
        keys = model.schema.internal_names
        name = os.path.basename(os.path.normpath(base_dir))
        dtypes = {keys[f.name]: tf.as_dtype(f.dtype) for f in model.schema}
        write_warmup(saved, [predict_request({keys[k]: v for k, v in rows.items()}, name,
                                             dtypes=dtypes)])
        with open(os.path.join(saved, NAMES_FILE), "w") as out:
            json.dump(names_asset(model), out, indent=1, ensure_ascii=False)
        os.rename(saved, target)  # atomic within base_dir
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def schema_rows(schema, count):
    """`count` rows of feature values made from the schema alone (warm-up requests).

    Categorical features cycle through their known values (hashed ones
    through `"0", "1", ...` or `0, 1, ...`), numbers take their mean.
    """
    rows = {}
    for f in schema:
        if isinstance(f, DenseFeature):
            rows[f.name] = np.full(count, f.mean, dtype="float32")
            continue
        known = list(f.vocabulary) if f.vocabulary is not None else list(range(count))
        values = [known[i % len(known)] for i in range(count)]
        if isinstance(f, SequenceFeature):
            rows[f.name] = np.array([str(v) for v in values], dtype=object)
        elif f.dtype == "int64":
            rows[f.name] = np.array(values, dtype="int64")
        else:
            rows[f.name] = np.array([str(v) for v in values], dtype=object)
    return rows


def read_names(version_dir):
    """The names asset of an exported version (`names_asset`), or `None` if absent."""
    path = os.path.join(version_dir, NAMES_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as names:
        return json.load(names)


def _write(model, path):
    specs = input_specs(model.schema)
    schema = model.schema
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda features: serving_outputs(model, features),
        input_signature=[specs],
    )
    archive.add_endpoint(
        name=EXAMPLES_SIGNATURE,
        fn=lambda examples: serving_outputs(model, example_features(schema, examples)),
        input_signature=[tf.TensorSpec((None,), tf.string, name="examples")],
    )
    archive.write_out(path, verbose=False)
