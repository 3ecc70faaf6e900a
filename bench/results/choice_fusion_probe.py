"""Probe: would fusing an expert choice block's candidates make the AutoMTL search's step cheaper?

A chain of expert `ChoiceBlock`s (the paper's 12 candidates, width 64), forward and backward to
every trainable variable on one batch of 2048 rows (the search's validation batch), three ways,
all with the same weights:

- `as is`: `ChoiceBlock.call`, each candidate its own layers;
- `MLPs fused`: the seven MLP candidates' first products as one (64 x 2032) product, their hidden
  batch normalisation, ReLU and dropout as one op over the 2032 units, the seven second products
  apart, then one batch normalisation, ReLU and dropout over the 7 x 64 outputs;
- `all fused`: as `MLPs fused`, with the bit-level gate's product and the three convolutions (as
  banded 64 x 64 matrices) in the same first product, and the gate's and convolutions' batch
  normalisation and dropout as one op.

The fused forms skip the moving statistics' update (which favours them). Their outputs are first
checked against `as is` with dropout off (the batch statistics normalise in both). Then the three
traced steps in turns, rounds of 5 steps, medians of ms per step. Run by hand, from the repository
root, alone on the machine:

    PYTHONPATH=. python bench/results/choice_fusion_probe.py [--blocks 6] [--rounds 7]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmtl.search.choice import ChoiceBlock  # noqa: E402
from tfmtl.search.ops import EXPERT_OPS, BitDropout  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--blocks", type=int, default=6)
parser.add_argument("--rows", type=int, default=2048)
parser.add_argument("--rounds", type=int, default=7)
args = parser.parse_args()
WIDTH, MLPS, CONVS = 64, (16, 32, 64, 128, 256, 512, 1024), (3, 5, 7)


def shifts(kernel_size):
    """`(k, d, d)` 0/1 matrices: `x @ sum_j w_j S_j` is Keras' 'same' 1-D convolution of `x` by `w`."""
    s = np.zeros((kernel_size, WIDTH, WIDTH), "float32")
    for j in range(kernel_size):
        for i in range(WIDTH):
            if 0 <= i + j - kernel_size // 2 < WIDTH:
                s[j, i + j - kernel_size // 2, i] = 1
    return tf.constant(s)


SHIFTS = {k: shifts(k) for k in CONVS}


def batch_norm(h, norms):
    """The training pass of several `FusedBatchNorm` layers over their concatenated units."""
    empty = tf.constant([], "float32")
    y = tf.raw_ops.FusedBatchNormV3(
        x=tf.reshape(h, (-1, 1, 1, h.shape[-1])), scale=tf.concat([n.gamma for n in norms], 0),
        offset=tf.concat([n.beta for n in norms], 0), mean=empty, variance=empty,
        epsilon=norms[0].epsilon, exponential_avg_factor=1.0, data_format="NHWC",
        is_training=True)[0]
    return tf.reshape(y, tf.shape(h))


def fused(block, drops, x, everything):
    op = dict(zip(block.candidates, block.ops))
    mlps, convs, gate = [op[f"mlp_{u}"] for u in MLPS], [op[f"conv_{k}"] for k in CONVS], op["gating"]
    first = [m.hidden.kernel for m in mlps]
    if everything:
        bands = [tf.einsum("k,kij->ij", c.conv.kernel[:, 0, 0], SHIFTS[c.kernel_size]) for c in convs]
        g, h, c = tf.split(x @ tf.concat([gate.gate.kernel] + first + bands, 1),
                           [WIDTH, sum(MLPS), WIDTH * len(CONVS)], 1)
    else:
        h = x @ tf.concat(first, 1)
    h = h + tf.concat([m.hidden.bias for m in mlps], 0)
    h = drops[0](tf.nn.relu(batch_norm(h, [m.hidden_norm for m in mlps])), training=True)
    outs = [p @ m.out.kernel + m.out.bias for p, m in zip(tf.split(h, list(MLPS), 1), mlps)]
    outs = drops[1](tf.nn.relu(batch_norm(tf.concat(outs, 1), [m.norm for m in mlps])),
                    training=True)
    if everything:
        rest = tf.concat([x * tf.sigmoid(g + gate.gate.bias), c], 1)
        rest = tf.split(drops[2](batch_norm(rest, [gate.norm] + [c.norm for c in convs]),
                                 training=True), 1 + len(CONVS), 1)
    else:
        rest = [gate(x, training=True)] + [c(x, training=True) for c in convs]
    outputs = dict(zip(["gating"] + [f"mlp_{u}" for u in MLPS] + [f"conv_{k}" for k in CONVS]
                       + ["skip"], rest[:1] + tf.split(outs, len(MLPS), 1) + rest[1:] + [x]))
    stacked = tf.reshape(tf.stack([outputs[name] for name in block.candidates], 0),
                         (len(block.candidates), -1))
    mixed = tf.reshape(tf.nn.softmax(block.alpha)[None] @ stacked, (-1, WIDTH))
    return mixed + block.aux_weight * x


def chain(dropout):
    blocks = [ChoiceBlock(list(EXPERT_OPS), "expert", dropout=dropout) for _ in range(args.blocks)]
    for block in blocks:
        block.build((None, WIDTH))
    drops = [[BitDropout(dropout, seed=3 * i + j) for j in range(3)] for i in range(args.blocks)]
    return blocks, drops


def forward(blocks, drops, x, form):
    for block, drop in zip(blocks, drops):
        x = block(x, training=True) if form == "as is" else fused(block, drop, x, form == "all fused")
    return x


FORMS = ("as is", "MLPs fused", "all fused")
x = tf.random.stateless_normal((args.rows, WIDTH), (1, 2))
blocks, drops = chain(0.0)
reference = forward(blocks, drops, x, "as is")
for form in FORMS[1:]:
    error = float(tf.reduce_max(tf.abs(forward(blocks, drops, x, form) - reference)))
    print(f"{form}: largest difference from `as is` with dropout off {error:.2e}")
    assert error < 1e-4, form

blocks, drops = chain(0.1)
variables = [v for block in blocks for v in block.trainable_variables]


def step(form):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            h = forward(blocks, drops, x, form)
            loss = tf.reduce_mean(h * h)
        return [g for g in tape.gradient(loss, variables) if g is not None]
    return run


steps = {form: step(form) for form in FORMS}
for run in steps.values():
    run(x), run(x)  # trace and warm up
times = {form: [] for form in FORMS}
for _ in range(args.rounds):
    for form, run in steps.items():
        start = time.perf_counter()
        for _ in range(5):
            grads = run(x)
        grads[0].numpy()
        times[form].append(1000 * (time.perf_counter() - start) / 5)
base = np.median(times["as is"])
for form, values in times.items():
    print(f"{form}: {np.median(values):.1f} ms/step (rounds {min(values):.1f}-{max(values):.1f}); "
          f"as is / {form} {base / np.median(values):.2f}x")
