"""Versioned, atomic SavedModel export in the layout TF Serving scans."""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from export.signatures import EXAMPLES_SIGNATURE, example_features, input_specs, serving_outputs
from export.warmup import predict_request, write_warmup
from tfmtl.data.arrays import features_from


def versions(base_dir):
    """The integer versions under `base_dir`, sorted."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(n) for n in os.listdir(base_dir) if n.isdigit())


def save(model, base_dir, version=None, sample=None, warmup_rows=8):
    """Exports `model` to `base_dir/<version>/` for TF Serving.

    The SavedModel has two signatures: `serving_default` takes one
    `(batch,)` tensor per raw feature (strings, int64 ids, float32 numbers)
    and `predict_examples` takes serialized `tf.Example`s; both return one
    `(batch,)` output per task, named after it. With `sample` (a frame or
    dict of feature columns), `assets.extra/tf_serving_warmup_requests`
    holds PredictionLog records of its first `warmup_rows` rows.

    The version is written to a temporary directory beside it and renamed
    when complete, so a server watching `base_dir` never sees half a
    version; an existing version is never overwritten.

    Args:
        model: a `tfmtl.MultiTaskModel`.
        base_dir: str. The model's base path in TF Serving.
        version: int or `None`. Defaults to one more than the newest.
        sample: DataFrame/dict of feature columns for warm-up requests.
        warmup_rows: int. Rows per warm-up request.

    Returns:
        The path of the new version directory.
    """
    if getattr(model, "schema", None) is None or not getattr(model, "tasks", None):
        raise ValueError(
            "export.save needs a tfmtl model with its schema and tasks (from zoo.build or "
            "a .keras file of one)."
        )
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
        if sample is not None:
            rows = features_from(sample, model.schema)
            rows = {k: v[:warmup_rows] for k, v in rows.items()}
            name = os.path.basename(os.path.normpath(base_dir))
            dtypes = {f.name: tf.as_dtype(f.dtype) for f in model.schema}
            write_warmup(saved, [predict_request(rows, name, dtypes=dtypes)])
        os.rename(saved, target)  # atomic within base_dir
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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
