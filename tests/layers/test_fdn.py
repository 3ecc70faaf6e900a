"""FDN: the orthogonality and auxiliary losses as the equations say."""

import keras
import numpy as np
import pytest

import tfmtl
import zoo
from tests.helpers import check_layer
from tests.layers.test_references import experts_np, numpy_of, randomize
from tests.zoo.test_zoo import frame
from tfmtl.layers import DecompositionPairs

rng = np.random.default_rng(3)
X = rng.normal(size=(12, 7)).astype("float32")


def test_orthogonality_loss_matches_numpy():
    layer = DecompositionPairs(num_tasks=2, num_pairs=3, units=[6, 5], orthogonal_weight=0.7, form="paper")
    layer(X)
    randomize(layer, 0.4)
    specific, shared = layer(X)
    p = experts_np(X, layer.specific)  # (batch, pairs, units)
    s = experts_np(X, layer.shared)
    np.testing.assert_allclose(numpy_of(specific), p, atol=1e-5)
    np.testing.assert_allclose(numpy_of(shared), s, atol=1e-5)
    expected = sum(np.sum((s[:, k].T @ p[:, k]) ** 2) for k in range(6))  # sum ||(f^s)^T f^p||_F^2
    assert float(numpy_of(layer.losses[-1])) == pytest.approx(0.7 * expected, rel=1e-5)


def test_dsn_orthogonality_loss_matches_numpy():
    layer = DecompositionPairs(num_tasks=2, num_pairs=2, units=[6, 5], form="dsn")
    layer(X)
    randomize(layer, 0.4)
    layer(X)
    p = experts_np(X, layer.specific).astype("float64")
    s = experts_np(X, layer.shared).astype("float64")
    expected = 0.0
    for k in range(4):  # DSN's difference loss: centre each unit, unit rows, mean of squared entries
        sk = s[:, k] - s[:, k].mean(axis=0)
        pk = p[:, k] - p[:, k].mean(axis=0)
        sk /= np.linalg.norm(sk, axis=-1, keepdims=True)
        pk /= np.linalg.norm(pk, axis=-1, keepdims=True)
        expected += np.mean((sk.T @ pk) ** 2)
    assert float(numpy_of(layer.losses[-1])) == pytest.approx(expected, rel=1e-4)


def test_dsn_form_does_not_fall_by_shrinking_the_features():
    """Eq. 2 as written falls 100x when the features shrink 10x; the DSN form stays put."""
    layer = DecompositionPairs(num_tasks=1, num_pairs=1, units=[6], form="dsn")
    paper = DecompositionPairs(num_tasks=1, num_pairs=1, units=[6], form="paper")
    s = rng.normal(size=(12, 1, 6)).astype("float32")
    p = rng.normal(size=(12, 1, 6)).astype("float32")
    for form in (layer, paper):
        big, small = (float(numpy_of(form.orthogonal_loss(p * c, s * c))) for c in (1.0, 0.1))
        if form is layer:
            assert small == pytest.approx(big, rel=1e-4)
        else:
            assert small == pytest.approx(big * 1e-4, rel=1e-4)
    with pytest.raises(ValueError, match="form"):
        DecompositionPairs(1, form="cosine")


def test_pairs_contract_and_switch():
    check_layer(DecompositionPairs(2, 2, [8]), [X], ((12, 4, 8), (12, 4, 8)),
                symbolic_shape=((None, 4, 8), (None, 4, 8)))
    layer = DecompositionPairs(2, 2, [8], orthogonal_weight=0.0)
    layer(X)
    assert layer.losses == []
    with pytest.raises(ValueError, match="num_pairs"):
        DecompositionPairs(2, 0)


def build(data, **hparams):
    keras.utils.set_random_seed(0)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "rating"])
    model = zoo.build("fdn", schema, tasks, embedding_dim=8, expert_units=(16, 8), **hparams)
    model.compile()
    return model


def test_auxiliary_heads_are_trained_reported_and_not_metrics():
    data = frame(256)
    model = build(data)
    aux = [t.name for t in model.tasks if t.auxiliary]
    assert aux == ["click_aux_0", "click_aux_1", "rating_aux_0", "rating_aux_1"]
    logs = model.evaluate(data, batch_size=256, verbose=0, return_dict=True)
    out = model.predict(data, verbose=0)
    y = data.click.to_numpy()[:, None]
    p = np.clip(out["click_aux_1"], 1e-7, 1 - 1e-7)
    assert logs["click_aux_1_loss"] == pytest.approx(float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))), rel=1e-4)
    r = data.rating.to_numpy()[:, None]
    assert logs["rating_aux_0_loss"] == pytest.approx(float(np.mean((r - out["rating_aux_0"]) ** 2)), rel=1e-4)
    assert "click_aux_0_auc" not in logs  # training-only heads carry no metrics
    task_losses = sum(v for k, v in logs.items() if k.endswith("_loss") and k != "loss"
                      and not k.startswith("pairs"))
    model(tfmtl.data.features_from(data, model.schema), training=False)  # eager: model.losses
    orth = float(sum(numpy_of(v) for v in model.losses))
    assert orth > 0
    assert logs["loss"] == pytest.approx(task_losses + orth, rel=1e-4)  # L = L_task + L_orth + L_aux


@pytest.mark.parametrize("form", ["dsn", "paper"])
def test_orthogonality_loss_is_a_metric_and_falls_on_fdn_synthetic(form):
    data, schema, tasks = tfmtl.data.fdn_synthetic(20000, dim=8, seed=0)["multi"]
    keras.utils.set_random_seed(0)
    model = zoo.build("fdn", schema, tasks, expert_units=(32, 16), orthogonal_form=form)
    model.compile()
    history = model.fit(data, epochs=4, batch_size=256, verbose=0)
    orth = history.history["pairs_orthogonal_loss"]
    assert orth[-1] < orth[0] * 0.5, orth


@pytest.mark.parametrize("hparams, outputs", [
    (dict(auxiliary_weight=0.0), {"click", "rating"}),
    (dict(shared_fusion=False), {"click", "rating", "click_aux_0", "click_aux_1", "rating_aux_0", "rating_aux_1"}),
])
def test_ablation_switches(hparams, outputs):
    model = build(frame(64), **hparams)
    assert set(model.output_names) == outputs
    width = model.get_layer("click_features").output.shape[-1]
    # own pairs (2 x 8) + fused shared experts (all 4 x 8, or own 2 x 8 without fusion)
    assert width == (16 + 16 if hparams.get("shared_fusion") is False else 16 + 32)


def test_a_callable_activation_serialises_in_the_pairs():
    layer = DecompositionPairs(2, 1, [6], activation=keras.activations.gelu)
    config = layer.get_config()
    assert config["activation"] == "gelu"
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    layer(x)
    clone = DecompositionPairs.from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(layer(x), clone(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    specific = layer(-np.abs(x))[0].numpy()
    assert (specific < 0).any()  # gelu, not relu, inside the experts
