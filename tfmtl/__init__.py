"""tfmtl: multi-task recommendation models for Keras 3 and TensorFlow."""

import os

_WHY = (
    "tfmtl runs on the TensorFlow backend of Keras 3 (its lookups, SavedModel "
    "export and GradientTape tools are TensorFlow's). Unset KERAS_BACKEND or set "
    "it to 'tensorflow'."
)
if os.environ.setdefault("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(f"{_WHY} Received: KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}")

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":  # e.g. keras was imported first, with another backend
    raise ImportError(f"{_WHY} Received backend: {keras.backend.backend()!r}")

from tfmtl import data, layers, schema  # noqa: E402
from tfmtl.models import MultiTaskModel  # noqa: E402
from tfmtl.training import fit  # noqa: E402
from tfmtl import mfh, search, selection  # noqa: E402,F401  (every serialisable class registered)
from tfmtl.schema import (  # noqa: E402
    DenseFeature,
    Schema,
    SequenceFeature,
    SparseFeature,
    Task,
    infer_schema,
)

__version__ = "0.1.0"


def load_model(path, **kwargs):
    """`keras.saving.load_model` for tfmtl models.

    Keras resolves the classes of a `.keras` file from what is imported
    (it imports no package but its own), so a saved tfmtl model loads once
    `tfmtl` is imported; this function is that import plus the load.
    """
    return keras.saving.load_model(path, **kwargs)
