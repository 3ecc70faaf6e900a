"""Every zoo model: build from an inferred schema, train, reload, export."""

import keras
import numpy as np
import pandas as pd
import pytest

import tfmtl
import zoo
from tests.helpers import required_hparams, roundtrip_model, tiny_hparams

MODELS = zoo.list()
TWO_TASK = {"esmm", "aitm"}  # funnel models: click then conversion


def frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
            "genres": ["|".join(rng.choice(list("abcde"), rng.integers(0, 4), replace=False))
                       for _ in range(n)],
            "price": rng.normal(10, 3, n),
        }
    )
    signal = (data.user_id % 2) * 2 - 1 + (data.price - 10) / 3
    data["click"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    data["buy"] = (data.click * (rng.random(n) < 0.5)).astype(int)
    data["rating"] = (data.price / 3 + rng.normal(0, 0.2, n)).astype("float32")
    return data


def test_list_names_every_model():
    assert MODELS == sorted(
        ["single_task", "shared_bottom", "omoe", "mmoe", "cgc", "ple", "esmm", "aitm",
         "stem", "me_mmoe", "me_ple", "fdn", "flat", "hmtl", "mfh", "automtl"]
    )


@pytest.mark.parametrize("name", MODELS)
def test_model_builds_trains_reloads_and_exports(name):
    data = frame()
    labels = ["click", "buy"] if name in TWO_TASK else ["click", "buy", "rating"]
    schema, tasks = tfmtl.infer_schema(data, labels=labels, masks={"buy": "click"})
    assert {type(f).__name__ for f in schema} == {"SparseFeature", "SequenceFeature", "DenseFeature"}
    model = zoo.build(name, schema, tasks, **required_hparams(name, tasks))
    assert isinstance(model, tfmtl.MultiTaskModel)
    model.compile()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(data, batch_size=128, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert changed >= len(before) // 2, f"only {changed}/{len(before)} weights moved"

    x = tfmtl.data.features_from(data.head(50), schema)
    original, from_keras, from_saved, reloaded = roundtrip_model(model, x)
    assert set(original) >= {t.name for t in tasks}
    assert set(from_saved) == set(original)  # Keras' own export keeps every output
    for key, value in original.items():
        assert value.shape == (50, 1)
        np.testing.assert_allclose(from_keras[key], value, atol=1e-5)
        np.testing.assert_allclose(from_saved[key], value, atol=1e-5)
    assert isinstance(reloaded, tfmtl.MultiTaskModel)
    assert reloaded.tasks == model.tasks and reloaded.schema == model.schema
    assert reloaded.compiled  # compile config reloads with the model


@pytest.mark.parametrize("name", [m for m in MODELS if m not in TWO_TASK])
def test_the_regression_head_starts_at_the_label_mean(name):
    data = frame(200)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy", "rating"],
                                       masks={"buy": "click"})
    rating = next(t for t in tasks if t.name == "rating")
    assert rating.kind == "regression"
    assert rating.initial_bias == pytest.approx(data["rating"].mean(), abs=1e-5)
    model = zoo.build(name, schema, tasks, **tiny_hparams(name, tasks))
    biases = [w for w in model.weights if w.path.endswith("logit/bias")
              and w.path.split("/")[-3].startswith("rating")]
    assert biases, [w.path for w in model.weights if "logit" in w.path]
    for bias in biases:  # FDN's auxiliary head predicts the same label
        np.testing.assert_allclose(bias.numpy(), [rating.initial_bias], rtol=1e-6)


def test_unknown_model_lists_the_known_ones():
    schema, tasks = tfmtl.infer_schema(frame(50), labels=["click"])
    with pytest.raises(ValueError, match="Unknown model 'mmeo'. Known models: aitm, automtl, cgc, esmm"):
        zoo.build("mmeo", schema, tasks)


def test_unknown_hyperparameter_is_named():
    schema, tasks = tfmtl.infer_schema(frame(50), labels=["click"])
    with pytest.raises(ValueError, match=r"no hyperparameters \['num_expert'\].*num_experts"):
        zoo.build("mmoe", schema, tasks, num_expert=3)


def test_hyperparameters_are_explicit_with_defaults():
    assert zoo.hparams("mmoe")["num_experts"] == 8
    assert zoo.hparams("ple")["num_levels"] == 2
    assert zoo.hparams("esmm")["tower_units"] == (360, 200, 80)
    assert zoo.hparams("aitm")["constraint_weight"] == 0.6


def test_funnel_models_refuse_other_tasks():
    schema, tasks = tfmtl.infer_schema(frame(50), labels=["click", "buy", "rating"])
    with pytest.raises(ValueError, match="ESMM takes two binary tasks"):
        zoo.build("esmm", schema, tasks)
    with pytest.raises(ValueError, match="AITM takes two or more binary tasks"):
        zoo.build("aitm", schema, [tasks[0], tasks[2]])


def test_task_named_like_a_feature_is_refused():
    schema, _ = tfmtl.infer_schema(frame(50), labels=["click"])
    with pytest.raises(ValueError, match="also feature names"):
        zoo.build("mmoe", schema, [tfmtl.Task("price", "regression")])


def test_mmoe_experts_start_different():
    schema, tasks = tfmtl.infer_schema(frame(50), labels=["click", "buy"])
    model = zoo.build("mmoe", schema, tasks, num_experts=4)
    kernel = keras.ops.convert_to_numpy(model.get_layer("mmoe").experts.kernels[0])
    distances = [np.abs(kernel[a] - kernel[b]).mean() for a in range(4) for b in range(a + 1, 4)]
    assert min(distances) > 0.01


@pytest.mark.parametrize("name", ["ple", "stem"])
def test_the_saved_config_holds_each_vocabulary_once(name, tmp_path):
    import zipfile

    data = frame(300)
    data["city"] = data.city + "_town"  # a value that only a vocabulary holds
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    model = zoo.build(name, schema, tasks, **tiny_hparams(name, tasks))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = archive.read("config.json").decode()
    assert config.count("lille_town") == 1, config.count("lille_town")
    reloaded = tfmtl.load_model(tmp_path / "m.keras")  # keras.saving.load_model, tfmtl imported
    assert reloaded.schema == model.schema
