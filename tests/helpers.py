"""Shared test helpers: the checks every layer and every zoo model must pass."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf



def _symbolic(value):
    if isinstance(value, dict):
        return {k: _symbolic(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_symbolic(v) for v in value]
    value = np.asarray(value)
    dtype = "string" if value.dtype == object else str(value.dtype)
    return keras.Input(shape=value.shape[1:], batch_size=None, dtype=dtype)


def _shapes(outputs):
    return keras.tree.map_structure(lambda t: tuple(t.shape), outputs)


def _to_numpy(outputs):
    return keras.tree.map_structure(lambda t: keras.ops.convert_to_numpy(t), outputs)


def check_layer(layer, args, expected_shape, expected_weights=None, symbolic_shape=None):
    """Checks a layer the way Keras checks its own.

    Config round trip; symbolic and eager output shapes; the number of
    weights; `.keras` save/load of a model around the layer, reloaded
    without `custom_objects`, with equal outputs.

    Args:
        layer: an unbuilt layer instance.
        args: list of positional call arguments (NumPy arrays, or dicts /
            lists of them).
        expected_shape: the eager output shape(s), batch included.
        expected_weights: int or `None`. Number of weights once built.
        symbolic_shape: the symbolic output shape(s); defaults to
            `expected_shape` with an unknown batch size.
    """
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "config round trip changed the config"

    symbolic_args = [_symbolic(a) for a in args]
    symbolic_out = layer(*symbolic_args)
    with_none = symbolic_shape or _unknown_batch(expected_shape)
    got = _shapes(symbolic_out)
    assert _strip(got) == _strip(with_none), f"symbolic shape {got} != {with_none}"

    eager_out = layer(*args)
    assert _strip(_shapes(eager_out)) == _strip(expected_shape)
    if expected_weights is not None:
        assert len(layer.weights) == expected_weights, len(layer.weights)

    model = keras.Model(symbolic_args, symbolic_out)
    before = _to_numpy(model(args))
    path = os.path.join(tempfile.mkdtemp(), "layer.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    after = _to_numpy(reloaded(args))
    flat_before, flat_after = keras.tree.flatten(before), keras.tree.flatten(after)
    assert len(flat_before) == len(flat_after)
    for a, b in zip(flat_before, flat_after):
        np.testing.assert_allclose(a, b, atol=1e-6)
    return eager_out


def _unknown_batch(shape):
    if isinstance(shape, list):
        return [_unknown_batch(s) for s in shape]
    if isinstance(shape, dict):
        return {k: _unknown_batch(v) for k, v in shape.items()}
    return (None,) + tuple(shape[1:])


def _strip(shape):
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_strip(s) for s in shape]
    if isinstance(shape, dict):
        return {k: _strip(v) for k, v in shape.items()}
    return tuple(shape)


def roundtrip_model(model, x):
    """Reloads `model` from `.keras` (no custom_objects) and from a SavedModel.

    Returns the three predictions on `x`: original, `.keras`, SavedModel.
    """
    directory = tempfile.mkdtemp()
    original = {k: np.asarray(v) for k, v in model.predict(x, verbose=0).items()}
    model.save(os.path.join(directory, "model.keras"))
    reloaded = keras.models.load_model(os.path.join(directory, "model.keras"))
    from_keras = {k: np.asarray(v) for k, v in reloaded.predict(x, verbose=0).items()}
    model.export(os.path.join(directory, "saved"), format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(os.path.join(directory, "saved"))
    outputs = served.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    from_saved = {k: v.numpy() for k, v in outputs.items()}
    return original, from_keras, from_saved, reloaded


def example_architecture(tasks, small=True):
    """An AutoMTL architecture for `tasks` (the `automtl` model needs one): small, or the
    authors' widths (embedding 16, experts 64, towers [128, 64])."""
    from tfmtl.search import Architecture

    names = [t if isinstance(t, str) else t.name for t in tasks
             if isinstance(t, str) or (t.loss_weight > 0 and not t.auxiliary)]
    return Architecture(tasks=names, interaction="cross_1",
                        experts=[["gating", "conv_3"], ["mlp_16", "skip"], ["conv_5", "gating"]],
                        task_experts={n: [i % 3, (i + 1) % 3] for i, n in enumerate(names)},
                        embedding_dim=4 if small else 16, units=8 if small else 64,
                        tower_units=(8,) if small else (128, 64))


def required_hparams(name, tasks, small=True):
    """What model `name` cannot be built without (`automtl`: an architecture)."""
    return {"architecture": example_architecture(tasks, small)} if name == "automtl" else {}


def tiny_hparams(name, tasks=None):
    """Model `name`'s hyperparameters shrunk for fast tests: widths 8, two experts, embedding 4."""
    import zoo

    if name == "automtl":
        return required_hparams(name, tasks or ())

    def shrink(key, value):
        if isinstance(value, dict):
            return {k: shrink(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            return tuple(shrink(key, v) for v in value)
        if key.endswith("units") and isinstance(value, (list, tuple)) and value:
            return (8,) * len(value)
        if key in ("num_experts", "num_shared_experts") and isinstance(value, int):
            return min(value, 2)
        if key == "embedding_dim":
            return 4
        return value

    return {k: shrink(k, v) for k, v in zoo.hparams(name).items()}


def sublayers(layer):
    """Every layer inside `layer`, depth first."""
    found = []
    for sub in getattr(layer, "_layers", []) or []:
        found.append(sub)
        found.extend(sublayers(sub))
    return found


def check_served_like_predict(model, x, predictions, directory, atol):
    """The SavedModel of `export.save(model)` returns float32 outputs equal to `predictions`
    (of `model.predict(x)`) to `atol`, one per served task (auxiliary heads are not exported)."""
    import export

    loaded = tf.saved_model.load(export.save(model, str(directory)))
    served = loaded.signatures["serving_default"](**{
        model.schema.internal_names[k]: tf.constant(v) for k, v in x.items()})
    for task in [t for t in model.tasks if not t.auxiliary]:
        assert served[task.name].dtype == tf.float32
        np.testing.assert_allclose(served[task.name].numpy(), predictions[task.name][:, 0],
                                   atol=atol)
