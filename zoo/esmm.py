import keras

from tfmtl.layers.mlp import MLP
from tfmtl.layers.task_head import TaskHead
from tfmtl.schema.task import Task
from zoo.blocks import finish, key, raw_inputs, task_inputs
from zoo.registry import register


@register("esmm", sharing="none")
def esmm(schema, tasks, embedding_dim=18, tower_units=(360, 200, 80), dropout=0.0, ctcvr="ctcvr",
         selection=None):
    """Entire Space Multi-task Model (Ma et al., SIGIR 2018).

    Takes two binary tasks, CTR then CVR. Both towers read the shared
    embeddings; the outputs are `pCTR`, `pCVR` and `pCTCVR = pCTR * pCVR`,
    all named. The loss is `L(ctr) + L(ctcvr)` over every impression
    (Eq. 3): CVR is trained only through CTCVR, over the entire space, so
    it has no loss of its own. Its metrics count clicked rows (the CVR
    task's mask, or the CTR label when the task has none). The CTCVR label
    is the product of the CTR and CVR labels and its loss weight is the
    CVR task's.

    Args:
        embedding_dim: int. Defaults to `18`, the paper's.
        tower_units: list of int. Each tower. Defaults to `(360, 200, 80)`,
            the paper's.
        dropout: float. Dropout in the towers.
        ctcvr: str. Name of the CTCVR output. Defaults to `"ctcvr"`.
        selection: a MultiSFS selection: each tower reads its task's fields.
    """
    if len(tasks) != 2 or any(t.kind != "binary" for t in tasks):
        raise ValueError(
            "ESMM takes two binary tasks, CTR then CVR. Received: "
            f"{[(t.name, t.kind) for t in tasks]}"
        )
    ctr, cvr = tasks
    mask = cvr.mask or (ctr.label if isinstance(ctr.label, str) else None)
    trained = [
        ctr,
        Task(cvr.name, "binary", label=cvr.label, loss_weight=0.0, mask=mask),
        Task(ctcvr, "binary", label=ctr.label_columns + cvr.label_columns,
             loss_weight=cvr.loss_weight),
    ]
    inputs = raw_inputs(schema)
    x_ctr, x_cvr = task_inputs(schema, inputs, embedding_dim, (ctr, cvr), selection)
    p_ctr, p_cvr = (
        TaskHead("binary", name=key(t))(MLP(tower_units, dropout=dropout, name=f"{key(t)}_tower")(x))
        for t, x in ((ctr, x_ctr), (cvr, x_cvr))
    )
    p_ctcvr = keras.layers.Multiply(name=key(trained[2]), dtype=p_ctr.dtype)([p_ctr, p_cvr])
    outputs = {key(ctr): p_ctr, key(cvr): p_cvr, key(trained[2]): p_ctcvr}
    return finish("esmm", inputs, outputs, schema, trained)
