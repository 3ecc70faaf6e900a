"""The model registry: `build`, `list_models` and the `register` decorator."""

import inspect

from tfmtl.mfh.facets import FacetedTasks
from tfmtl.precision import warn_if_bfloat16_emulated
from tfmtl.schema.names import internal_names
from tfmtl.schema.schema import Schema
from tfmtl.schema.task import Task

_MODELS = {}


SHARING = ("union", "intersection", "none")


def register(name, facets=False, sizes=None, sharing="union"):
    """Registers a model builder `fn(schema, tasks, selection=None, **hparams)` under `name`.

    `facets=True`: the builder also takes a `FacetedTasks` as `tasks`.
    `sizes`: named hyperparameter sets the benchmarks use (`preset`).
    `sharing`: how a MultiSFS selection's shared field set is made for the
    model (Sec. 3.4): `"union"` (every part reads every selected field:
    MMoE), `"intersection"` (task-specific parts read their task's fields,
    shared parts the fields every task selected: PLE), `"none"` (no shared
    bottom: ESMM, AITM).
    """
    if sharing not in SHARING:
        raise ValueError(f"sharing must be one of {SHARING}. Received: {sharing!r}")

    def decorator(fn):
        if name in _MODELS:
            raise ValueError(f"A model named {name!r} is already registered.")
        fn.takes_facets = facets
        fn.sharing = sharing
        if sizes is not None:
            fn.sizes = dict(sizes)
        _MODELS[name] = fn
        return fn

    return decorator


def list_models():
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def builder(name):
    """The builder function registered under `name`."""
    if name not in _MODELS:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}")
    return _MODELS[name]


def hparams(name):
    """A dict of the model's hyperparameters and their defaults."""
    fn = builder(name)
    if hasattr(fn, "hparams"):  # a preset (zoo/presets.py)
        return dict(fn.hparams)
    signature = inspect.signature(fn)
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.default is not inspect.Parameter.empty and p.name != "selection"
    }


def sharing(name):
    """How model `name` makes a selection's shared field set: see `register`."""
    return builder(name).sharing


def preset(name, size=None):
    """The hyperparameters of model `name` at a named size of `zoo/presets.py`.

    `size=None` gives the defaults. The benchmarks take their model sizes
    from here (`zoo.build(name, schema, tasks, **zoo.preset(name, "peers"))`).
    """
    defaults = hparams(name)
    if size is None:
        return defaults
    sizes = getattr(builder(name), "sizes", {})
    if size not in sizes:
        raise ValueError(f"Model {name!r} has no size {size!r}; its sizes: {sorted(sizes)}")
    return {**defaults, **sizes[size]}


def switcher_spec(name, size=None):
    """The switcher of preset `name` at `size`, as a spec for `switcher_for` (MFH trees).

    Example:

    >>> switcher_spec("mmoe", "mfh_level_2")["num_experts"]
    2
    """
    from zoo.presets import PRESETS

    if name not in PRESETS:
        raise ValueError(f"No switcher preset {name!r}; presets: {sorted(PRESETS)}")
    model_only = {"embedding_dim", "tower_units", "tower_dropout", "specific_fields", "embedding_l2"}
    options = {k: v for k, v in preset(name, size).items() if k not in model_only}
    return {"type": PRESETS[name].switcher, **options}


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def build(name, schema, tasks, selection=None, field_mask=False, dtype=None, **hparams_):
    """Builds the zoo model `name` for `schema` and `tasks`.

    Args:
        name: str. A name from `zoo.list()`.
        schema: `tfmtl.Schema`.
        tasks: list of `tfmtl.Task`, or a `tfmtl.mfh.FacetedTasks` for
            the models that take facets (`flat`, `hmtl`, `mfh`).
        selection: a `tfmtl.selection.Selection` (MultiSFS or a baseline
            selector): the model keeps only the selected fields (a dropped
            field has no input and no embedding table), each task-specific
            part reads its task's fields and shared parts the shared set
            made by the model's rule (`sharing(name)`).
        field_mask: bool. Builds the model with MultiSFS's task-by-field
            mask (`tfmtl.selection.FieldMask`, layer `field_mask`) on every
            embedding and number, for `tfmtl.selection.field_saliency`.
        dtype: `None` (Keras' global dtype policy, float32 unless set) or
            a policy name of `zoo.PRECISIONS`: `"mixed_bfloat16"` or
            `"mixed_float16"` compute the embeddings, experts and towers in
            16 bits and keep the weights, heads, outputs, losses and metrics
            in float32 (`compile()` adds loss scaling for float16). The
            layers keep their policy in `.keras` files and the SavedModel.
        **hparams_: the model's keyword hyperparameters (`zoo.hparams(name)`).

    Returns:
        A `tfmtl.MultiTaskModel` with one input per feature and one output
        per task.
    """
    fn = builder(name)
    if not isinstance(schema, Schema):
        hint = (" (tfmtl.infer_schema returns (schema, tasks): unpack it)"
                if isinstance(schema, tuple) else "")
        raise TypeError(f"schema must be a tfmtl.Schema. Received: {type(schema).__name__}"
                        f"{hint}")
    faceted = tasks if isinstance(tasks, FacetedTasks) else None
    if faceted is not None and not fn.takes_facets:
        takes = [n for n in list_models() if _MODELS[n].takes_facets]
        raise TypeError(f"Model {name!r} takes a list of Task; FacetedTasks go to {takes}.")
    tasks = faceted.tasks if faceted is not None else list(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        hint = (f" (one tfmtl.Task per label: Task({tasks[0]!r}), ...)"
                if tasks and all(isinstance(t, str) for t in tasks) else "")
        raise TypeError(f"tasks must be a non-empty list of tfmtl.Task. Received: {tasks!r}"
                        f"{hint}")
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"Repeated task names: {repeated}")
    clash = sorted(set(names) & set(schema.names))
    if clash:
        raise ValueError(f"Task names {clash} are also feature names; rename one of them.")
    internal_names(list(schema.names) + names, "Feature and task names")
    known = hparams(name)
    unknown = sorted(set(hparams_) - set(known))
    if unknown:
        raise ValueError(
            f"Model {name!r} has no hyperparameters {unknown}. "
            f"Its hyperparameters: {', '.join(sorted(known))}"
        )
    if dtype is not None and dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {PRECISIONS} (weights stay float32 under the "
                         f"mixed policies). Received: dtype={dtype!r}")
    if selection is not None:
        schema = _selected_schema(selection, schema, tasks, faceted)
        hparams_["selection"] = selection
    given = faceted if faceted is not None else tasks
    if dtype is None:
        return _build(fn, schema, given, tasks, field_mask, hparams_)
    warn_if_bfloat16_emulated(dtype)
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        return _build(fn, schema, given, tasks, field_mask, hparams_)
    finally:
        keras.config.set_dtype_policy(before)


def _build(fn, schema, given, tasks, field_mask, hparams_):
    if not field_mask:
        return fn(schema, given, **hparams_)
    from tfmtl.selection.field_mask import FieldMask
    from zoo.blocks import field_mask_scope

    rows = [t.name for t in tasks if t.loss_weight > 0 and not t.auxiliary]
    with field_mask_scope(FieldMask(list(schema.names), rows, name="field_mask")):
        return fn(schema, given, **hparams_)


def _selected_schema(selection, schema, tasks, faceted):
    """The schema of the selected fields (and the facet columns the model routes by)."""
    rows = [t.name for t in tasks if t.loss_weight > 0 and not t.auxiliary]
    if sorted(selection.tasks) != sorted(rows):
        raise ValueError(f"The selection is for tasks {selection.tasks}; this model trains "
                         f"{rows}.")
    unknown = sorted(set(selection.used_fields) - set(schema.names))
    if unknown:
        raise ValueError(f"The selection keeps fields {unknown} that are not in the schema.")
    keep = set(selection.used_fields)
    if faceted is not None:
        keep |= {f.column for f in faceted.facets}
    return schema.select([n for n in schema.names if n in keep])
