"""Every switcher: one input contract, activations and dtype policies that serialise."""

import inspect
import warnings

import keras
import numpy as np
import pytest

import tfmtl
import zoo
from tests.helpers import check_layer, check_served_like_predict, sublayers
from tests.zoo.test_zoo import frame
from tfmtl.layers import SWITCHERS, switcher_for

rng = np.random.default_rng(0)
SMALL = {
    "shared_bottom": {"units": [6]},
    "omoe": {"num_experts": 2, "expert_units": [6]},
    "mmoe": {"num_experts": 2, "expert_units": [6]},
    "cgc": {"expert_units": [6]},
    "ple": {"num_levels": 2, "expert_units": [6]},
    "stem": {"num_shared_experts": 2, "expert_units": [6], "gate_units": [4]},
    "automtl": {"experts": [["gating"], ["mlp_16", "skip"]], "branch_experts": [[0, 1], [1]],
                "units": 6, "dropout": 0.0},
}
BRANCHES = 2


def views(widths=(3, 4, 5)):
    return [rng.normal(size=(4, w)).astype("float32") for w in widths]


@pytest.mark.parametrize("name", sorted(SWITCHERS))
def test_one_tensor_or_one_view_per_branch_plus_the_shared_one(name):
    assert set(SMALL) == set(SWITCHERS)
    one = rng.normal(size=(4, 5)).astype("float32")
    check_layer(switcher_for({"type": name, **SMALL[name]}, BRANCHES), [one], [(4, 6)] * BRANCHES)
    check_layer(switcher_for({"type": name, **SMALL[name]}, BRANCHES), [views()],
                [(4, 6)] * BRANCHES)
    with pytest.raises(ValueError, match="a list of 3"):
        switcher_for({"type": name, **SMALL[name]}, BRANCHES)(views((3, 4)))


GATES = {"omoe": 1, "mmoe": 2, "cgc": 2, "ple": 5}  # PLE: 2 + a shared gate, then 2


@pytest.mark.parametrize("name", sorted(GATES))
def test_mlp_gates_add_a_hidden_layer_to_every_gate_and_serialise(name):
    one = rng.normal(size=(4, 5)).astype("float32")
    linear = switcher_for({"type": name, **SMALL[name]}, BRANCHES)
    linear(one)
    mlp = switcher_for({"type": name, **SMALL[name], "gate_units": [4]}, BRANCHES)
    # one hidden Dense (kernel and bias) more in each gate; config, shapes, .keras round trip
    check_layer(mlp, [one], [(4, 6)] * BRANCHES,
                expected_weights=len(linear.weights) + 2 * GATES[name])
    hidden = [w for w in mlp.weights if "gate" in w.path and tuple(w.shape)[-1:] == (4,)]
    assert len(hidden) == 2 * GATES[name], [w.path for w in mlp.weights]


# Which outputs change when one view changes: task-specific parts read their
# branch's view, shared parts the shared one (STEM-Net: all forward, so every
# task sees every task's experts).
READS = {
    "shared_bottom": {0: set(), 1: set(), 2: {0, 1}},
    "omoe": {0: set(), 1: set(), 2: {0, 1}},
    "mmoe": {0: {0}, 1: {1}, 2: {0, 1}},
    "cgc": {0: {0}, 1: {1}, 2: {0, 1}},
    "ple": {0: {0, 1}, 1: {0, 1}, 2: {0, 1}},  # level 2's shared input mixes every expert
    "stem": {0: {0, 1}, 1: {0, 1}, 2: {0, 1}},
    "automtl": {0: {0}, 1: set(), 2: {0, 1}},  # branch 1 has one expert: no gate to read view 1
}


@pytest.mark.parametrize("name", sorted(SWITCHERS))
def test_each_view_reaches_the_outputs_that_read_it(name):
    layer = switcher_for({"type": name, **SMALL[name]}, BRANCHES)
    inputs = views()
    before = [o.numpy() for o in layer(inputs)]
    for view, expected in READS[name].items():
        changed = list(inputs)
        changed[view] = changed[view] + 1.0
        after = [o.numpy() for o in layer(changed)]
        moved = {k for k in range(BRANCHES) if not np.allclose(before[k], after[k], atol=1e-6)}
        assert moved == expected, (view, moved)


@pytest.mark.parametrize("name", [n for n in sorted(SWITCHERS)
                                  if "activation" in inspect.signature(SWITCHERS[n]).parameters])
def test_a_callable_activation_serialises(name):
    layer = switcher_for({"type": name, **SMALL[name], "activation": keras.activations.gelu},
                         BRANCHES)
    config = layer.get_config()
    assert config["activation"] == "gelu"
    out = check_layer(layer, [rng.normal(size=(4, 5)).astype("float32")], [(4, 6)] * BRANCHES)
    clone = type(layer).from_config(config)
    clone.build((None, 5))
    clone.set_weights(layer.get_weights())
    x = rng.normal(size=(4, 5)).astype("float32")
    for a, b in zip(layer(x), clone(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert len(out) == BRANCHES


def test_unknown_switcher_and_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Unknown switcher 'moe'"):
        switcher_for("moe", 2)
    with pytest.raises(ValueError, match=r"Switcher .mmoe. has no arguments \[.num_expert.\]"):
        switcher_for({"type": "mmoe", "num_expert": 2}, 2)


@pytest.fixture
def mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name", ["mmoe", "ple", "stem", "fdn", "esmm"])
def test_mixed_float16_reaches_the_experts_and_outputs_stay_float32(name, mixed_precision,
                                                                    tmp_path):
    data = frame(400)
    labels = ["click", "buy"] if name == "esmm" else ["click", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels)
    model = zoo.build(name, schema, tasks)
    keras.config.set_dtype_policy("float32")  # what follows must not depend on the global policy
    model.compile()
    history = model.fit(data, epochs=2, batch_size=100, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"

    def hidden(m):  # experts, and the MLPs of ESMM's towers
        return [layer for layer in sublayers(m) if type(layer).__name__ in ("Experts", "MLP")]

    assert hidden(model) and all(e.compute_dtype == "float16" for e in hidden(model))
    first = hidden(model)[0]
    width = (first.kernels[0].shape[1] if hasattr(first, "kernels")
             else first.dense_layers[0].kernel.shape[0])
    assert first(np.ones((2, width), "float32")).dtype == "float16"
    x = tfmtl.data.features_from(data.head(8), schema)
    predictions = model.predict(x, verbose=0)
    assert all(v.dtype == np.float32 for v in predictions.values())

    model.save(tmp_path / "m.keras")  # loaded under the float32 global policy
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Skipping variable loading for optimizer"
        reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert all(e.compute_dtype == "float16" for e in hidden(reloaded))
    # The loss scaling and the optimizer's state come back with the model.
    assert type(reloaded.optimizer).__name__ == "LossScaleOptimizer"
    saved, restored = model.optimizer.variables, reloaded.optimizer.variables
    assert len(saved) == len(restored)
    for before, after in zip(saved, restored):  # Keras restores them in this order
        np.testing.assert_array_equal(after.numpy(), before.numpy(), err_msg=before.path)
    assert float(reloaded.optimizer.iterations) == float(model.optimizer.iterations) > 0
    again = reloaded.predict(x, verbose=0)
    for key, value in predictions.items():
        np.testing.assert_allclose(again[key], value, atol=1e-3)

    check_served_like_predict(model, x, predictions, tmp_path / "served", atol=1e-3)
