"""AutoMTL: differentiable architecture search for multi-task recommenders.

- `ops.py`: the candidate operations of Table 1 (feature interactions:
  inner/outer product, cross network, self-attention, MLP, skip; expert
  blocks: bit-level gating, MLP, 1-D convolution, skip), with their
  `FusedBatchNorm` and `BitDropout` (the search's step, cheaper);
- `ChoiceBlock` (`choice.py`): a softmax(alpha)-weighted mixture of
  candidates with the DARTS- auxiliary skip connection;
- `Supernet`, `jsd_loss` (`supernet.py`): one interaction block, N experts of
  n blocks, per-task expert selection `beta` and the JSD loss of Eq. 2;
- `search` (`search.py`): Algorithm 1 (bi-level, first order), warm-up,
  schedules, derivation;
- `Architecture` (`architecture.py`): the derived architecture (JSON), its
  switcher spec and drawing;
- `SearchedExperts` (`searched_experts.py`): the derived experts and per-task
  gates as a switcher (`"automtl"` in `tfmtl.layers.SWITCHERS`).

`zoo.build("automtl", schema, tasks, architecture=architecture)` builds the
derived model, trained from scratch.
"""

from tfmtl.search.architecture import Architecture
from tfmtl.search.choice import ChoiceBlock
from tfmtl.search.ops import (EXPERT_OPS, INTERACTIONS, BitDropout, BitGating, Bottleneck,
                              CrossNetwork, FieldAttention, FusedBatchNorm, ProductLayer, Skip,
                              UnitConvolution, make_expert_op, make_interaction)
from tfmtl.search.search import PRECISIONS, VARIANTS, Search, default_chosen, derive, search
from tfmtl.search.searched_experts import SearchedExperts
from tfmtl.search.supernet import NumericField, Supernet, jsd_loss
