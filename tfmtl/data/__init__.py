"""Data: in-memory conversion, validation, loaders and pipelines."""

from tfmtl.data.arrays import features_from, targets_from, validate
from tfmtl.data.synthetic import ctr_synthetic, mmoe_regression
