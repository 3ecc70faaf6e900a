"""Data: in-memory conversion, targets, validation, loaders and pipelines."""

from tfmtl.data.arrays import check_columns, columns_of, features_from, validate
from tfmtl.data.targets import Targets, prepare_arrays, prepare_dataset, targets_from
from tfmtl.data.synthetic import (conflict_synthetic, ctr_synthetic, fdn_synthetic,
                                   group_synthetic, mmoe_regression, preference_conflict,
                                   selection_synthetic)
from tfmtl.data.movielens import fetch_movielens_100k, load_movielens_100k, split
from tfmtl.data.pipeline import (parquet_chunks, parquet_dataset, parquet_files, parquet_schema,
                                  to_dataset)
from tfmtl.data.ali_ccp import load_ali_ccp
from tfmtl.data.kuairand import load_kuairand
from tfmtl.data.tenrec import load_tenrec
