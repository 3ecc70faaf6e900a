import keras
from keras import ops

from tfmtl.layers.base import Layer
from tfmtl.serialization import register


@register
class Experts(Layer):
    """A group of independent MLP experts evaluated in one batched product.

    Expert `e` computes `f_e(x) = act(W_e^L ... act(W_e^1 x + b_e^1) ... )`.
    The kernels of all experts are stacked into one `(experts, in, out)`
    weight per layer, so the group costs one matrix product per layer
    (`expert_layers`), and each expert's slice is drawn independently with
    fans computed per expert (identical experts never learn different
    functions).

    Args:
        num_experts: int. Number of experts.
        units: list of int. Width of each expert layer.
        activation: Defaults to `"relu"`.
        dropout: float. Dropout after each layer. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation before each activation,
            per expert and unit. Defaults to `False`.
        kernel_initializer: A `VarianceScaling` family initializer (or its
            name) is applied per expert. Defaults to `"glorot_uniform"`.
        kernel_regularizer: Defaults to `None`.

    Input shape: `(batch, in)`. Output shape: `(batch, num_experts, units[-1])`.

    Example:

    >>> tuple(Experts(3, [8, 4])(ops.ones((2, 5))).shape)
    (2, 3, 4)
    """

    def __init__(
        self,
        num_experts,
        units,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_experts) < 1:
            raise ValueError(
                f"num_experts must be >= 1. Received: num_experts={num_experts}"
            )
        units = [int(u) for u in units]
        if not units or any(u <= 0 for u in units):
            raise ValueError(
                f"Expert units must be a non-empty list of positive ints. "
                f"Received: units={units}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
        self.num_experts = int(num_experts)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.norm_layers = [
            keras.layers.BatchNormalization(**self.sublayer_options(f"batch_norm_{i}"))
            for i in range(len(units) if batch_norm else 0)
        ]
        self.dropout_layer = (
            keras.layers.Dropout(self.dropout, **self.sublayer_options()) if self.dropout else None
        )

    def _per_expert_initializer(self):
        init = self.kernel_initializer
        if isinstance(init, keras.initializers.VarianceScaling):
            return keras.initializers.VarianceScaling(
                scale=init.scale,
                mode=init.mode,
                distribution=init.distribution,
                seed=init._init_seed,
                input_axes=[1],
                output_axes=[2],
            )
        return init

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.kernels, self.biases = [], []
        for i, width in enumerate(self.units):
            self.kernels.append(
                self.add_weight(
                    shape=(self.num_experts, fan_in, width),
                    initializer=self._per_expert_initializer(),
                    regularizer=self.kernel_regularizer,
                    name=f"kernel_{i}",
                )
            )
            self.biases.append(
                None
                if self.batch_norm
                else self.add_weight(
                    shape=(self.num_experts, width), initializer="zeros", name=f"bias_{i}"
                )
            )
            if self.batch_norm:
                self.norm_layers[i].build((None, self.num_experts * width))
            fan_in = width

    def call(self, inputs, training=None):
        return expert_layers(inputs, self.kernels, self.biases, self.activation,
                             self.norm_layers, self.dropout_layer, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_experts, self.units[-1])


def fusable(groups):
    """Whether `run_fused` can evaluate these `Experts` groups as one."""
    groups = [g for g in groups if g is not None]
    first = groups[0] if groups else None
    return bool(groups) and all(
        g.units == first.units and g.activation is first.activation and g.dropout == first.dropout
        and not g.batch_norm for g in groups)


def run_fused(groups, inputs, training=None):
    """Several `Experts` groups that read the same input, in one batched product per layer.

    The groups' kernels are concatenated along the expert axis (a copy of
    the weights, small beside the activations) so the layer costs one
    product instead of one per group; the result is split back. The same
    function of the inputs and weights as calling each group (see
    `fusable` for when it applies).

    Returns:
        A list of `(batch, group's experts, units)` tensors, one per group.
    """
    first = groups[0]
    kernels = [ops.concatenate([g.kernels[i] for g in groups], axis=0)
               for i in range(len(first.units))]
    biases = [ops.concatenate([g.biases[i] for g in groups], axis=0)
              for i in range(len(first.units))]
    h = expert_layers(inputs, kernels, biases, first.activation, (), first.dropout_layer, training)
    sizes = [g.num_experts for g in groups]
    cuts = [sum(sizes[:k + 1]) for k in range(len(sizes) - 1)]
    return ops.split(h, cuts, axis=1) if cuts else [h]


def expert_layers(inputs, kernels, biases, activation, norms=(), dropout=None, training=None):
    """`(batch, in)` through stacked MLP experts: `(batch, experts, units[-1])`.

    `kernels[i]` is `(experts, in_i, out_i)`, `biases[i]` `(experts, out_i)`
    (`None` where `norms[i]`, a batch normalisation over `(batch, experts *
    out_i)`, replaces it). The first layer, whose input every expert shares,
    is one `(in, experts * out)` product followed by the bias and the
    activation on a 2-D tensor (the pattern oneDNN fuses); later layers are
    one batched product in expert-major layout `(experts, batch, units)`.
    An `einsum` over `(batch, experts, units)` computes the same function,
    but its gradients cost about a quarter more on CPU.
    """
    h = inputs
    experts = None
    for i, kernel in enumerate(kernels):
        experts, fan_in, width = kernel.shape
        norm = norms[i] if i < len(norms) else None
        if i == 0:
            flat = ops.reshape(ops.transpose(kernel, (1, 0, 2)), (fan_in, experts * width))
            h = ops.matmul(h, flat)  # (batch, experts * width)
            if norm is not None:
                h = norm(h, training=training)
            else:
                h = h + ops.reshape(biases[i], (experts * width,))
        else:
            if i == 1:  # to expert-major layout
                h = ops.transpose(ops.reshape(h, (-1, experts, fan_in)), (1, 0, 2))
            h = ops.matmul(h, kernel)  # (experts, batch, width)
            if norm is not None:
                h = ops.reshape(ops.transpose(h, (1, 0, 2)), (-1, experts * width))
                h = norm(h, training=training)
                h = ops.transpose(ops.reshape(h, (-1, experts, width)), (1, 0, 2))
            else:
                h = h + biases[i][:, None, :]
        h = activation(h)
        if dropout is not None:
            h = dropout(h, training=training)
    if len(kernels) == 1:
        return ops.reshape(h, (-1, experts, kernels[0].shape[2]))
    return ops.transpose(h, (1, 0, 2))
