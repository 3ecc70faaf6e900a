"""MultiSFS (Wang et al., SIGIR 2023): single-shot feature selection for multi-task models.

- `FieldMask` (`field_mask.py`): the task-by-field mask M of Eq. 5-6, put on
  every embedding and number by `zoo.build(..., field_mask=True)`;
- `field_saliency` (`saliency.py`): `s_tn = dL/dm_tn` at `M = 1` (Eq. 10) with
  `tf.GradientTape`;
- `FieldwiseSAGE`, `TaskRelationGNN`, `learn_relations` (`relations.py`): the
  field-wise task relations of Algorithm 1 (Eq. 11-23); `label_relations`
  for the MultiSFS-2 ablation;
- `merge`, `top_k`, `Selection` (`selection.py`): Eq. 24, the top-k per task,
  the shared set, a JSON-serialisable result;
- `chi2_scores`, `lasso_scores` (`baselines.py`): per-task baselines;
- `select_fields`, `stability` (`multisfs.py`): Algorithm 2 and its variants.

`zoo.build(name, schema, tasks, selection=selection)` builds the selected model.
"""

from tfmtl.selection.baselines import chi2_scores, lasso_scores
from tfmtl.selection.field_mask import FieldMask
from tfmtl.selection.multisfs import METHODS, select_fields, stability
from tfmtl.selection.relations import (FieldwiseSAGE, TaskRelationGNN, label_relations,
                                       learn_relations)
from tfmtl.selection.saliency import field_saliency
from tfmtl.selection.selection import Selection, make_selection, merge, resolve_k, top_k
from tfmtl.selection.plots import plot_importance, plot_relations
