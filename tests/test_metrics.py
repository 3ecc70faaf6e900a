import numpy as np

from tfmtl.metrics import roc_auc


def test_roc_auc_equals_the_pair_count():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert np.isclose(roc_auc(labels, scores), pairs / (len(pos) * len(neg)))
