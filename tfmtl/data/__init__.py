"""Data: in-memory conversion, validation, loaders and pipelines."""

from tfmtl.data.arrays import features_from, targets_from, validate
