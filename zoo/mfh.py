"""MFH (Liu et al., CIKM 2022): switchers nested into flat, hierarchical and
multi-faceted trees over faceted tasks."""

from tfmtl.layers.facet_routing import NodeCombiner, PartitionIndex, RoutedOutput
from tfmtl.layers.mlp import MLP
from tfmtl.layers.switchers import CGC, MMoE, OMoE, PLE, SharedBottom
from tfmtl.layers.task_head import TaskHead
from tfmtl.models.facet_tree import FacetTree
from tfmtl.schema.facets import FacetedTasks
from zoo.blocks import encode, finish, raw_inputs
from zoo.registry import register

SWITCHERS = {
    "shared_bottom": SharedBottom,
    "omoe": OMoE,
    "mmoe": MMoE,
    "cgc": CGC,
    "ple": PLE,
}
# The paper's appendix: level 0 Shared-Bottom, level 1 PLE, level 2 CGC. Widths shrink down
# the tree (library choice: the appendix's widths were not at hand).
DEFAULT_SWITCHERS = (
    {"type": "shared_bottom", "units": (256, 128)},
    {"type": "ple", "num_levels": 2, "expert_units": (128,)},
    {"type": "cgc", "expert_units": (64,)},
)


def switcher_for(spec, num_branches, name):
    """A switcher from a spec: a name from `SWITCHERS` or `{"type": name, **kwargs}`."""
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.pop("type", None)
    if kind not in SWITCHERS:
        raise ValueError(f"Unknown switcher {kind!r}; choose from {sorted(SWITCHERS)}.")
    return SWITCHERS[kind](num_branches, name=name, **spec)


def _per_level(value, level, nested=False):
    """`value[level]` (the last one below), or `value` itself when not a list per level."""
    if nested and (not value or not isinstance(value[0], (list, tuple))):
        return value
    if not nested and (isinstance(value, (str, dict))):
        return value
    return value[min(level, len(value) - 1)]


def _tower_units(tower_units, task_name, values):
    if not isinstance(tower_units, dict):
        return tower_units
    for key in [task_name] + values + ["default"]:
        if key in tower_units:
            return tower_units[key]
    return (64,)


def _label(faceted, node):
    if not node:
        return "root"
    return "_".join(faceted.value_names(f)[v] for f, v in node)


def build_tree_model(name, kind, schema, tasks, embedding_dim, switchers, branch_units, combine,
                     tower_units, order, expansion_level, dropout):
    faceted = tasks if isinstance(tasks, FacetedTasks) else FacetedTasks(tasks, [])
    missing = [f.column for f in faceted.facets if f.column not in schema.names]
    if missing:
        raise ValueError(f"Facet columns {missing} must be features of the schema: the model "
                         "routes each row by them.")
    if order is not None:
        names = faceted.facet_names
        unknown = [f for f in order if f not in names]
        if unknown or sorted(order) != sorted(names):
            raise ValueError(f"order must list every facet once: {names}. Received: {order}")
        order = [names.index(f) for f in order]
    tree = FacetTree(faceted.sizes, kind, task_codes=faceted.codes, order=order,
                     expansion_level=expansion_level)
    inputs = raw_inputs(schema)
    x = encode(schema, inputs, embedding_dim)
    represent = {(): x}
    for level in range(tree.depth):
        incoming = {}
        spec = _per_level(switchers, level)
        units = _per_level(branch_units, level, nested=True)
        for node in tree.levels[level]:
            children = tree.children[node]
            label = _label(faceted, node)
            branches = switcher_for(spec, len(children), f"switch_{label}")(represent[node])
            for child, branch in zip(children, branches):
                if units:
                    branch = MLP(units, dropout=dropout,
                                 name=f"branch_{label}_to_{_label(faceted, child)}")(branch)
                incoming.setdefault(child, []).append(branch)
        for child in tree.levels[level + 1]:
            parents = incoming[child]
            represent[child] = NodeCombiner(len(parents), combine,
                                            name=f"node_{_label(faceted, child)}")((x, parents))
    outputs = {}
    facet_tasks = {t.name: t for t in faceted.tasks}
    for code in faceted.codes:
        task = facet_tasks[faceted.task_name(code)]
        leaves = [represent[leaf] for leaf in tree.task_leaves[code]]
        h = leaves[0] if len(leaves) == 1 else NodeCombiner(
            len(leaves), combine, name=f"{task.name}_combine")((x, leaves))
        values = [faceted.value_names(f)[v] for f, v in enumerate(code)]
        units = _tower_units(tower_units, task.name, values)
        if units:
            h = MLP(units, dropout=dropout, name=f"{task.name}_tower")(h)
        outputs[task.name] = TaskHead(task.kind, name=task.name)(h)
    routed = faceted.routed_behaviours()
    if routed:
        index = PartitionIndex(faceted.facets, name="partition")(
            {f.column: inputs[f.column] for f in faceted.facets})
        for behaviour in routed:
            b = [b.name for b in faceted.behaviours].index(behaviour.name)
            names = [faceted.task_name(c) for c in faceted.codes if c[0] == b]
            outputs[behaviour.name] = RoutedOutput(name=behaviour.name)(
                (index, [outputs[n] for n in names]))
    model = finish(name, inputs, outputs, schema, faceted.tasks)
    model.facet_tree = tree
    return model


def _with_args(extra=""):
    """Appends the tree models' shared `Args` section (and `extra`) to a docstring."""

    def decorator(fn):
        fn.__doc__ = fn.__doc__.rstrip() + "\n" + _DOC_ARGS + extra
        return fn

    return decorator


_DOC_ARGS = """
    Args:
        tasks: a `FacetedTasks` (behaviours x facets), or a list of `Task`
            (one facet: the tasks themselves).
        embedding_dim: int. Defaults to `16`.
        switchers: the switcher of each level (level `k`'s nodes branch to
            level `k + 1`): a name in `SWITCHERS` or `{"type": name, **kwargs}`,
            one per level (deeper levels reuse the last), or one for all.
            Defaults to the paper's: Shared-Bottom, PLE, CGC.
        branch_units: an MLP after each branch of a switcher: one list of
            widths for all levels or one per level. Defaults to `()` (none).
        combine: how a node (or a task reading several nodes) combines its
            inputs: `"sum"` (default), `"concat"` or `"gate"`.
        tower_units: list of int, or a dict from a task name, behaviour or
            facet value (checked in that order) or `"default"` to widths:
            heterogeneous towers, e.g. `{"new": (16,), "default": (64,)}`.
            `()` puts the head straight on the node. Defaults to `(64,)`.
        dropout: float. In branch MLPs and towers. Defaults to `0.0`.
"""


@register("mfh", facets=True)
@_with_args("""        expansion_level: int. Level the towers read. Defaults to all facets.
""")
def mfh(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS, branch_units=(),
        combine="sum", tower_units=(64,), expansion_level=None, dropout=0.0):
    """Multi-Faceted Hierarchical MTL (Eq. 5, Fig. 6-7), for any number of facets.

    Level `k` holds a node for every code of `k` facets' values (e.g.
    `like`, `new`, then `like_new`); a node receives a branch from each node
    one level up whose code it contains and combines them; towers attach at
    `expansion_level` (default: the number of facets, one node per task) and
    a task reads every node of that level its code contains. Every behaviour
    whose tasks cover all partitions also gets a routed output (its name):
    the score of each row's own partition.
    """
    return build_tree_model("mfh", "mfh", schema, tasks, embedding_dim, switchers, branch_units,
                            combine, tower_units, None, expansion_level, dropout)


@register("hmtl", facets=True)
@_with_args("""        order: list of facet names, the behaviour facet `"behaviour"`
            included. Defaults to behaviour first, then the facets in order.
""")
def hmtl(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS, branch_units=(),
         combine="sum", tower_units=(64,), order=None, dropout=0.0):
    """Hierarchical MTL (Eq. 4): one switcher tree for one facet order.

    The root branches by the first facet of `order`, each of its nodes by
    the second, and so on; towers sit on the last level's nodes (one per
    task). Routed outputs as in `mfh`.
    """
    return build_tree_model("hmtl", "hmtl", schema, tasks, embedding_dim, switchers, branch_units,
                            combine, tower_units, order, None, dropout)


@register("flat", facets=True)
@_with_args()
def flat(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS[1:], branch_units=(),
         combine="sum", tower_units=(64,), dropout=0.0):
    """The flat baselines: one switcher branching to every task.

    With a list of `Task` this is the plain multi-task model (`switchers=
    "mmoe"` is MMoE); with `FacetedTasks` every behaviour x partition task
    gets a branch (the paper's flat 6-task model). Routed outputs as in
    `mfh`. The default switcher is PLE.
    """
    return build_tree_model("flat", "flat", schema, tasks, embedding_dim, switchers, branch_units,
                            combine, tower_units, None, None, dropout)
