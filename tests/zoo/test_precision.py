"""`zoo.build(..., dtype="mixed_bfloat16")`: 16-bit compute, float32 weights and outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.helpers import (check_served_like_predict, required_hparams, sublayers,
                           tiny_hparams)
from tests.zoo.test_zoo import TWO_TASK, frame

MODELS = zoo.list()


def _setup(name):
    data = frame(600)
    labels = ["click", "buy"] if name in TWO_TASK else ["click", "buy", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels, masks={"buy": "click"})
    hparams = {**tiny_hparams(name, tasks), **required_hparams(name, tasks)}
    return data, schema, tasks, hparams


@pytest.mark.parametrize("name", MODELS)
def test_mixed_bfloat16_computes_in_bfloat16_and_predicts_as_float32_does(name):
    data, schema, tasks, hparams = _setup(name)
    keras.utils.set_random_seed(0)
    model = zoo.build(name, schema, tasks, dtype="mixed_bfloat16", **hparams)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    reference = zoo.build(name, schema, tasks, **hparams)
    reference.set_weights(model.get_weights())
    assert all(w.dtype == "float32" for w in model.weights)

    computing = {type(layer).__name__ for layer in sublayers(model)
                 if layer.compute_dtype == "bfloat16"}
    assert computing, "no layer computes in bfloat16"
    heads = [layer for layer in sublayers(model) if type(layer).__name__ == "TaskHead"]
    assert heads and all(head.dense.compute_dtype == "float32" for head in heads)

    x = tfmtl.data.features_from(data.head(200), schema)
    low = model.predict(x, verbose=0)
    full = reference.predict(x, verbose=0)
    assert set(low) == set(full)
    for key, value in low.items():
        assert value.dtype == np.float32
        # bfloat16 keeps 8 significant bits (relative error 2^-8 per rounding).
        scale = max(1.0, float(np.abs(full[key]).max()))
        np.testing.assert_allclose(value, full[key], atol=0.03 * scale)
        assert not np.array_equal(value, full[key])  # 16-bit compute did happen

    model.compile()
    history = model.fit(data, batch_size=128, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert type(model.optimizer).__name__ != "LossScaleOptimizer"  # bfloat16 needs no scaling


def test_mixed_bfloat16_survives_save_and_export(tmp_path):
    data, schema, tasks, hparams = _setup("ple")
    model = zoo.build("ple", schema, tasks, dtype="mixed_bfloat16", **hparams)
    model.compile()
    model.fit(data, batch_size=128, epochs=1, verbose=0)
    x = tfmtl.data.features_from(data.head(50), schema)
    predictions = model.predict(x, verbose=0)

    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert {layer.compute_dtype for layer in sublayers(reloaded)
            if type(layer).__name__ == "Experts"} == {"bfloat16"}
    again = reloaded.predict(x, verbose=0)
    for key, value in predictions.items():
        np.testing.assert_array_equal(again[key], value)

    check_served_like_predict(model, x, predictions, tmp_path / "served", atol=1e-6)


def test_a_dtype_outside_the_mixed_policies_is_refused():
    _, schema, tasks, hparams = _setup("mmoe")
    with pytest.raises(ValueError, match=r"dtype must be one of \('float32', 'mixed_bfloat16', "
                                         r"'mixed_float16'\).*Received: dtype='bfloat16'"):
        zoo.build("mmoe", schema, tasks, dtype="bfloat16", **hparams)
    assert keras.config.dtype_policy().name == "float32"


def test_mixed_bfloat16_warns_where_the_cpu_would_emulate_it(monkeypatch):
    import warnings

    from tfmtl import precision

    _, schema, tasks, hparams = _setup("mmoe")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_vnni"})
    with pytest.warns(UserWarning, match="without AVX512-BF16 or AMX-BF16 and no GPU"):
        zoo.build("mmoe", schema, tasks, dtype="mixed_bfloat16", **hparams)
    for flags in ({"avx2", "avx512_bf16"}, {"amx_bf16"}, None):  # None: not Linux, unknown
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            zoo.build("mmoe", schema, tasks, dtype="mixed_bfloat16", **hparams)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["a GPU"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.build("mmoe", schema, tasks, dtype="mixed_bfloat16", **hparams)
    monkeypatch.undo()
    flags = precision.cpu_flags()
    assert flags is None or "fpu" in flags or "fp" in flags or "sse2" in flags  # this machine's
