import keras

from tfmtl.layers.decomposition_pairs import DecompositionPairs
from tfmtl.layers.task_head import TaskHead
from tfmtl.schema.task import Task
from zoo.blocks import encode, finish, key, raw_inputs
from zoo.registry import register


@register("fdn", sharing="union")
def fdn(
    schema,
    tasks,
    embedding_dim=32,
    num_pairs=2,
    expert_units=(128, 64),
    orthogonal_weight=1.0,
    orthogonal_form="dsn",
    auxiliary_weight=1.0,
    shared_fusion=True,
    dropout=0.0,
    selection=None,
):
    """Feature Decomposition Network (Zhou, Yu, Luo, Zhang, AAAI 2023).

    Each task has `num_pairs` DeComposition Pairs (a task-specific and a
    task-shared expert on the embeddings). Task `t`'s prediction layer reads
    the concatenation of its task-specific experts and the task-shared
    experts of *all* pairs (task-shared fusion), with no tower. The loss is
    `L_task + L_orth + L_aux`: `L_orth` is added by the pairs, and each
    task-specific expert has an auxiliary head (output `<task>_aux_<m>`,
    training-only, not served) trained with its task's loss and labels.

    Args:
        embedding_dim: int. Defaults to `32`, the paper's synthetic setting.
        num_pairs: int. DCPs per task. Defaults to `2`, the paper's Ali-CCP setting.
        expert_units: list of int. Defaults to `(128, 64)`, the paper's.
        orthogonal_weight: float. `0` removes the orthogonality constraint.
        orthogonal_form: `"dsn"` (default) or `"paper"`: how `L_orth`
            measures each pair's overlap (`tfmtl.layers.DecompositionPairs`):
            Eq. 2 as written (`"paper"`, grows with the batch and the
            activations, and with ReLU experts falls mainly by shrinking
            them) or domain separation networks' difference loss, which FDN
            takes (`"dsn"`: centred, unit rows, mean of the squared entries).
            The default is chosen by `bench/fdn.py`'s converged runs (see
            the README).
        auxiliary_weight: float. `0` removes the auxiliary heads.
        shared_fusion: bool. `False`: task `t` reads only its own pairs'
            task-shared experts (the ablation without task-shared fusion).
        dropout: float. Dropout in the experts.
        selection: a MultiSFS selection: every pair reads the union of the
            tasks' fields (the pairs of a task and the shared ones read one input).
    """
    inputs = raw_inputs(schema)
    x = encode(schema, inputs, embedding_dim)
    specific, shared = DecompositionPairs(
        len(tasks), num_pairs, expert_units, orthogonal_weight, form=orthogonal_form,
        dropout=dropout, name="pairs",
    )(x)
    width = expert_units[-1]
    flat_shared = keras.layers.Reshape((len(tasks) * num_pairs * width,))(shared)
    outputs, trained = {}, list(tasks)
    for t, task in enumerate(tasks):
        own = keras.layers.Reshape((num_pairs * width,))(specific[:, t * num_pairs:(t + 1) * num_pairs])
        if shared_fusion:
            fused = flat_shared
        else:
            fused = keras.layers.Reshape((num_pairs * width,))(
                shared[:, t * num_pairs:(t + 1) * num_pairs])
        features = keras.layers.Concatenate(name=f"{key(task)}_features")([own, fused])
        outputs[key(task)] = TaskHead.for_task(task, name=key(task))(features)
        if auxiliary_weight:
            for m in range(num_pairs):
                auxiliary = Task(f"{task.name}_aux_{m}", task.kind, label=task.label,
                                 mask=task.mask, loss_weight=auxiliary_weight * task.loss_weight,
                                 auxiliary=True)
                outputs[key(auxiliary)] = TaskHead.for_task(task, name=key(auxiliary))(
                    specific[:, t * num_pairs + m])
                trained.append(auxiliary)
    return finish("fdn", inputs, outputs, schema, trained)
