"""The base of tfmtl's layers: configs from constructor arguments, one dtype policy."""

import inspect
import types

import keras

_SERIALIZERS = (
    (keras.initializers.Initializer, keras.initializers.serialize),
    (keras.regularizers.Regularizer, keras.regularizers.serialize),
)


class Layer(keras.layers.Layer):
    """A Keras layer whose config is its constructor's arguments.

    `get_config()` returns every named argument of the constructors of the
    class and its tfmtl bases, read from the attribute of the same name
    (activations, initializers and regularizers serialised, objects with a
    `get_config` as their config, tuples as lists), so subclasses keep each
    argument as a public attribute and write no `get_config` of their own.

    Sublayers made in `__init__` take `**self.sublayer_options()`: they
    compute in this layer's dtype policy, so a `mixed_float16` policy given
    to the layer (or restored with it from a `.keras` file) reaches them.
    """

    def sublayer_options(self, name=None):
        options = {"dtype": self.dtype_policy}
        if name is not None:
            options["name"] = name
        return options

    def get_config(self):
        config = super().get_config()
        for name in _arguments(type(self)):
            config[name] = _serialize(getattr(self, name))
        return config


def _arguments(cls):
    names = []
    for klass in cls.__mro__:
        if not issubclass(klass, Layer) or klass is Layer:
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                if p.name not in names:
                    names.append(p.name)
    return names


def _serialize(value):
    for kind, serialize in _SERIALIZERS:
        if isinstance(value, kind):
            return serialize(value)
    if hasattr(value, "get_config"):
        return value.get_config()
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return keras.activations.serialize(value)  # an activation
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if isinstance(value, dict):
        return {k: _serialize(v) for k, v in value.items()}
    return value
