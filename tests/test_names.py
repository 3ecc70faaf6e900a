"""Real column names: any pandas name is a feature, label or mask, everywhere the user looks."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import export
import tfmtl
import zoo
from tests.export.fake_server import FakeServing, start_grpc
from tfmtl.schema.names import internal_name, internal_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ["Clothing ID", "native-country", "Age (years)", "class", "1st purchase", "prix €"]


def shop(n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "Clothing ID": rng.integers(0, 30, n),
        "native-country": rng.choice(["United-States", "Mexico", "Côte d'Ivoire"], n),
        "Age (years)": rng.normal(40, 12, n),
        "class": rng.choice(["Dresses", "Knits", "Blouses"], n),
        "1st purchase": rng.choice(["yes", "no"], n),
        "prix €": rng.gamma(2.0, 20.0, n),
    })
    signal = (frame["Clothing ID"] % 3 - 1) + (frame["Age (years)"] - 40) / 12
    frame["Recommended IND"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    frame["Rating (1-5)"] = np.clip(3 + signal + rng.normal(0, 0.5, n), 1, 5)
    return frame


def test_internal_names_are_safe_stable_and_collisions_are_listed():
    assert [internal_name(c) for c in COLUMNS] == [
        "Clothing_ID", "native_country", "Age_years", "class_", "c_1st_purchase", "prix"]
    assert internal_name("prénom") == "prenom" and internal_name("價格").startswith("c_")
    assert internal_name("價格") == internal_name("價格") != internal_name("價")
    with pytest.raises(ValueError, match=r"\['a b', 'a-b'\] all become 'a_b'"):
        internal_names(["a b", "a-b", "c"])
    with pytest.raises(ValueError, match=r"\['prix €', 'prix'\] all become 'prix'"):
        tfmtl.Schema([tfmtl.DenseFeature("prix €"), tfmtl.DenseFeature("prix")])


def test_a_model_on_real_column_names_trains_predicts_reloads_and_serves(tmp_path):
    frame = shop()
    schema, tasks = tfmtl.infer_schema(frame, labels=["Recommended IND", "Rating (1-5)"])
    assert schema.names == tuple(COLUMNS)
    assert [t.name for t in tasks] == ["Recommended IND", "Rating (1-5)"]
    keras.utils.set_random_seed(0)
    model = zoo.build("ple", schema, tasks, expert_units=(16,), tower_units=(8,))
    model.compile()
    history = model.fit(frame, epochs=3, batch_size=100, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "Recommended_IND_auc" in history.history  # Keras' logs: the internal names
    by_task = model.metrics_by_task(model.evaluate(frame, verbose=0, return_dict=True))
    assert set(by_task) == {"Recommended IND", "Rating (1-5)"} and "auc" in by_task[
        "Recommended IND"]

    rows = frame.head(20)
    predicted = model.predict(rows, verbose=0)
    assert set(predicted) == {"Recommended IND", "Rating (1-5)"}
    assert model.names["features"]["prix €"] == "prix"

    model.save(tmp_path / "shop.keras")
    reloaded = keras.models.load_model(tmp_path / "shop.keras")
    assert reloaded.names == model.names
    for key, value in reloaded.predict(rows, verbose=0).items():
        np.testing.assert_allclose(value, predicted[key], atol=1e-6)

    version = export.save(model, str(tmp_path / "shop"), sample=rows)
    names = json.load(open(os.path.join(version, "assets.extra", "tfmtl_names.json")))
    assert names["features"] == model.names["features"] and names["examples"] == COLUMNS
    loaded = tf.saved_model.load(version)
    examples = []
    for i in range(len(rows)):  # tf.Examples keyed by the raw column names
        feature = {}
        for f in schema:
            value = rows[f.name].iloc[i]
            if isinstance(f, tfmtl.DenseFeature):
                feature[f.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            elif f.dtype == "int64":
                feature[f.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                feature[f.name] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[value.encode()]))
        examples.append(tf.train.Example(
            features=tf.train.Features(feature=feature)).SerializeToString())
    served = loaded.signatures[export.EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    assert set(served) == {"Recommended IND", "Rating (1-5)"}
    for key, value in served.items():
        np.testing.assert_allclose(value.numpy(), predicted[key][:, 0], atol=1e-5)

    # A client takes the raw names and reads the export's mapping.
    handle, target = start_grpc(FakeServing("shop", version))
    try:
        client = export.Client(target, "shop", names=version)
        answer = client.predict({c: rows[c].tolist() for c in COLUMNS})
        client.close()
    finally:
        handle.stop(0)
    for key, value in answer.items():
        np.testing.assert_allclose(value, predicted[key][:, 0], atol=1e-5)

    shown = subprocess.run([sys.executable, "-m", "export.serve_check", version], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert "feature 'prix €' -> input prix" in shown and "ok: 1 warm-up request(s)" in shown


def test_a_mask_column_with_a_real_name_weighs_its_task():
    frame = shop(300)
    frame["Bought?"] = (frame["Recommended IND"] * (frame["Clothing ID"] % 2)).astype(int)
    frame["Seen (1/0)"] = frame["Recommended IND"]
    schema, tasks = tfmtl.infer_schema(frame, labels=["Recommended IND", "Bought?"],
                                       masks={"Bought?": "Seen (1/0)"})
    assert "Seen (1/0)" not in schema.names  # a mask, not a feature
    model = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(8,), tower_units=(4,))
    _, weights = model.targets(frame)
    key = model.output_keys["Bought?"]
    np.testing.assert_array_equal(weights[key].numpy(), frame["Seen (1/0)"].to_numpy("float32"))
    model.compile()
    assert np.isfinite(model.fit(frame, epochs=1, verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match=r"mask column 'Seen \(1/0\)'"):
        model.fit(frame.assign(**{"Seen (1/0)": 3}), epochs=1, verbose=0)
