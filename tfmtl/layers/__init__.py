"""Keras layers of tfmtl."""

from tfmtl.layers.adaptive_information_transfer import AdaptiveInformationTransfer
from tfmtl.layers.base import Layer
from tfmtl.layers.decomposition_pairs import DecompositionPairs
from tfmtl.layers.experts import Experts
from tfmtl.layers.feature_lookup import FeatureLookup, table_size
from tfmtl.layers.field_embedding import FieldEmbedding
from tfmtl.layers.label_constraint import LabelConstraint
from tfmtl.layers.mlp import MLP
from tfmtl.layers.numeric_features import NumericFeatures
from tfmtl.layers.softmax_gate import SoftmaxGate
from tfmtl.layers.switchers import (CGC, MMoE, OMoE, PLE, SWITCHERS, SharedBottom, STEMLayer,
                                    Switcher, register_switcher, switcher_for)
from tfmtl.layers.task_head import TaskHead
from tfmtl.layers.views import FieldView, TaskEmbeddings
