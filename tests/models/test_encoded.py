"""`compile(jit_compile=True)`: lookups in the input pipeline, the numeric part under XLA."""

import dataclasses
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tests.zoo.test_mfh import DEVICE, GROUP, SMALL
from tests.zoo.test_mfh import data as faceted_data
from tests.zoo.test_zoo import frame
from tfmtl.mfh import FacetedTasks
from tfmtl.models.encoded import ENCODED

FACETED = ("flat", "hmtl", "mfh")
# One model per kind of graph (the others are assembled from the same blocks): plain
# switchers, stacked levels, task-specific tables with stop-gradients, extra losses and
# auxiliary heads, facet routing on a raw column, a derived output, attention between
# towers, a searched architecture. The XLA compiles take most of each case's time.
KINDS = ("mmoe", "ple", "stem", "fdn", "mfh", "esmm", "aitm", "automtl")


def setting(name):
    if name in FACETED:
        data, schema = faceted_data(600)
        tasks = FacetedTasks([tfmtl.Task("like"), tfmtl.Task("rating", "regression")], [GROUP])
        return data, schema, tasks, dict(SMALL)
    data = frame(600)
    labels = ["click", "buy"] if name in ("esmm", "aitm") else ["click", "buy", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels, masks={"buy": "click"})
    hparams = tiny_hparams(name, tasks)
    # XLA draws other dropout masks than the graph does: no dropout here.
    if name == "aitm":
        hparams["tower_dropout"] = 0.0
    if name == "automtl":
        hparams["architecture"] = dataclasses.replace(hparams["architecture"], dropout=0.0)
    return data, schema, tasks, hparams


def trained(name, jit_compile, epochs=2):
    data, schema, tasks, hparams = setting(name)
    keras.utils.set_random_seed(0)
    model = zoo.build(name, schema, tasks, **hparams)
    model.compile(optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0), jit_compile=jit_compile)
    history = model.fit(data, batch_size=200, epochs=epochs, shuffle=False, verbose=0)
    return model, history.history, data


@pytest.mark.parametrize("name", KINDS)
def test_training_with_xla_equals_training_without(name):
    plain, plain_logs, data = trained(name, False)
    fast, fast_logs, _ = trained(name, True)
    assert fast.jit_compile and not plain.jit_compile
    for a, b in zip(plain.weights, fast.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=2e-5, err_msg=a.path)
    for key in plain_logs:
        np.testing.assert_allclose(plain_logs[key], fast_logs[key], rtol=1e-4, err_msg=key)
    a, b = plain.predict(data, verbose=0), fast.predict(data, verbose=0)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], atol=1e-5)


def test_only_an_explicit_jit_compile_moves_the_lookups():
    data, schema, tasks, hparams = setting("mmoe")
    model = zoo.build("mmoe", schema, tasks, **hparams)
    for value in ("auto", False):
        model.compile(jit_compile=value)
        assert not model.jit_compile and model._encoder is None  # Keras: no XLA with lookups
        assert set(model.prepare(data)[0]) == set(schema.names)
    model.compile(jit_compile=True)
    assert model.jit_compile and set(model.prepare(data)[0]) == {ENCODED}


def test_every_data_form_is_encoded_and_scores_match():
    model, _, data = trained("ple", True, epochs=1)
    expected = model.predict(data, verbose=0)
    features = tfmtl.data.features_from(data, model.schema)
    from_tensors = model.predict({k: tf.constant(v) for k, v in features.items()}, verbose=0)
    from_dataset = model.predict(model.dataset(data, 128, shuffle=False, labels=False), verbose=0)
    raw = model(features)  # `model(x)` on raw values: the full model, lookups inside
    for task, key in model.output_keys.items():
        np.testing.assert_allclose(from_tensors[task], expected[task], atol=1e-6)
        np.testing.assert_allclose(from_dataset[task], expected[task], atol=1e-6)
        np.testing.assert_allclose(raw[key].numpy(), expected[task], atol=1e-5)
    logs = model.evaluate(data, batch_size=600, verbose=0, return_dict=True)
    again = model.evaluate(model.dataset(data, 600, shuffle=False), verbose=0, return_dict=True)
    assert logs == pytest.approx(again, rel=1e-5)
    encoded = model._encoded(features)
    assert set(encoded) == {ENCODED}
    assert all(v.dtype == np.int32 for v in encoded[ENCODED][:len(model.schema.fields)])


def test_multi_valued_fields_are_padded_to_the_longest_row():
    data, schema, tasks, hparams = setting("mmoe")
    model = zoo.build("mmoe", schema, tasks, **hparams)
    model.compile(jit_compile=True)
    features = tfmtl.data.features_from(data, schema)
    chunked = model._encoder.encode_arrays(features, chunk=7)[ENCODED]
    whole = model._encoder.encode_arrays(features)[ENCODED]
    for a, b in zip(chunked, whole):
        np.testing.assert_array_equal(a, b)
    genres = schema.fields.index(schema["genres"])
    longest = max(len(g.split("|")) if g else 1 for g in data.genres)
    assert whole[genres].shape == (len(data), longest + 1)  # the lookup pads one column more


def test_saved_model_keeps_xla_training_and_serves_raw_values():
    model, _, data = trained("mmoe", True, epochs=1)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "m.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        assert loaded.jit_compile
        loaded.fit(data, batch_size=200, epochs=1, verbose=0)
        base = export.save(model, os.path.join(directory, "served"), sample=data.head(8))
        served = tf.saved_model.load(base).signatures["serving_default"]
        features = tfmtl.data.features_from(data.head(16), model.schema)
        outputs = served(**{model.schema.internal_names[k]: tf.constant(v)
                            for k, v in features.items()})
        expected = model.predict(data.head(16), verbose=0)
        for task, key in model.output_keys.items():
            np.testing.assert_allclose(outputs[key].numpy()[:, None] if outputs[key].ndim == 1
                                       else outputs[key].numpy(), expected[task], atol=1e-5)


def test_a_string_column_read_past_the_lookup_is_refused_clearly():
    data, schema = faceted_data(300)
    tasks = FacetedTasks([tfmtl.Task("like")], [DEVICE])
    model = zoo.build("mfh", schema, tasks, **SMALL)
    with pytest.raises(ValueError, match=r"string column\(s\) \['os'\].*XLA"):
        model.compile(jit_compile=True)
    model.compile()  # without XLA it trains as before
    model.fit(data, batch_size=100, epochs=1, verbose=0)
