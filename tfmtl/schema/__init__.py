"""Feature and task specifications."""

from tfmtl.schema.dense_feature import DenseFeature
from tfmtl.schema.inference import infer_schema
from tfmtl.schema.schema import Schema
from tfmtl.schema.sequence_feature import SequenceFeature
from tfmtl.schema.sparse_feature import SparseFeature
from tfmtl.schema.task import Task
from tfmtl.schema.report import SchemaReport, schema_report
from tfmtl.schema.streaming import infer_schema_streaming
