"""AutoMTL's search (Algorithm 1): bi-level, first order, then derive (TensorFlow-specific loop)."""

import json
import math
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf

from tfmtl.data.pipeline import to_dataset
from tfmtl.data.targets import Targets
from tfmtl.models.multi_task_model import default_losses
from tfmtl.precision import warn_if_bfloat16_emulated
from tfmtl.search.architecture import Architecture
from tfmtl.search.ops import EXPERT_OPS, INTERACTIONS
from tfmtl.search.supernet import Supernet, jsd_loss

VARIANTS = ("automtl", "w/o INT", "w/o SEL", "hom Expert", "w/o JSD")
PRECISIONS = ("float32", "mixed_bfloat16")
STATE_FILE = "search_state.npz"


def default_chosen(num_tasks):
    """Experts kept per task: 6 with two tasks, 3 with more (the authors' configurations)."""
    return 6 if num_tasks <= 2 else 3


def search(schema, tasks, train, valid, epochs=15, warmup=5, verbose=1, checkpoint=None,
           **options):
    """Searches an AutoMTL architecture and derives it (Algorithm 1, Sec. 3.4).

    Each step takes a validation batch and a training batch:

    1. architecture step: `alpha` (every choice block) by Adam on the
       validation loss `L_val = sum_k w_k L_k` (Eq. 3), first order (Eq. 4
       with `xi = 0`, as the paper uses);
    2. weight step: the network weights by SGD with momentum (cosine decay
       of the learning rate over the epochs, gradient norm clipped) and,
       after `warmup` epochs, the expert-selection `beta` by Adam, on the
       training loss plus `w_JSD * L_JSD` (Eq. 2, 3).

    During warm-up `beta` is frozen (the experts train equally) and `L_JSD`
    is off; then `w_JSD` falls linearly by one step per epoch (1.0, 0.9, ...
    with 15 epochs and 5 of warm-up, as the authors' code). The DARTS-
    auxiliary skip connection of every choice block falls linearly from 1
    to 0 over the search. Task weights `w_k` are the tasks' loss weights
    normalised to sum to 1 (the paper: equal weights).

    Derivation: each choice block's strongest operation (`argmax alpha`)
    and each task's top-`chosen` experts by `beta`.

    Args:
        schema, tasks: the features and the (binary or regression) tasks.
        train, valid: DataFrames or dicts of columns.
        epochs, warmup: int. Search epochs and warm-up epochs.
        verbose: 0 silent, 1 one line per epoch.
        checkpoint: a directory, or `None`. The search's whole state is saved
            there after every epoch (`Search.save_state`), and a search
            started with the same directory resumes after the last saved
            epoch, ending as the uninterrupted search would.
        **options: see `Search`.

    Returns:
        `(architecture, history)`: an `Architecture` (its `info` holds the
        search time and peak memory) and per-epoch figures.
    """
    runner = Search(schema, tasks, train, valid, epochs=epochs, warmup=warmup, **options)
    return runner.run(verbose, checkpoint)


class Search:
    """The state of one AutoMTL search: supernet, data, three optimisers, schedules.

    Settings the paper leaves open take the authors' code's values: 15
    epochs, 5 of warm-up, 8 experts of 3 blocks at width 64, dropout 0.1,
    batches of 1024 (validation 2048), SGD momentum 0.9 and weight decay
    3e-4 (Keras decouples it from the gradient), Adam `beta_1 = 0.5` for
    `alpha` (weight decay 1e-6) and `beta` (3e-4), gradient norms clipped
    at 5.

    Args:
        schema, tasks, train, valid, epochs, warmup: see `search`.
        embedding_dim, num_experts, blocks, units, tower_units,
        interactions, expert_ops, dropout: the supernet (`Supernet`).
        chosen: int. Experts per task; defaults to `default_chosen(len(tasks))`.
        variant: `"automtl"` or an ablation of the paper's Table 3:
            `"w/o INT"` (no interaction block), `"w/o SEL"` (softmax gates over
            all experts in the search and in the derived model, no `beta`,
            no JSD), `"hom Expert"` (every expert shares one `alpha` per
            block), `"w/o JSD"` (`w_JSD = 0`).
        batch_size, valid_batch_size, weight_lr, momentum, weight_decay,
        arch_lr, arch_weight_decay, selection_lr, selection_weight_decay,
        clip, jsd_weight: the optimisation (see above).
        seed: int.
        dtype: `None` (Keras' global dtype policy, float32 unless set),
            `"float32"` or
            `"mixed_bfloat16"`: the supernet computes in bfloat16 (weights,
            `alpha`, `beta`, their softmaxes and gradients, heads, losses and
            optimiser states stay float32; the softmaxes are rounded to
            bfloat16 only to weigh the bfloat16 outputs), as
            `zoo.build(..., dtype=)`; the derived
            architecture is the same kind of record either way and is
            retrained in whatever precision `zoo.build` is given.
            `"mixed_float16"` is refused: its small range needs loss scaling,
            which the search's three optimisers do not have.
        jit_compile: bool. Compile each step with XLA (the lookups run in
            the input pipeline either way). Defaults to `False`: on the 2-core
            CPU, compiling the paper-sized supernet's two steps took 706-748 s
            (MovieLens-100K, 8 experts of 3 blocks) and the compiled steps
            were slower, 4.71 s a pair against 3.62 s without XLA
            (`bench/results/automtl_xla_probe.txt`); it is meant for a GPU.
    """

    def __init__(self, schema, tasks, train, valid, epochs=15, warmup=5, embedding_dim=16,
                 num_experts=8, blocks=3, units=64, tower_units=(128, 64), chosen=None,
                 interactions=INTERACTIONS, expert_ops=EXPERT_OPS, batch_size=1024,
                 valid_batch_size=2048, weight_lr=0.02, momentum=0.9, weight_decay=3e-4,
                 arch_lr=1e-3, arch_weight_decay=1e-6, selection_lr=1e-3,
                 selection_weight_decay=3e-4, clip=5.0, jsd_weight=1.0, dropout=0.1,
                 variant="automtl", seed=0, dtype=None, jit_compile=False):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}. Received: {variant!r}")
        if not 0 <= warmup < epochs:
            raise ValueError(f"warmup must be in [0, epochs). Received: warmup={warmup}, "
                             f"epochs={epochs}")
        precision = keras.config.dtype_policy().name if dtype is None else dtype
        if precision not in PRECISIONS:
            hint = (" (float16 needs loss scaling, which the search's optimisers do not have; "
                    "mixed_bfloat16 does not)" if precision == "mixed_float16" else "")
            raise ValueError(f"dtype must be one of {PRECISIONS}{hint}. Received: dtype={dtype!r}")
        warn_if_bfloat16_emulated(precision)
        self.started, self.earlier_seconds, self.earlier_peak_rss_mib = time.time(), 0.0, 0.0
        keras.utils.set_random_seed(seed)
        self.tasks = list(tasks)
        self.chosen = default_chosen(len(self.tasks)) if chosen is None else int(chosen)
        if not 1 <= self.chosen <= num_experts:
            default = f" (the default for {len(self.tasks)} tasks)" if chosen is None else ""
            raise ValueError(f"chosen (experts kept per task) must be in [1, num_experts="
                             f"{num_experts}]. Received: {self.chosen}{default}")
        self.epochs, self.warmup, self.variant, self.seed = epochs, warmup, variant, seed
        self.settings = dict(embedding_dim=embedding_dim, units=units,
                             tower_units=list(tower_units), dropout=dropout,
                             interactions=list(interactions), expert_ops=list(expert_ops))
        self.info = {"variant": variant, "epochs": epochs, "warmup": warmup,
                     "num_experts": num_experts, "blocks": blocks, "chosen": self.chosen,
                     "batch_size": batch_size, "seed": seed, "precision": precision}
        before = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            self.net = Supernet(schema, self.tasks, embedding_dim, num_experts, blocks, units,
                                tower_units, interactions, expert_ops, dropout,
                                interaction=variant != "w/o INT", selection=variant != "w/o SEL",
                                homogeneous=variant == "hom Expert", name="supernet")
            self.net.build()
        finally:
            keras.config.set_dtype_policy(before)
        targets = Targets(self.tasks, keys=self.net.keys)
        self.jit_compile = bool(jit_compile)
        self.train_data = self._encoded(
            to_dataset(train, schema, targets, batch_size, shuffle=True, seed=seed))
        valid_data = self._encoded(to_dataset(valid, schema, targets, valid_batch_size,
                                              shuffle=True, seed=seed + 1)).repeat()
        self.valid_batches = iter(valid_data)
        # Each step is traced once, for any batch size: the last, shorter batch of an epoch
        # (and of the repeated validation split) would otherwise trace it again.
        self.train_spec = self.train_data.element_spec
        self.valid_spec = valid_data.element_spec
        self.losses = default_losses(self.tasks, self.net.keys)
        total = sum(t.loss_weight for t in self.tasks)
        self.task_weights = {self.net.keys[t.name]: t.loss_weight / total for t in self.tasks}
        self.weight_lr, self.clip, self.jsd_weight = weight_lr, clip, jsd_weight
        self.weight_opt = keras.optimizers.SGD(weight_lr, momentum=momentum,
                                               weight_decay=weight_decay)
        self.arch_opt = keras.optimizers.Adam(arch_lr, beta_1=0.5, beta_2=0.999,
                                              weight_decay=arch_weight_decay)
        self.select_opt = keras.optimizers.Adam(selection_lr, beta_1=0.5, beta_2=0.999,
                                                weight_decay=selection_weight_decay)
        self.alphas = self.net.architecture_variables
        self.betas = self.net.selection_variables
        self.weights = self.net.network_variables
        self.weight_opt.build(self.weights)
        self.arch_opt.build(self.alphas)
        if self.betas:
            self.select_opt.build(self.betas)
        self.jsd_scale = tf.Variable(0.0, trainable=False, dtype="float32")
        self.use_jsd = variant not in ("w/o SEL", "w/o JSD")
        self._steps = {}

    def _encoded(self, dataset):
        """The lookups in the input pipeline (`Supernet.encode`): the steps see numbers only."""
        return dataset.map(lambda x, *rest: (self.net.encode(x), *rest),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def task_loss(self, x, y, w):
        outputs = self.net(x, training=True, encoded=True)
        return tf.add_n([self.task_weights[k] * self.losses[k](y[k], outputs[k],
                                                               None if w is None else w[k])
                         for k in self.losses])

    def architecture_step(self, batch):
        """One Adam step of every `alpha` on a validation batch; returns the loss."""
        if "architecture" not in self._steps:
            @tf.function(jit_compile=self.jit_compile, input_signature=[self.valid_spec])
            def step(batch):
                with tf.GradientTape() as tape:
                    loss = self.task_loss(*_parts(batch))
                grads = tape.gradient(loss, self.alphas)
                self.arch_opt.apply_gradients(zip(grads, self.alphas))
                return loss

            self._steps["architecture"] = step
        return self._steps["architecture"](batch)

    def weight_step(self, batch, selection):
        """One step of the network weights (and of `beta` with `selection`) on a training batch."""
        selection = bool(selection and self.betas)
        if selection not in self._steps:
            trained = self.weights + (self.betas if selection else [])

            @tf.function(jit_compile=self.jit_compile, input_signature=[self.train_spec])
            def step(batch):
                with tf.GradientTape() as tape:
                    loss = self.task_loss(*_parts(batch))
                    objective = loss
                    if selection and self.use_jsd:
                        objective = loss + self.jsd_scale * jsd_loss(self.betas[0])
                grads = tape.gradient(objective, trained)
                network, chosen = grads[:len(self.weights)], grads[len(self.weights):]
                network, _ = tf.clip_by_global_norm(network, self.clip)
                self.weight_opt.apply_gradients(zip(network, self.weights))
                if chosen:
                    chosen, _ = tf.clip_by_global_norm(chosen, self.clip)
                    self.select_opt.apply_gradients(zip(chosen, self.betas))
                return loss

            self._steps[selection] = step
        return self._steps[selection](batch)

    def schedule(self, epoch):
        """Learning rate (cosine), auxiliary skip weight and `w_JSD` of `epoch` (0-based)."""
        epochs, warmup = self.epochs, self.warmup
        self.weight_opt.learning_rate.assign(
            self.weight_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        aux = (epochs - 1 - epoch) / max(epochs - 1, 1)
        for block in self.net.choice_blocks():
            block.aux_weight.assign(aux)
        after_warmup = epoch >= warmup
        # `w/o SEL` and `w/o JSD` add no JSD term: their weight is 0 (and is logged as 0).
        self.jsd_scale.assign(self.jsd_weight * (1 - (epoch - warmup) / (epochs - warmup))
                              if after_warmup and self.use_jsd else 0.0)
        return aux, after_warmup

    def run_epoch(self, epoch):
        started = time.time()
        aux, after_warmup = self.schedule(epoch)
        train_losses, valid_losses = [], []
        for batch in self.train_data:
            valid_losses.append(float(self.architecture_step(next(self.valid_batches))))
            train_losses.append(float(self.weight_step(batch, after_warmup)))
        return {"epoch": epoch + 1, "warmup": not after_warmup,
                "train_loss": float(np.mean(train_losses)),
                "valid_loss": float(np.mean(valid_losses)), "seconds": time.time() - started,
                "w_jsd": float(self.jsd_scale.numpy()), "w_aux": aux,
                "jsd": float(jsd_loss(self.betas[0])) if self.betas else None,
                "interaction": (self.net.interaction.derive()
                                if self.net.interaction is not None else None)}

    def run(self, verbose=1, checkpoint=None):
        """All epochs, then `derive()`; with `checkpoint` (a directory) saved after each epoch
        and resumed from there (see `save_state`)."""
        history = []
        if checkpoint is not None and os.path.isfile(checkpoint):
            raise ValueError(f"checkpoint must be a directory; {checkpoint} is a file.")
        if checkpoint is not None and os.path.exists(os.path.join(checkpoint, STATE_FILE)):
            history = self.restore_state(checkpoint)
            if verbose:
                print(f"resuming the search after epoch {len(history)}/{self.epochs} "
                      f"({checkpoint})", flush=True)
        for epoch in range(len(history), self.epochs):
            record = self.run_epoch(epoch)
            history.append(record)
            if checkpoint is not None:
                self.save_state(checkpoint, history)
            if verbose:
                picked = f", interaction {record['interaction']}" if record["interaction"] else ""
                jsd = (f", JSD {record['jsd']:.3f} (w {record['w_jsd']:.2f})"
                       if record["jsd"] is not None else "")
                print(f"search epoch {epoch + 1}/{self.epochs}"
                      f"{' (warm-up)' if record['warmup'] else ''}: train loss "
                      f"{record['train_loss']:.4f}, validation loss {record['valid_loss']:.4f}"
                      f"{jsd}{picked}, {record['seconds']:.0f} s", flush=True)
        architecture = self.derive()
        architecture.info = {**self.info, "seconds": self.seconds(),
                             "peak_rss_mib": self.peak_rss_mib(),
                             "gpu": bool(tf.config.list_physical_devices("GPU"))}
        return architecture, history

    def seconds(self):
        """Wall time of the search so far, earlier runs of a resumed search included."""
        return self.earlier_seconds + time.time() - self.started

    def peak_rss_mib(self):
        """Peak resident memory, the largest of this process and earlier runs of the search."""
        return max(self.earlier_peak_rss_mib,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    def state_variables(self):
        """What the search changes: the supernet's variables (dropout seeds and `w_aux`
        included), the three optimisers' (steps, learning rates, moments) and `w_JSD`."""
        optimizers = [self.weight_opt, self.arch_opt] + ([self.select_opt] if self.betas else [])
        return (list(self.net.variables) + [v for o in optimizers for v in o.variables]
                + [self.jsd_scale])

    def save_state(self, directory, history):
        """Writes the search's state after `len(history)` epochs to `directory`, atomically."""
        os.makedirs(directory, exist_ok=True)
        meta = {"info": self.info, "history": history, "seconds": self.seconds(),
                "peak_rss_mib": self.peak_rss_mib()}
        values = {f"v{i}": keras.ops.convert_to_numpy(v)
                  for i, v in enumerate(self.state_variables())}
        path = os.path.join(directory, STATE_FILE)
        with open(path + ".tmp", "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **values)
        os.replace(path + ".tmp", path)
        return path

    def restore_state(self, directory):
        """Loads `save_state`'s state and replays the data order; returns the history so far.

        The training data is reshuffled each epoch and the validation
        batches run on: both are advanced past the saved epochs, so the
        next epoch sees the batches it would have seen without the break.
        """
        path = os.path.join(directory, STATE_FILE)
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            values = [saved[f"v{i}"] for i in range(len(saved.files) - 1)]
        if meta["info"] != json.loads(json.dumps(self.info)):
            raise ValueError(f"{path} holds another search: {meta['info']}; this search is "
                             f"{self.info}. Use another checkpoint directory.")
        variables = self.state_variables()
        shapes = [tuple(v.shape) for v in variables]
        if [tuple(v.shape) for v in values] != shapes:
            raise ValueError(f"{path} does not match this search's variables (other features, "
                             "candidates or sizes). Use another checkpoint directory.")
        for variable, value in zip(variables, values):
            variable.assign(value)
        history = meta["history"]
        for _ in history:
            steps = sum(1 for _ in self.train_data)
            for _ in range(steps):
                next(self.valid_batches)
        self.earlier_seconds = meta["seconds"]  # this run's set-up and replay count too
        self.earlier_peak_rss_mib = meta["peak_rss_mib"]
        return history

    def derive(self):
        s = self.settings
        return derive(self.net, self.tasks, self.chosen, s["embedding_dim"], s["units"],
                      s["tower_units"], s["dropout"], s["interactions"], s["expert_ops"])


def _parts(batch):
    return batch[0], batch[1], (batch[2] if len(batch) > 2 else None)


def derive(net, tasks, chosen, embedding_dim, units, tower_units, dropout, interactions,
           expert_ops):
    """The `Architecture` of a searched supernet: argmax per block, top-`chosen` experts per task."""
    experts = [[block.derive() for block in expert] for expert in net.experts]
    if net.use_selection:
        beta = net.beta.numpy()
        probabilities = np.exp(beta - beta.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        task_experts = {t.name: [int(i) for i in np.argsort(-beta[k], kind="stable")[:chosen]]
                        for k, t in enumerate(tasks)}
        betas = {t.name: probabilities[k].round(6).tolist() for k, t in enumerate(tasks)}
    else:  # w/o SEL: every expert, under the task's gate
        task_experts = {t.name: list(range(len(experts))) for t in tasks}
        betas = None
    alphas = {block.name: keras.ops.convert_to_numpy(block.weights_of_candidates()).round(6).tolist()
              for block in net.choice_blocks()}
    return Architecture(
        tasks=[t.name for t in tasks],
        interaction=net.interaction.derive() if net.interaction is not None else "skip",
        experts=experts, task_experts=task_experts, embedding_dim=embedding_dim, units=units,
        tower_units=list(tower_units), dropout=dropout, alphas=alphas, betas=betas,
        candidates={"interaction": list(interactions), "expert": list(expert_ops)})
