"""One data path: every form of data gives the same targets, losses and errors."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tests.helpers import tiny_hparams
from tests.zoo.test_zoo import TWO_TASK, frame
from tfmtl.data import Targets
from tfmtl.schema import Task

LABELS = {"click", "buy", "rating"}


def data(n=300, seed=0):
    table = frame(n, seed)
    table["seen"] = table.click  # buy is trained on seen rows (a mask column, not a label)
    return table


def labels_of(name):
    return ["click", "buy"] if name in TWO_TASK else ["click", "buy", "rating"]


def build(name, table, seed=7):
    schema, tasks = tfmtl.infer_schema(table, labels=labels_of(name), masks={"buy": "seen"})
    keras.utils.set_random_seed(seed)
    model = zoo.build(name, schema, tasks, **tiny_hparams(name, tasks))
    model.compile(run_eagerly=True)  # a few batches: tracing would cost more than it saves
    return model


def forms(name, table, batch):
    """The same rows as a frame, as Keras (x, y) with the user's columns, as two datasets."""
    labels = labels_of(name)
    x = table.drop(columns=labels)  # features and the mask column
    y = {c: table[c].to_numpy() for c in labels}
    columns = {c: table[c].to_numpy() for c in table.columns}
    x_columns = {c: v for c, v in columns.items() if c not in labels}
    return {
        "frame": ((table,), {"batch_size": batch}),
        "x, y": ((x, y), {"batch_size": batch}),
        "dataset of dicts": ((tf.data.Dataset.from_tensor_slices(columns).batch(batch),), {}),
        "dataset of (x, y)": ((tf.data.Dataset.from_tensor_slices((x_columns, y)).batch(batch),),
                              {}),
    }


@pytest.mark.parametrize("name", zoo.list())
def test_every_form_of_data_gives_the_same_loss_after_one_epoch(name):
    table = data()
    losses = {}
    for form, (args, kwargs) in forms(name, table, 100).items():
        model = build(name, table)  # the same initial weights for every form
        history = model.fit(*args, epochs=1, shuffle=False, verbose=0, **kwargs)
        losses[form] = history.history["loss"][0]
    assert np.isfinite(losses["frame"])
    for form, loss in losses.items():
        assert loss == pytest.approx(losses["frame"], rel=1e-5), (form, losses)


BAD = {
    "NaN label": (lambda t: t.assign(rating=np.where(t.index < 3, np.nan, t.rating)),
                  r"Task 'rating': label column 'rating' has 3 NaN/inf value\(s\) on rows that "
                  r"count\."),
    "2 in a binary label": (lambda t: t.assign(click=np.where(t.index < 2, 2, t.click)),
                            r"Task 'click' is binary but label column 'click' has 2 value\(s\) "
                            r"that are not 0 or 1 \(e\.g\. \[2\.0\]\)\."),
    "mask 3": (lambda t: t.assign(seen=np.where(t.index < 4, 3, t.seen)),
               r"Task 'buy': mask column 'seen' has 4 value\(s\) outside \[0, 1\] "
               r"\(e\.g\. \[3\.0\]\)\."),
}


@pytest.mark.parametrize("name", zoo.list())
def test_every_form_of_data_gets_the_same_validation_error(name):
    table = data(200)
    model = build(name, table)
    before = [w.copy() for w in model.get_weights()]
    for case, (corrupt, message) in BAD.items():
        if case == "NaN label" and name in TWO_TASK:
            corrupt, message = (lambda t: t.assign(click=np.where(t.index < 3, np.nan, t.click)),
                                message.replace("rating", "click"))
        bad = corrupt(table)
        for form, (args, kwargs) in forms(name, bad, 200).items():
            with pytest.raises(ValueError) as error:
                model.fit(*args, epochs=1, verbose=0, **kwargs)
            assert pd.Series([str(error.value)]).str.fullmatch(message).all(), (
                case, form, str(error.value))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing trained on bad data


def test_derived_outputs_need_no_label_of_their_own():
    table = data()
    esmm = build("esmm", table)
    x = table.drop(columns=["click", "buy"])
    history = esmm.fit(x, {"click": table.click, "buy": table.buy}, epochs=1, verbose=0)
    assert "ctcvr_loss" in history.history
    with pytest.raises(ValueError, match=r"'ctcvr' is derived from \['click', 'buy'\]"):
        esmm.fit(x, {"click": table.click, "buy": table.buy, "ctcvr": table.buy}, verbose=0)
    fdn = build("fdn", table)
    y = {c: table[c] for c in ("click", "buy", "rating")}
    history = fdn.fit(table.drop(columns=list(y)), y, epochs=1, verbose=0)
    assert "click_aux_0_loss" in history.history
    # The training helper's pipeline holds made targets (CTCVR, auxiliary heads): passed as they are.
    for model in (esmm, fdn):
        history = tfmtl.fit(model, table, validation=0.2, epochs=1, batch_size=100, verbose=0)
        assert np.isfinite(history.history["val_loss"][0])


def test_the_rule_by_hand():
    tasks = [Task("ctr", label="click"), Task("cvr", label="buy", mask="click"),
             Task("ctcvr", label=("click", "buy")), Task("r", "regression", label="rating")]
    targets = Targets(tasks)
    columns = {"click": np.array([1, 0, 1, 0]), "buy": np.array([1, np.nan, 0, np.nan]),
               "rating": np.array([1.5, 2.0, 3.0, 4.0])}
    targets.validate(columns)  # NaN buy only where nothing reads it
    y, weights = targets(columns, sample_weight={"r": np.array([1.0, 0.5, 0.0, 2.0])})
    np.testing.assert_array_equal(y["ctcvr"].numpy()[:, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(y["cvr"].numpy()[:, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(weights["cvr"].numpy(), [1, 0, 1, 0])
    np.testing.assert_array_equal(weights["ctr"].numpy(), [1, 1, 1, 1])
    np.testing.assert_array_equal(weights["r"].numpy(), [1.0, 0.5, 0.0, 2.0])
    np.testing.assert_array_equal(y["r"].numpy()[:, 0], [1.5, 2.0, 0.0, 4.0])
    assert targets.columns == ["click", "buy", "rating"]


def test_missing_and_non_numeric_columns_are_named():
    table = data(50)
    model = build("mmoe", table)
    with pytest.raises(ValueError, match=r"missing from the data: 'seen' \(task 'buy'\)"):
        model.fit(table.drop(columns=["seen"]), verbose=0)
    with pytest.raises(ValueError, match=r"missing from the dataset: 'seen' \(task 'buy'\)"):
        columns = {c: table[c].to_numpy() for c in table.columns if c != "seen"}
        model.fit(tf.data.Dataset.from_tensor_slices(columns).batch(10), verbose=0)
    with pytest.raises(ValueError, match=r"Column 'rating' must be numeric.*'n/a'"):
        model.fit(table.assign(rating=["n/a"] * 50), verbose=0)
    with pytest.raises(ValueError, match="no label or mask column: 'clicks'"):
        model.fit(table.drop(columns=["click"]), {"clicks": table.click}, verbose=0)


def test_prepared_features_are_the_callers_arrays_and_training_leaves_them_as_they_were():
    # int64 ids and float32 numbers are used where they lie (no second copy of a large table
    # held through `fit`); other dtypes are converted. Training must not write into them.
    table = data().assign(price=lambda t: t.price.astype("float32"))
    columns = {c: table[c].to_numpy().copy() for c in table.columns}
    model = build("mmoe", table)
    x, _, _ = model.prepare(columns)
    assert x["user_id"] is columns["user_id"] and x["price"] is columns["price"]
    widened = model.prepare({**columns, "user_id": columns["user_id"].astype("int32"),
                             "price": columns["price"].astype("float64")})[0]
    assert widened["user_id"].dtype == np.int64 and widened["price"].dtype == np.float32
    kept = {c: v.copy() for c, v in columns.items()}
    model.fit(columns, batch_size=100, epochs=1, verbose=0)
    for c, v in kept.items():
        np.testing.assert_array_equal(columns[c], v, err_msg=c)
