import keras

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class MLP(Layer):
    """A stack of dense layers: `h = dropout(act(bn(W h + b)))` per layer.

    Args:
        units: list of int. Width of each layer; an empty list is the
            identity (zero layers).
        activation: str or callable. Defaults to `"relu"`.
        dropout: float, or list of float per layer. Dropout rate after each
            layer. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation before each activation.
            Defaults to `False`.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        kernel_regularizer: Defaults to `None`.

    Example:

    >>> from keras import ops
    >>> tuple(MLP([8, 4])(ops.ones((2, 3))).shape)
    (2, 4)
    """

    def __init__(
        self,
        units,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        units = [int(u) for u in units]
        if any(u <= 0 for u in units):
            raise ValueError(f"MLP units must be positive. Received: units={units}")
        rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * len(units)
        if len(rates) != len(units) or not all(0.0 <= r < 1.0 for r in rates):
            raise ValueError(
                "dropout must be a rate in [0, 1) or one such rate per layer. "
                f"Received: dropout={dropout}, units={units}"
            )
        self.units = units
        self.activation = keras.activations.get(activation)
        self.dropout = [float(r) for r in dropout] if isinstance(dropout, (list, tuple)) else float(dropout)
        self.batch_norm = bool(batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.dense_layers = [
            keras.layers.Dense(
                u,
                use_bias=not batch_norm,
                kernel_initializer=keras.initializers.get(
                    keras.initializers.serialize(self.kernel_initializer)
                ),
                kernel_regularizer=self.kernel_regularizer,
                **self.sublayer_options(f"dense_{i}"),
            )
            for i, u in enumerate(units)
        ]
        self.norm_layers = [
            keras.layers.BatchNormalization(**self.sublayer_options(f"batch_norm_{i}"))
            for i in range(len(units) if batch_norm else 0)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(rate, **self.sublayer_options(f"dropout_{i}")) if rate else None
            for i, rate in enumerate(rates)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, dense in enumerate(self.dense_layers):
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
            if self.batch_norm:
                self.norm_layers[i].build(shape)

    def call(self, inputs, training=None):
        h = inputs
        for i, dense in enumerate(self.dense_layers):
            h = dense(h)
            if self.batch_norm:
                h = self.norm_layers[i](h, training=training)
            h = self.activation(h)
            if self.dropout_layers[i] is not None:
                h = self.dropout_layers[i](h, training=training)
        return h

    def compute_output_shape(self, input_shape):
        if not self.units:
            return tuple(input_shape)
        return tuple(input_shape)[:-1] + (self.units[-1],)
