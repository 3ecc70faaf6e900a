"""The model registry: `build`, `list_models` and the `register` decorator."""

import inspect

from tfmtl.schema.facets import FacetedTasks
from tfmtl.schema.schema import Schema
from tfmtl.schema.task import Task

_MODELS = {}


def register(name, facets=False):
    """Registers a model builder `fn(schema, tasks, **hparams)` under `name`.

    `facets=True`: the builder also takes a `FacetedTasks` as `tasks`.
    """

    def decorator(fn):
        if name in _MODELS:
            raise ValueError(f"A model named {name!r} is already registered.")
        fn.takes_facets = facets
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
    signature = inspect.signature(builder(name))
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def build(name, schema, tasks, **hparams_):
    """Builds the zoo model `name` for `schema` and `tasks`.

    Args:
        name: str. A name from `zoo.list()`.
        schema: `tfmtl.Schema`.
        tasks: list of `tfmtl.Task`, or a `tfmtl.schema.FacetedTasks` for
            the models that take facets (`flat`, `hmtl`, `mfh`).
        **hparams_: the model's keyword hyperparameters (`zoo.hparams(name)`).

    Returns:
        A `tfmtl.MultiTaskModel` with one input per feature and one output
        per task.
    """
    fn = builder(name)
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a tfmtl.Schema. Received: {type(schema).__name__}")
    faceted = tasks if isinstance(tasks, FacetedTasks) else None
    if faceted is not None and not fn.takes_facets:
        takes = [n for n in list_models() if _MODELS[n].takes_facets]
        raise TypeError(f"Model {name!r} takes a list of Task; FacetedTasks go to {takes}.")
    tasks = faceted.tasks if faceted is not None else list(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise TypeError(f"tasks must be a non-empty list of tfmtl.Task. Received: {tasks!r}")
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"Repeated task names: {repeated}")
    clash = sorted(set(names) & set(schema.names))
    if clash:
        raise ValueError(f"Task names {clash} are also feature names; rename one of them.")
    known = hparams(name)
    unknown = sorted(set(hparams_) - set(known))
    if unknown:
        raise ValueError(
            f"Model {name!r} has no hyperparameters {unknown}. "
            f"Its hyperparameters: {', '.join(sorted(known))}"
        )
    return fn(schema, faceted if faceted is not None else tasks, **hparams_)
