"""AutoMTL: mixed blocks, the JSD loss, the bi-level steps, derivation, the derived model."""

import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import export
import tfmtl
import zoo
from tests.helpers import roundtrip_model
from tests.zoo.test_zoo import frame
from tfmtl.data import to_dataset
from tfmtl.search import (EXPERT_OPS, INTERACTIONS, Architecture, ChoiceBlock, Search,
                          jsd_loss, make_expert_op, make_interaction)

SMALL = dict(num_experts=3, blocks=1, units=8, tower_units=(8,), embedding_dim=4,
             interactions=["inner_product", "cross_1", "attention_2", "skip"],
             expert_ops=["gating", "conv_3", "mlp_16", "skip"], batch_size=100,
             valid_batch_size=100)


@pytest.mark.parametrize("kind, names, shape", [
    ("interaction", INTERACTIONS, (6, 5, 8)),
    ("expert", EXPERT_OPS, (6, 8)),
])
def test_a_block_with_one_hot_alpha_is_its_chosen_operation(kind, names, shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    block = ChoiceBlock(names, kind)
    block(x)
    block.aux_weight.assign(0.0)
    for chosen in range(len(names)):
        one_hot = np.full(len(names), -1e9, "float32")
        one_hot[chosen] = 0.0
        block.alpha.assign(one_hot)
        np.testing.assert_array_equal(block.weights_of_candidates().numpy(),
                                      np.eye(len(names))[chosen])
        expected = block.ops[chosen](x, training=False).numpy()
        np.testing.assert_allclose(block(x, training=False).numpy(), expected, atol=1e-6)
    block.aux_weight.assign(1.0)  # the DARTS- skip adds the (flattened) input
    flat = x.reshape(len(x), -1)
    np.testing.assert_allclose(block(x, training=False).numpy(), expected + flat, atol=1e-5)
    assert block.derive() == names[-1]


def test_every_operation_keeps_its_shape():
    fields = np.ones((2, 5, 8), "float32")
    for name in INTERACTIONS:
        assert tuple(make_interaction(name)(fields).shape) == (2, 40), name
    for name in EXPERT_OPS:
        assert tuple(make_expert_op(name)(np.ones((2, 8), "float32")).shape) == (2, 8), name
    for name in ("feature_cross_1", "feature_cross_3"):
        assert tuple(make_interaction(name)(fields).shape) == (2, 40), name
    with pytest.raises(ValueError, match="Unknown interaction"):
        make_interaction("mlp_big")
    with pytest.raises(ValueError, match="heads do not divide"):
        make_interaction("attention_8")(np.ones((2, 5, 6), "float32"))


@pytest.mark.parametrize("weight", ["vector", "matrix"])
def test_cross_network_equals_dcn_by_hand(weight):
    """DCN: x_{l+1} = x0 * (x_l . w_l) + b_l + x_l; DCN-v2: x0 * (W_l x_l + b_l) + x_l."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5, 4)).astype("float32")
    name = "cross_3" if weight == "vector" else "feature_cross_3"
    net = make_interaction(name, dropout=0.0)
    net(x)
    assert net.weight == weight
    x0 = h = x.reshape(6, 20).astype("float64")
    for i in range(3):
        if weight == "vector":
            net.w[i].assign(rng.normal(size=(20, 1)))
            net.b[i].assign(rng.normal(size=20))
            h = x0 * (h @ net.w[i].numpy()) + net.b[i].numpy() + h
        else:
            kernel, bias = rng.normal(size=(20, 20)) * 0.3, rng.normal(size=20)
            net.crosses[i].dense.set_weights([kernel, bias])
            h = x0 * (h @ kernel + bias) + h
    assert sum(int(np.prod(v.shape)) for v in net.trainable_weights) == (
        3 * (20 + 20) if weight == "vector" else 3 * (400 + 20)) + 2 * 20  # + batch norm
    norm = net.norm  # batch norm at inference: moving mean 0, variance 1
    expected = h / np.sqrt(1.0 + norm.epsilon)
    np.testing.assert_allclose(net(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_jsd_loss_equals_eq_2_by_hand():
    betas = np.random.default_rng(1).normal(size=(3, 5))
    p = np.exp(betas) / np.exp(betas).sum(axis=1, keepdims=True)
    m = p.mean(axis=0)
    expected = (m * np.log(m)).sum() - np.mean((p * np.log(p)).sum(axis=1))
    got = float(jsd_loss(tf.constant(betas, tf.float32)))
    assert got == pytest.approx(expected, rel=1e-5)
    assert got <= 0 and float(jsd_loss(tf.zeros((3, 5)))) == pytest.approx(0.0, abs=1e-6)


def searcher(**options):
    data = frame(400)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    return Search(schema, tasks, data.iloc[:300], data.iloc[300:], epochs=3, warmup=1,
                  chosen=2, **{**SMALL, **options})


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_alpha_moves_only_in_the_architecture_step_and_weights_only_in_the_weight_step():
    run = searcher()
    batch = next(iter(run.train_data))
    alphas, betas, weights = (snapshot(run.alphas), snapshot(run.betas), snapshot(run.weights))
    run.architecture_step(batch)
    assert all(changed(alphas, run.alphas))
    assert not any(changed(betas, run.betas)) and not any(changed(weights, run.weights))
    alphas, weights = snapshot(run.alphas), snapshot(run.weights)
    run.weight_step(batch, selection=False)  # warm-up: beta frozen
    assert not any(changed(alphas, run.alphas)) and not any(changed(betas, run.betas))
    assert sum(changed(weights, run.weights)) >= len(weights) // 2
    run.jsd_scale.assign(1.0)
    run.weight_step(batch, selection=True)
    assert all(changed(betas, run.betas)) and not any(changed(alphas, run.alphas))


def test_schedules_warm_up_and_derivation():
    run = searcher()
    first = snapshot(run.betas)
    record = run.run_epoch(0)
    assert record["warmup"] and record["w_jsd"] == 0.0 and record["w_aux"] == 1.0
    assert not any(changed(first, run.betas))  # beta frozen while warming up
    record = run.run_epoch(1)
    assert not record["warmup"] and record["w_jsd"] == 1.0 and record["w_aux"] == 0.5
    assert all(changed(first, run.betas))
    assert run.schedule(2) == (0.0, True) and float(run.jsd_scale.numpy()) == 0.5
    run.net.beta.assign([[0.0, 3.0, 1.0], [2.0, 0.0, 5.0]])
    for block in run.net.choice_blocks():
        alpha = np.zeros(len(block.candidates), "float32")
        alpha[1] = 4.0
        block.alpha.assign(alpha)
    architecture = run.derive()
    assert architecture.interaction == "cross_1"
    assert architecture.experts == [["conv_3"]] * 3
    assert architecture.task_experts == {"click": [1, 2], "buy": [2, 0]}


def test_each_step_is_traced_once_whatever_the_batch_size():
    data = frame(400)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"])
    # 250 training rows and 150 validation rows in batches of 100: both end on a short batch.
    run = Search(schema, tasks, data.iloc[:250], data.iloc[250:], epochs=3, warmup=1, chosen=2,
                 **SMALL)
    sizes = [int(tf.shape(b[1]["click"])[0]) for b in run.train_data]
    assert sizes == [100, 100, 50]
    for epoch in range(2):
        run.run_epoch(epoch)
    assert run._steps["architecture"].experimental_get_tracing_count() == 1
    assert run._steps[False].experimental_get_tracing_count() == 1
    assert run._steps[True].experimental_get_tracing_count() == 1


def test_a_search_resumed_from_its_checkpoint_ends_as_the_uninterrupted_one(tmp_path):
    straight = searcher()
    expected, expected_history = straight.run(verbose=0)
    broken = searcher()
    broken.save_state(tmp_path, [broken.run_epoch(0)])  # stopped after its first epoch
    resumed = searcher()
    architecture, history = resumed.run(verbose=0, checkpoint=str(tmp_path))
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for got, want in zip(history, expected_history):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
        assert got["valid_loss"] == pytest.approx(want["valid_loss"], rel=1e-5)
    for got, want in zip(resumed.state_variables(), straight.state_variables()):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert (architecture.experts, architecture.task_experts) == (expected.experts,
                                                                 expected.task_experts)
    assert architecture.info["seconds"] >= history[0]["seconds"]
    # A finished search's checkpoint derives again without a step; another search's is refused.
    again, again_history = searcher().run(verbose=0, checkpoint=str(tmp_path))
    assert again_history == history and again.experts == architecture.experts
    with pytest.raises(ValueError, match="holds another search"):
        searcher(variant="w/o JSD").run(verbose=0, checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="must be a directory"):
        searcher().run(verbose=0, checkpoint=str(tmp_path / "search_state.npz"))


@pytest.mark.parametrize("variant", ["w/o INT", "w/o SEL", "hom Expert", "w/o JSD"])
def test_ablations_search_and_derive(variant):
    run = searcher(variant=variant)
    architecture, history = run.run(verbose=0)
    assert len(history) == 3 and np.isfinite(history[-1]["train_loss"])
    if variant == "w/o INT":
        assert architecture.interaction == "skip" and run.net.interaction is None
    if variant == "w/o SEL":
        assert not run.betas and architecture.task_experts["click"] == [0, 1, 2]
    if variant == "hom Expert":
        assert len({id(b.alpha) for expert in run.net.experts for b in expert}) == 1
        assert len({tuple(e) for e in architecture.experts}) == 1
    if variant == "w/o JSD":
        # Selection is searched, its JSD measured and logged, but never weighted into the loss.
        assert not run.use_jsd and all(record["w_jsd"] == 0.0 for record in history)
        assert history[-1]["jsd"] is not None


def test_the_derived_model_trains_reloads_exports_and_serves_as_a_switcher(tmp_path):
    data = frame(600)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy", "rating"])
    architecture = Architecture(
        tasks=["click", "buy", "rating"], interaction="attention_2",
        experts=[["gating", "conv_5"], ["mlp_16", "skip"], ["conv_3", "gating"]],
        task_experts={"click": [0, 1], "buy": [1], "rating": [0, 1]}, embedding_dim=4,
        units=8, tower_units=(8,))
    assert Architecture.from_json(architecture.to_json()) == architecture
    architecture.save(tmp_path / "arch.json")
    model = zoo.build("automtl", schema, tasks, architecture=str(tmp_path / "arch.json"))
    switcher = model.get_layer("automtl")
    assert switcher.used == [0, 1] and "expert_2_0_conv_3" not in {
        layer.name for layer in switcher._layers}  # no task selected expert 2
    model.compile()
    history = model.fit(data, epochs=2, batch_size=100, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    x = tfmtl.data.features_from(data.head(20), schema)
    original, from_keras, from_saved, _ = roundtrip_model(model, x)
    for key, value in original.items():
        np.testing.assert_allclose(from_keras[key], value, atol=1e-5)
        np.testing.assert_allclose(from_saved[key], value, atol=1e-5)
    export.save(model, str(tmp_path / "served"))
    tree = zoo.build("flat", schema, tasks, switchers=architecture.switcher_spec(), embedding_dim=4,
                     tower_units=(8,))
    assert type(tree.get_layer("switch_root")).__name__ == "SearchedExperts"
    with pytest.raises(ValueError, match="needs architecture"):
        zoo.build("automtl", schema, tasks)
    drawing = architecture.draw(tmp_path / "arch.png")
    assert (tmp_path / "arch.png").stat().st_size > 5000 and str(drawing).endswith(".png")


def test_cli_search_then_train_the_architecture(tmp_path, capsys):
    data = frame(800)
    data.to_parquet(tmp_path / "rows.parquet")
    common = ["--data", str(tmp_path / "rows.parquet"), "--labels", "click,buy"]
    searched = subprocess.run(
        [sys.executable, "-m", "tfmtl", "search", *common, "--epochs", "2", "--warmup", "1",
         "--experts", "2", "--blocks", "1", "--chosen", "1", "--batch-size", "200",
         "--out", str(tmp_path / "arch.json"), "--plot", str(tmp_path / "arch.png"),
         "--checkpoint-dir", str(tmp_path / "state"), "--precision", "mixed_bfloat16"],
        capture_output=True, text=True)
    assert searched.returncode == 0, searched.stderr[-2000:]
    assert "search epoch 2/2" in searched.stdout
    assert re.search(r"peak memory \d+ MiB, mixed_bfloat16", searched.stdout), searched.stdout
    assert (tmp_path / "state" / "search_state.npz").stat().st_size > 1000
    architecture = Architecture.load(tmp_path / "arch.json")
    assert set(architecture.task_experts) == {"click", "buy"}
    trained = subprocess.run(
        [sys.executable, "-m", "tfmtl", "train", *common, "--architecture",
         str(tmp_path / "arch.json"), "--epochs", "1", "--quiet", "--export", str(tmp_path / "m")],
        capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "automtl on" in trained.stdout
    assert re.search(r"click\s+binary\s+auc\s+0\.\d+", trained.stdout), trained.stdout
    from tfmtl.cli import main  # an input error, caught before any work: in this process

    assert main(["train", *common, "--model", "mmoe", "--architecture",
                 str(tmp_path / "arch.json")]) == 2
    assert "trains the automtl model" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # float16 needs loss scaling: not offered
        main(["search", *common, "--precision", "mixed_float16"])
    assert "invalid choice: 'mixed_float16'" in capsys.readouterr().err


def test_the_encoded_input_of_the_search_gives_the_raw_input_s_outputs():
    run = searcher()
    x = next(iter(to_dataset(frame(400).iloc[:64], run.net.schema, batch_size=64,
                             shuffle=False)))
    raw = run.net(x, training=False)
    encoded = run.net(run.net.encode(x), training=False, encoded=True)
    for key in raw:
        np.testing.assert_allclose(raw[key].numpy(), encoded[key].numpy(), rtol=1e-6)


def test_a_bfloat16_search_computes_in_bfloat16_and_keeps_alpha_beta_and_losses_in_float32(
        tmp_path):
    import keras

    # Without dropout, so that the training pass (batch statistics) compares alike.
    full, mixed = searcher(dropout=0.0), searcher(dropout=0.0, dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    assert mixed.info["precision"] == "mixed_bfloat16" and full.info["precision"] == "float32"
    # The same seed gives the same float32 variables: only the arithmetic differs.
    assert {v.dtype for v in mixed.net.variables} == {"float32"}  # no dropout: no seeds
    for a, b in zip(full.net.variables, mixed.net.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    block = mixed.net.experts[0][0]
    assert block.compute_dtype == "bfloat16" and mixed.net.heads[0].dense.compute_dtype == "float32"
    batch = next(iter(full.train_data))
    x, y = batch[0], batch[1]
    grads, outputs = [], []
    for run in (full, mixed):
        with tf.GradientTape() as tape:
            out = run.net(x, training=True, encoded=True)
            loss = tf.add_n([run.losses[k](y[k], out[k]) for k in run.losses])
        assert loss.dtype == "float32" and all(o.dtype == "float32" for o in out.values())
        grads.append(np.concatenate([g.numpy() for g in tape.gradient(loss, run.alphas)]))
        outputs.append(np.concatenate([o.numpy() for o in out.values()]))
    # bfloat16's 8-bit mantissa: near, not equal.
    assert 0 < np.abs(outputs[0] - outputs[1]).max() < 0.03
    cosine = grads[0] @ grads[1] / np.linalg.norm(grads[0]) / np.linalg.norm(grads[1])
    assert cosine > 0.9, cosine  # alpha's gradient keeps its direction
    architecture, history = mixed.run(verbose=0, checkpoint=str(tmp_path))
    assert np.isfinite(history[-1]["train_loss"]) and history[-1]["jsd"] < 0
    assert architecture.info["precision"] == "mixed_bfloat16"
    with pytest.raises(ValueError, match="holds another search"):  # a float32 search's state
        searcher().run(verbose=0, checkpoint=str(tmp_path))


def test_a_search_takes_the_global_policy_and_refuses_float16():
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        assert searcher().info["precision"] == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="loss scaling"):
        searcher(dtype="mixed_float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        searcher(dtype="bfloat16")


def test_bit_dropout_keeps_units_at_its_rate_scales_them_and_draws_new_masks():
    from tfmtl.search.ops import BitDropout

    drop = BitDropout(0.1, seed=3)
    x = tf.ones((1000, 1000))
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())  # not training: the identity
    first, second = drop(x, training=True).numpy(), drop(x, training=True).numpy()
    kept = first != 0
    # 10^6 units: the kept share's standard deviation is 0.0003.
    assert abs(kept.mean() - 0.9) < 0.0015
    assert set(np.unique(first)) == {0.0, np.float32(65536 / (65536 - 6554))}
    assert abs(first.mean() - 1.0) < 0.002  # unbiased: the kept units scaled by 1 / q
    assert abs(np.corrcoef(kept[:, 0::2].ravel(), kept[:, 1::2].ravel())[0, 1]) < 0.005
    assert (kept != (second != 0)).mean() > 0.1  # a new mask each call
    again = BitDropout(0.1, seed=3)
    np.testing.assert_array_equal(again(x, training=True).numpy(), first)  # seeded
    odd = tf.ones((3, 7))  # an odd number of units, in a bfloat16 layer
    assert BitDropout(0.5, seed=0, dtype="mixed_bfloat16")(odd, training=True).dtype == "bfloat16"
    np.testing.assert_array_equal(BitDropout(0.0)(x, training=True).numpy(), x.numpy())
    for rate in (1.0, 1 - 1 / 200_000, -0.1):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            BitDropout(rate)
    clone = BitDropout.from_config(drop.get_config())
    assert (clone.rate, clone.seed, clone.threshold) == (0.1, 3, 6554)


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_equals_keras_batch_normalization(dtype):
    import keras

    from tfmtl.search.ops import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (256, 40)), "float32")
    upstream = tf.constant(rng.normal(size=(256, 40)), "float32")
    layers = [FusedBatchNorm(momentum=0.9, dtype=dtype),
              keras.layers.BatchNormalization(momentum=0.9, dtype=dtype)]
    results = []
    for layer in layers:
        layer.build((None, 40))
        layer.gamma.assign(rng.uniform(0.5, 2.0, 40) if not results else layers[0].gamma)
        layer.beta.assign(rng.normal(size=40) if not results else layers[0].beta)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        y2 = layer(x * 0.5 + 1.0, training=True)  # a second batch moves the moving statistics
        results.append([y, *grads, y2, layer.moving_mean, layer.moving_variance,
                        layer(x, training=False)])
    assert results[0][0].dtype == ("bfloat16" if dtype == "mixed_bfloat16" else "float32")
    tolerance = 2e-2 if dtype == "mixed_bfloat16" else 1e-5
    for fused, reference in zip(*results):
        np.testing.assert_allclose(np.asarray(tf.cast(fused, "float32")),
                                   np.asarray(tf.cast(reference, "float32")),
                                   rtol=tolerance, atol=tolerance)
    traced = tf.function(lambda v: layers[0](v, training=True)).get_concrete_function(x)
    assert "FusedBatchNormV3" in {op.type for op in traced.graph.get_operations()}  # its path
    clone = FusedBatchNorm.from_config(layers[0].get_config())
    assert isinstance(clone, FusedBatchNorm) and clone.momentum == 0.9
