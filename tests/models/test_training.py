"""Plain-Keras training: compile defaults, masks, data forms, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.zoo.test_zoo import frame


def build(data, name="mmoe", seed=3, **hparams):
    keras.utils.set_random_seed(seed)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy", "rating"], masks={"buy": "click"})
    model = zoo.build(name, schema, tasks, num_experts=3, expert_units=(16,), **hparams)
    model.compile()
    return model


def bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_compile_without_arguments_sets_losses_weights_and_metrics():
    data = frame(300)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "rating"])
    tasks[1] = tfmtl.Task("rating", "regression", loss_weight=0.25)
    model = zoo.build("mmoe", schema, tasks)
    model.compile()
    logs = model.evaluate(data, verbose=0, return_dict=True, batch_size=300)
    assert set(logs) == {"loss", "click_loss", "rating_loss", "click_auc", "click_logloss", "rating_mse"}
    out = model.predict(data, verbose=0)
    click = bce(data.click.to_numpy()[:, None], out["click"]).mean()
    mse = ((data.rating.to_numpy()[:, None] - out["rating"]) ** 2).mean()
    np.testing.assert_allclose(logs["click_logloss"], click, rtol=1e-4)
    np.testing.assert_allclose(logs["rating_mse"], mse, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], click + 0.25 * mse, rtol=1e-4)


def test_masked_task_loss_ignores_masked_rows():
    data = frame(400)
    flipped = data.copy()
    unclicked = flipped.click == 0
    flipped.loc[unclicked, "buy"] = 1  # impossible labels where the mask is 0
    model = build(data)
    a = model.evaluate(data, verbose=0, return_dict=True, batch_size=400)
    b = model.evaluate(flipped, verbose=0, return_dict=True, batch_size=400)
    assert a["buy_loss"] == pytest.approx(b["buy_loss"], rel=1e-6)
    assert a["buy_auc"] == pytest.approx(b["buy_auc"], rel=1e-6)
    # The loss is the mean over the rows that count.
    p = model.predict(data, verbose=0)["buy"][:, 0]
    kept = ~unclicked.to_numpy()
    expected = bce(data.buy.to_numpy()[kept], p[kept]).mean()
    assert a["buy_loss"] == pytest.approx(expected, rel=1e-4)

    # Training on either gives the same weights: masked rows send no gradient.
    weights = []
    for d in (data, flipped):
        model = build(d)
        model.fit(d, epochs=2, batch_size=100, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for w1, w2 in zip(*weights):
        np.testing.assert_allclose(w1, w2, atol=1e-6)


def test_all_data_forms_give_the_same_evaluation():
    data = frame(256)
    model = build(data)
    schema = model.schema
    reference = model.evaluate(data, verbose=0, return_dict=True, batch_size=64)

    columns = {c: data[c].to_numpy() for c in data.columns}
    from_dict = model.evaluate(columns, verbose=0, return_dict=True, batch_size=64)

    x = tfmtl.data.features_from(data, schema)
    y = {c: columns[c] for c in ("click", "buy", "rating")}  # the user's label columns
    keras_form = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=64)

    # The mask column may come with x as well as with y.
    with_mask_column = model.evaluate({**x, "click": columns["click"]},
                                      {"buy": columns["buy"], "rating": columns["rating"]},
                                      verbose=0, return_dict=True, batch_size=64)

    rows = tf.data.Dataset.from_tensor_slices(
        {**x, "click": columns["click"], "buy": columns["buy"], "rating": columns["rating"]}
    ).batch(64)
    dataset = model.evaluate(rows, verbose=0, return_dict=True)
    tuples = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    dataset_tuples = model.evaluate(tuples, verbose=0, return_dict=True)

    for other in (from_dict, keras_form, with_mask_column, dataset, dataset_tuples):
        for key, value in reference.items():
            assert other[key] == pytest.approx(value, rel=1e-5), key


def test_explicit_keras_arguments_still_work():
    data = frame(300)
    model = build(data)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"click": "binary_crossentropy", "buy": "binary_crossentropy", "rating": "mse"},
        loss_weights={"click": 1.0, "buy": 0.0, "rating": 0.5},
        metrics={"click": [keras.metrics.Precision(name="precision")]},
    )
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    history = model.fit(data, epochs=1, verbose=0)
    assert "click_precision" in history.history
    assert "click_auc" not in history.history  # defaults only where nothing was given


def test_fit_helper_stops_early_and_restores_the_best_weights():
    # Labels unrelated to the features in validation: the validation loss rises
    # as soon as the model fits the training labels, so training must stop early.
    data = frame(1200)
    valid = data.iloc[:400].assign(click=np.random.default_rng(1).integers(0, 2, 400))
    model = build(data)
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append([w.copy() for w in model.get_weights()]))
    history = tfmtl.fit(model, data.iloc[400:], validation=valid, epochs=30, batch_size=64,
                        patience=2, learning_rate=0.01, verbose=0, callbacks=[record])
    losses = history.history["val_loss"]
    assert history.stopped_early and len(losses) < 30
    assert history.best_epoch == int(np.argmin(losses)) and len(losses) == history.best_epoch + 3
    for a, b in zip(model.get_weights(), snapshots[history.best_epoch]):
        np.testing.assert_array_equal(a, b)
    assert "val_click_auc" in history.history


def test_fit_helper_splits_validation_and_checks_the_monitor():
    data = frame(300)
    model = build(data)
    history = tfmtl.fit(model, data, validation=0.2, epochs=1, batch_size=64, verbose=0)
    assert history.history["val_loss"] and history.best_epoch == 0
    with pytest.raises(ValueError, match="monitor='val_clik_auc' is not a logged value"):
        tfmtl.fit(model, data, epochs=2, monitor="val_clik_auc", verbose=0)
    with pytest.raises(ValueError, match="validation must be a fraction"):
        tfmtl.fit(model, data, validation=1.5, verbose=0)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: d.iloc[:0], r"The data is empty \(0 rows\)"),
        (lambda d: {**{c: d[c].to_numpy() for c in d.columns}, "city": d.city.to_numpy()[:-1]},
         r"Columns have different lengths: \{.*'city': 199"),
        (lambda d: d.drop(columns=["city"]), r"Feature column\(s\) missing from the data: \['city'\]"),
        (lambda d: d.drop(columns=["rating"]), r"missing from the data: 'rating' \(task 'rating'\)"),
        (lambda d: d.assign(rating=np.where(np.arange(len(d)) < 3, np.nan, d.rating)),
         r"'rating' has 3 NaN/inf value\(s\)"),
        (lambda d: d.assign(rating=np.where(np.arange(len(d)) < 2, np.inf, d.rating)),
         r"'rating' has 2 NaN/inf value\(s\)"),
        (lambda d: d.assign(click=np.where(np.arange(len(d)) < 4, 2, d.click)),
         r"Task 'click' is binary but label column 'click' has 4 value\(s\) that are not 0 or 1"),
        (lambda d: d.assign(click=np.where(np.arange(len(d)) < 1, -1, d.click)), r"e\.g\. \[-1\.0\]"),
    ],
)
def test_bad_input_fails_before_training_starts(corrupt, message):
    data = frame(200)
    model = build(data)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=message):
        model.fit(corrupt(data), epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_nan_labels_on_masked_rows_are_fine():
    data = frame(200)
    data["buy"] = np.where(data.click == 1, data.buy, np.nan)  # CVR undefined unclicked
    model = build(data)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["buy_loss"]).all()


def test_dataset_missing_columns_are_named():
    data = frame(64)
    model = build(data)
    x = tfmtl.data.features_from(data, model.schema)
    del x["city"]
    with pytest.raises(ValueError, match=r"missing from the dataset: \['city'\]"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), verbose=0)


def test_empty_or_non_string_task_names_are_refused():
    for name in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            tfmtl.Task(name)
    with pytest.raises(ValueError, match="control character"):
        tfmtl.Task("click\nthrough")


def test_unseen_values_predict():
    data = frame(200)
    model = build(data)
    new = data.head(3).assign(user_id=[10_000, -5, 7], city=["tokyo", "", "paris"],
                              genres=["zz|a", "", "b"])
    out = model.predict(new, verbose=0)
    assert all(np.isfinite(v).all() and v.shape == (3, 1) for v in out.values())


def test_clone_model_gives_a_working_copy():
    data = frame(200)
    model = build(data)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    x = tfmtl.data.features_from(data.head(20), model.schema)
    for key, value in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(clone.predict(x, verbose=0)[key], value, atol=1e-6)
    assert clone.compiled  # with the original's compile config
    y, weights = tfmtl.data.targets_from(data, model.tasks)  # keyed by the outputs
    history = clone.fit(tfmtl.data.features_from(data, model.schema), y, sample_weight=weights,
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="clone_model"):
        clone.fit(data, epochs=1, verbose=0)  # no tasks to split the columns by
