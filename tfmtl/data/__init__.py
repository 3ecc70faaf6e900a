"""Data: in-memory conversion, validation, loaders and pipelines."""

from tfmtl.data.arrays import features_from, targets_from, validate
from tfmtl.data.synthetic import (conflict_synthetic, ctr_synthetic, fdn_synthetic,
                                   group_synthetic, mmoe_regression)
from tfmtl.data.movielens import fetch_movielens_100k, load_movielens_100k, split
from tfmtl.data.pipeline import parquet_dataset, to_dataset
from tfmtl.data.ali_ccp import load_ali_ccp
from tfmtl.data.kuairand import load_kuairand
from tfmtl.data.tenrec import load_tenrec
