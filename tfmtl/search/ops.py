"""AutoMTL's candidate operations (Table 1): feature interactions and expert blocks.

Every feature-interaction operation maps the field embeddings `(batch, F, E)`
to a flat `(batch, F * E)` tensor (the paper's interaction output is shared
by all experts, and a mixture needs one shape); every expert-block
operation maps `(batch, d)` to `(batch, d)`. As in the authors' code, each
operation but attention and the skip connection ends with batch
normalisation and dropout.

Operation names (`make_interaction`, `make_expert_op`):

- interaction: `inner_product`, `outer_product` (PNN), `cross_1` ... `cross_4`
  (DCN's cross network of 1-4 layers, a weight vector per layer, as the paper
  cites and the authors build it), `feature_cross_1` ... `feature_cross_4`
  (1-4 `keras_rs.layers.FeatureCross` layers, DCN-v2's full matrix; not in
  the default search space),
  `attention_1`, `attention_2`, `attention_4`, `attention_8` (self-attention
  over the fields, by heads), `mlp_64` ... `mlp_1024`, `skip`;
- expert block: `gating` (bit-level gating), `mlp_16` ... `mlp_1024`,
  `conv_3`, `conv_5`, `conv_7` (1-D convolution), `skip`.
"""

import keras
import tensorflow as tf
from keras import ops
from keras_rs.layers import DotInteraction, FeatureCross

from tfmtl.layers.base import Layer
from tfmtl.serialization import register

INTERACTIONS = (("inner_product", "outer_product") + tuple(f"cross_{n}" for n in (1, 2, 3, 4))
                + tuple(f"attention_{h}" for h in (1, 2, 4, 8))
                + tuple(f"mlp_{u}" for u in (64, 128, 256, 512, 1024)) + ("skip",))
EXPERT_OPS = (("gating",) + tuple(f"mlp_{u}" for u in (16, 32, 64, 128, 256, 512, 1024))
              + tuple(f"conv_{k}" for k in (3, 5, 7)) + ("skip",))


@register
class BitDropout(keras.layers.Layer):
    """Dropout drawing 16 random bits per unit, half the random numbers of Keras' `Dropout`.

    `keras.layers.Dropout` draws one float32 uniform per unit (32 random
    bits); with every candidate of every choice block dropping its units,
    those draws were 15 % of a search step's op time
    (`bench/results/search_speed_movielens.md`). Here a unit is kept where
    its 16 bits are `>= t = round(rate * 65536)`, so with probability
    `q = 1 - t / 65536` (within 1/131072 of `1 - rate`), and kept units are
    scaled by `1 / q`, which keeps the expectation exact in float32 (in
    bfloat16 `1 / q` is rounded, as in Keras' `Dropout`). Off outside
    training, like `Dropout`. TensorFlow only (`tf.bitcast`).

    Args:
        rate: float in `[0, 1)`, below `1 - 1/131072` (16 bits keep some units).
        seed: int or `None`.

    Example:

    >>> drop = BitDropout(0.5, seed=1)
    >>> y = drop(ops.ones((2, 4)), training=True)
    >>> sorted(set(keras.ops.convert_to_numpy(y).ravel().tolist()))
    [0.0, 2.0]
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        threshold = int(round(rate * 65536)) if 0 <= rate < 1 else None
        if threshold is None or threshold >= 65536:
            raise ValueError(f"rate must be in [0, 1) and leave a unit a chance with 16 random "
                             f"bits (below 1 - 1/131072). Received: rate={rate}")
        self.rate, self.seed = float(rate), seed
        self.threshold = threshold
        self.keep = 1 - self.threshold / 65536
        if self.threshold:
            self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.supports_masking = True
        self.built = True

    def call(self, x, training=False):
        if not training or not self.threshold:
            return x
        seed = self.seed_generator.next()
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")  # as Keras does
        size = tf.size(x)
        bits = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                           dtype=tf.uint32)
        bits = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
        kept = tf.reshape(bits >= self.threshold, tf.shape(x))
        return tf.where(kept, x * ops.cast(1 / self.keep, x.dtype), tf.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@register
class FusedBatchNorm(keras.layers.BatchNormalization):
    """Keras' `BatchNormalization` whose training step on `(batch, units)` is one fused kernel.

    Keras normalises with separate ops (two means, a squared difference,
    the affine map) and differentiates each; TensorFlow's
    `FusedBatchNormV3` does the forward pass in one op and the backward pass
    in another. Same function: the input in float32 (as Keras computes
    it, and the kernel every TensorFlow build has), the batch's mean and
    biased variance normalise and update the moving statistics (the kernel
    returns the unbiased variance, scaled back here); inference, masks,
    renormalisation and other shapes take Keras' own path. TensorFlow only.
    """

    def call(self, inputs, training=None, mask=None):
        if (not (training and self.trainable) or mask is not None or len(inputs.shape) != 2
                or self.renorm or self.synchronized or not (self.scale and self.center)
                or self.axis not in (-1, 1)):
            return super().call(inputs, training=training, mask=mask)
        units = inputs.shape[-1]
        empty = tf.constant([], "float32")
        y, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=tf.reshape(ops.cast(inputs, "float32"), (-1, 1, 1, units)), scale=self.gamma.value,
            offset=self.beta.value, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)[:3]
        rows = tf.cast(tf.shape(inputs)[0], "float32")
        variance = variance * (rows - 1) / rows
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1 - self.momentum))
        return ops.cast(tf.reshape(y, tf.shape(inputs)), self.compute_dtype)


class _Op(Layer):
    """An operation that ends with batch normalisation and dropout."""

    def __init__(self, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.dropout = float(dropout)
        self.norm = FusedBatchNorm(**self.sublayer_options("norm"))
        self.drop = BitDropout(self.dropout, **self.sublayer_options("drop"))

    def finish(self, h, training):
        return self.drop(self.norm(h, training=training), training=training)


@register
class ProductLayer(_Op):
    """PNN's product layer: linear signals plus inner or outer products, back to `F * E`.

    `inner`: the pairwise inner products `<e_i, e_j>`, `i < j` (IPNN,
    `keras_rs.layers.DotInteraction`); `outer`: the outer product of the
    summed embeddings `f f^T`, `f = sum_i e_i` (OPNN's superposition). Both
    are concatenated with the flat embeddings (the linear signal) and mapped
    by a dense layer to `F * E`.

    Args:
        kind: `"inner"` or `"outer"`.
        dropout: float. Defaults to `0.1`.
    """

    def __init__(self, kind, dropout=0.1, **kwargs):
        super().__init__(dropout, **kwargs)
        if kind not in ("inner", "outer"):
            raise ValueError(f"kind must be 'inner' or 'outer'. Received: {kind!r}")
        self.kind = kind
        self.dot = DotInteraction(name="dot") if kind == "inner" else None

    def build(self, input_shape):
        _, fields, dim = input_shape
        width = fields * (fields - 1) // 2 if self.kind == "inner" else dim * dim
        self.dense = keras.layers.Dense(fields * dim, **self.sublayer_options("dense"))
        self.dense.build((None, fields * dim + width))
        self.norm.build((None, fields * dim))

    def call(self, x, training=None):
        fields, dim = x.shape[1], x.shape[2]
        flat = ops.reshape(x, (-1, fields * dim))
        if self.kind == "inner":
            products = self.dot(ops.unstack(x, axis=1))  # (batch, F (F - 1) / 2)
        else:
            total = ops.sum(x, axis=1)  # (batch, E)
            products = ops.reshape(total[:, :, None] * total[:, None, :], (-1, dim * dim))
        return self.finish(self.dense(ops.concatenate([flat, products], axis=-1)), training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2])


@register
class CrossNetwork(_Op):
    """`num_layers` cross layers on the flat embeddings `x0`, then batch norm and dropout.

    `weight="vector"` is DCN's layer, the one the paper cites (Wang et al.,
    2017) and the authors' code builds: `x_{l+1} = x0 * (x_l . w_l) + b_l + x_l`,
    a weight vector `w_l` (Glorot-uniform) and a bias `b_l` (zeros) per layer.
    `weight="matrix"` is DCN-v2's `x_{l+1} = x0 * (W_l x_l + b_l) + x_l`,
    `keras_rs.layers.FeatureCross`.

    Args:
        num_layers: int. 1 to 4 in the paper's search space.
        dropout: float. Defaults to `0.1`.
        weight: `"vector"` (DCN) or `"matrix"` (DCN-v2). Defaults to `"vector"`.
    """

    def __init__(self, num_layers, dropout=0.1, weight="vector", **kwargs):
        super().__init__(dropout, **kwargs)
        self.num_layers = int(num_layers)
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1. Received: {num_layers}")
        if weight not in ("vector", "matrix"):
            raise ValueError(f"weight must be 'vector' or 'matrix'. Received: {weight!r}")
        self.weight = weight
        self.crosses = ([FeatureCross(name=f"cross_{i}") for i in range(self.num_layers)]
                        if weight == "matrix" else [])

    def build(self, input_shape):
        width = input_shape[1] * input_shape[2]
        if self.weight == "vector":
            self.w = [self.add_weight(shape=(width, 1), initializer="glorot_uniform",
                                      name=f"w_{i}") for i in range(self.num_layers)]
            self.b = [self.add_weight(shape=(width,), initializer="zeros", name=f"b_{i}")
                      for i in range(self.num_layers)]
        for cross in self.crosses:
            cross.build((None, width))
            cross.dense.build((None, width))  # FeatureCross leaves its dense layer unbuilt
        self.norm.build((None, width))

    def call(self, x, training=None):
        x0 = ops.reshape(x, (-1, x.shape[1] * x.shape[2]))
        h = x0
        for i in range(self.num_layers):
            if self.weight == "vector":
                w, b = ops.cast(self.w[i], h.dtype), ops.cast(self.b[i], h.dtype)
                h = x0 * ops.matmul(h, w) + b + h
            else:
                h = self.crosses[i](x0, h)
        return self.finish(h, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2])


@register
class FieldAttention(Layer):
    """Self-attention over the fields (AutoInt): multi-head attention, residual, layer norm.

    Args:
        num_heads: int. Must divide the embedding width.
        dropout: float. Defaults to `0.1`.
    """

    def __init__(self, num_heads, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.norm = keras.layers.LayerNormalization(**self.sublayer_options("norm"))
        self.drop = BitDropout(self.dropout, **self.sublayer_options("drop"))

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"{self.num_heads} heads do not divide the embedding width {dim}.")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, dim // self.num_heads, **self.sublayer_options("attention"))
        self.attention.build(input_shape, input_shape)
        self.norm.build(input_shape)

    def call(self, x, training=None):
        h = self.norm(x + self.attention(x, x, training=training))
        return self.drop(ops.reshape(h, (-1, x.shape[1] * x.shape[2])), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2])


@register
class Bottleneck(_Op):
    """An MLP block `d -> units -> d`, each dense layer with batch norm, ReLU and dropout.

    Input `(batch, d)` or field embeddings `(batch, F, E)` (flattened first).

    Args:
        units: int. The hidden width.
        dropout: float. Defaults to `0.1`.
    """

    def __init__(self, units, dropout=0.1, **kwargs):
        super().__init__(dropout, **kwargs)
        self.units = int(units)
        self.hidden = keras.layers.Dense(self.units, **self.sublayer_options("hidden"))
        self.hidden_norm = FusedBatchNorm(**self.sublayer_options("hidden_norm"))

    def build(self, input_shape):
        width = input_shape[-1] if len(input_shape) == 2 else input_shape[1] * input_shape[2]
        self.hidden.build((None, width))
        self.hidden_norm.build((None, self.units))
        self.out = keras.layers.Dense(width, **self.sublayer_options("out"))
        self.out.build((None, self.units))
        self.norm.build((None, width))

    def call(self, x, training=None):
        if len(x.shape) == 3:
            x = ops.reshape(x, (-1, x.shape[1] * x.shape[2]))
        h = self.drop(ops.relu(self.hidden_norm(self.hidden(x), training=training)),
                      training=training)
        return self.drop(ops.relu(self.norm(self.out(h), training=training)), training=training)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3:
            return (input_shape[0], input_shape[1] * input_shape[2])
        return tuple(input_shape)


@register
class BitGating(_Op):
    """GateNet's bit-level gate: `y = x * sigmoid(W x + b)`, one gate per unit.

    Args:
        dropout: float. Defaults to `0.1`.
    """

    def build(self, input_shape):
        self.gate = keras.layers.Dense(input_shape[-1], **self.sublayer_options("gate"))
        self.gate.build(input_shape)
        self.norm.build(input_shape)

    def call(self, x, training=None):
        return self.finish(x * ops.sigmoid(self.gate(x)), training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register
class UnitConvolution(_Op):
    """A 1-D convolution along the hidden units: one channel, `kernel_size`, 'same' padding, no bias.

    Args:
        kernel_size: int. 3, 5 or 7 in the paper's search space.
        dropout: float. Defaults to `0.1`.
    """

    def __init__(self, kernel_size, dropout=0.1, **kwargs):
        super().__init__(dropout, **kwargs)
        self.kernel_size = int(kernel_size)
        self.conv = keras.layers.Conv1D(1, self.kernel_size, padding="same", use_bias=False,
                                        **self.sublayer_options("conv"))

    def build(self, input_shape):
        self.conv.build((None, input_shape[-1], 1))
        self.norm.build(input_shape)

    def call(self, x, training=None):
        return self.finish(self.conv(x[:, :, None])[:, :, 0], training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register
class Skip(Layer):
    """The skip connection: the input, flattened to `(batch, F * E)` if it is field embeddings."""

    def call(self, x, training=None):
        if len(x.shape) == 3:
            return ops.reshape(x, (-1, x.shape[1] * x.shape[2]))
        return x

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3:
            return (input_shape[0], input_shape[1] * input_shape[2])
        return tuple(input_shape)


def make_interaction(op, dropout=0.1, **options):
    """A feature-interaction operation by name (see the module docstring)."""
    kind, _, value = op.partition("_")
    if op == "inner_product":
        return ProductLayer("inner", dropout, **options)
    if op == "outer_product":
        return ProductLayer("outer", dropout, **options)
    if kind == "cross" and value.isdigit():
        return CrossNetwork(int(value), dropout, **options)
    if op.startswith("feature_cross_") and op[len("feature_cross_"):].isdigit():
        return CrossNetwork(int(op[len("feature_cross_"):]), dropout, "matrix", **options)
    if kind == "attention" and value.isdigit():
        return FieldAttention(int(value), dropout, **options)
    if kind == "mlp" and value.isdigit():
        return Bottleneck(int(value), dropout, **options)
    if op == "skip":
        return Skip(**options)
    raise ValueError(f"Unknown interaction {op!r}; choose from {INTERACTIONS} "
                     "or feature_cross_1 ... feature_cross_4.")


def make_expert_op(op, dropout=0.1, **options):
    """An expert-block operation by name (see the module docstring)."""
    kind, _, value = op.partition("_")
    if op == "gating":
        return BitGating(dropout, **options)
    if kind == "mlp" and value.isdigit():
        return Bottleneck(int(value), dropout, **options)
    if kind == "conv" and value.isdigit():
        return UnitConvolution(int(value), dropout, **options)
    if op == "skip":
        return Skip(**options)
    raise ValueError(f"Unknown expert operation {op!r}; choose from {EXPERT_OPS}.")
