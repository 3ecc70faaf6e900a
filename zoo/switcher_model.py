"""The one builder of the switcher models, and the presets registered with it.

Stages: raw inputs -> lookups -> embeddings -> view (one tensor, or one per
task plus the shared one) -> switcher -> towers -> heads.
"""

from tfmtl.layers.switchers import switcher_for
from zoo.blocks import finish, raw_inputs, tower_heads, view
from zoo.presets import ARGUMENTS, PRESETS
from zoo.registry import register

COMMON = ("embedding_dim", "tower_units", "tower_dropout", "embedding_l2")
# A MultiSFS selection's shared field set per switcher (Sec. 3.4): a switcher with
# task-specific experts shares the fields every task selected, one without shares them all.
SHARING = {"shared_bottom": "union", "omoe": "union", "mmoe": "union", "cgc": "intersection",
           "ple": "intersection", "stem": "intersection"}
VIEW_ARGUMENTS = ("specific_fields",)


def switcher_model(name, schema, tasks, switcher, view_kind="shared", embedding_dim=16,
                   tower_units=(64,), tower_dropout=0.0, specific_fields="all", selection=None,
                   sharing="union", embedding_l2=0.0, **switcher_options):
    """A model of one switcher between a view of the embeddings and the towers.

    Args:
        name: str. The model's name.
        schema, tasks: the model's `Schema` and list of `Task`.
        switcher: str. A name in `tfmtl.layers.SWITCHERS`.
        view_kind: `"shared"` or `"task_embeddings"` (see `zoo.blocks.view`).
        embedding_dim, tower_units, tower_dropout, specific_fields,
            embedding_l2: see `zoo.presets.ARGUMENTS`.
        selection: a `tfmtl.selection.Selection` or `None`.
        sharing: how the selection's shared set is made for this switcher
            (see `zoo.registry.register`).
        **switcher_options: the switcher's own arguments.
    """
    inputs = raw_inputs(schema)
    x = view(view_kind, schema, inputs, embedding_dim, len(tasks), specific_fields,
             selection=selection, tasks=tasks, sharing=sharing, embedding_l2=embedding_l2)
    branches = switcher_for({"type": switcher, **switcher_options}, len(tasks), name=name)(x)
    outputs = tower_heads(tasks, branches[:len(tasks)], tower_units, dropout=tower_dropout)
    return finish(name, inputs, outputs, schema, tasks)


def _register(preset):
    def build(schema, tasks, selection=None, **hparams):
        return switcher_model(preset.name, schema, tasks, preset.switcher, preset.view,
                              selection=selection, sharing=SHARING[preset.switcher],
                              **{**preset.defaults, **hparams})

    build.__name__ = preset.name
    build.__doc__ = _docstring(preset)
    build.hparams = dict(preset.defaults)
    build.sizes = dict(preset.sizes)
    register(preset.name, sharing=SHARING[preset.switcher])(build)


def _docstring(preset):
    lines = [f"{preset.summary} ({preset.reference})", "",
             f"Switcher `{preset.switcher}` on the `{preset.view}` view; see "
             "`zoo/switcher_model.py`.", "", "Args:"]
    for argument, default in preset.defaults.items():
        lines.append(f"    {argument}: {ARGUMENTS[argument]} Defaults to `{default!r}`.")
    return "\n".join(lines)


for _preset in PRESETS.values():
    _register(_preset)
