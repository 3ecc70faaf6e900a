"""Analyses of trained models (NumPy and pandas; plots with matplotlib)."""

from tfmtl.analysis.negative_transfer import (
    SUBSETS,
    buckets,
    plot_subset_auc,
    subset_auc,
    transfer_subsets,
)
from tfmtl.analysis.gates import gate_weights, plot_gate_weights
