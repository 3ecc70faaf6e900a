"""MFH (Liu et al., CIKM 2022): switchers nested into flat, hierarchical and
multi-faceted trees over faceted tasks."""

from tfmtl.layers.mlp import MLP
from tfmtl.layers.switchers import switcher_for
from tfmtl.layers.task_head import TaskHead
from tfmtl.mfh import FacetedTasks, FacetTree, NodeCombiner, PartitionIndex, RoutedOutput
from tfmtl.mfh.tree import is_facet_node
from tfmtl.schema.names import internal_name
from zoo.blocks import encode, finish, key, raw_inputs
from zoo.registry import register

# The paper (Sec. 5.1.2): Shared-Bottom at level 0, PLE at level 1, CGC at level 2 (and
# below); sizes of its appendix A.4 (tuned MFH): a root of one 512 layer; PLE of 2 extraction
# levels, 2 experts per branch and 2 shared, one layer of 256 then of 128; CGC of 1 + 1
# experts of one 128 layer; zero-layer MLPs between levels.
DEFAULT_SWITCHERS = (
    {"type": "shared_bottom", "units": (512,)},
    {"type": "ple", "num_levels": 2, "num_specific_experts": 2, "num_shared_experts": 2,
     "expert_units": ((256,), (128,))},
    {"type": "cgc", "num_specific_experts": 1, "num_shared_experts": 1, "expert_units": (128,)},
)


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
    if is_facet_node(node):
        return internal_name(faceted.facet_names[node[0][0]])
    return internal_name("_".join(faceted.value_names(f)[v] for f, v in node))


def build_tree_model(name, kind, schema, tasks, embedding_dim, switchers, node_units, combine,
                     tower_units, order, expansion_level, dropout, loss_normalization):
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
        for node in tree.levels[level]:
            children = tree.children[node]
            label = _label(faceted, node)
            branches = switcher_for(spec, len(children), f"switch_{label}")(represent[node])
            for child, branch in zip(children, branches):
                incoming.setdefault(child, []).append(branch)
        units = _per_level(node_units, level + 1, nested=True)
        for child in tree.levels[level + 1]:
            parents = incoming[child]
            label = _label(faceted, child)
            h = NodeCombiner(len(parents), combine, name=f"node_{label}")((x, parents))
            if units and level + 1 < tree.depth:  # a node's MLP, before its switcher
                h = MLP(units, dropout=dropout, name=f"mlp_{label}")(h)
            represent[child] = h
    outputs = {}
    facet_tasks = {t.name: t for t in faceted.tasks}
    for code in faceted.codes:
        task = facet_tasks[faceted.task_name(code)]
        leaves = [represent[leaf] for leaf in tree.task_leaves[code]]
        h = leaves[0] if len(leaves) == 1 else NodeCombiner(
            len(leaves), combine, name=f"{key(task)}_combine")((x, leaves))
        values = [faceted.value_names(f)[v] for f, v in enumerate(code)]
        units = _tower_units(tower_units, task.name, values)
        if units:
            h = MLP(units, dropout=dropout, name=f"{key(task)}_tower")(h)
        outputs[key(task)] = TaskHead.for_task(task, name=key(task))(h)
    routed = faceted.routed_behaviours()
    if routed:
        index = PartitionIndex(faceted.facets, name="partition")(
            {f.column: inputs[f.column] for f in faceted.facets})
        for behaviour in routed:
            b = [b.name for b in faceted.behaviours].index(behaviour.name)
            names = [internal_name(faceted.task_name(c)) for c in faceted.codes if c[0] == b]
            outputs[key(behaviour)] = RoutedOutput(name=key(behaviour))(
                (index, [outputs[n] for n in names]))
    model = finish(name, inputs, outputs, schema, faceted.tasks,
                   facets=faceted if faceted.facets else None,
                   loss_normalization=loss_normalization)
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
            level `k + 1`): a name in `tfmtl.layers.SWITCHERS` or `{"type": name, **kwargs}`,
            one per level (deeper levels reuse the last), or one for all.
            Defaults to the paper's (Sec. 5.1.2, sizes of its appendix A.4):
            Shared-Bottom (512), PLE (2 levels, 2 + 2 experts of 256 then
            128), CGC (1 + 1 experts of 128).
        node_units: the MLP of each node between two switchers (`MLP_{code}`
            of Eq. 4-5, after the node combines its parents): one list of
            widths for all levels or one per level. Defaults to `()`: zero
            layers, the paper's tuned setting.
        combine: how a node (or a task reading several nodes) combines its
            inputs: `"sum"` (default), `"concat"` or `"gate"`.
        tower_units: list of int, or a dict from a task name, behaviour or
            facet value (checked in that order) or `"default"` to widths:
            heterogeneous towers, e.g. `{"new": (16,), "default": (64,)}`.
            `()` puts the head straight on the node. Defaults to `(64, 32)`,
            the paper's MovieLens setting.
        dropout: float. In node MLPs and towers. Defaults to `0.0`.
        loss_normalization: `"per_sample"` (default, the authors' code: the
            sum of every task's weighted row losses over the number of (row,
            task) pairs that count in the batch, so a task weighs as many
            rows as it trains on) or `"per_task"` (each task's loss the mean
            over its own rows: a small group's rows weigh more).
        selection: a MultiSFS selection: the tree's root reads the union of the
            tasks' fields (every node below is shared by several tasks).
"""


@register("mfh", facets=True, sharing="union")
@_with_args("""        expansion_level: int. Level the towers read. Defaults to all facets.
""")
def mfh(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS, node_units=(),
        combine="sum", tower_units=(64, 32), expansion_level=None, dropout=0.0,
        loss_normalization="per_sample", selection=None):
    """Multi-Faceted Hierarchical MTL (Eq. 5, Fig. 6-7), for any number of facets.

    Level 0: the root switcher, one branch per facet (inter-facet); level 1:
    one switcher per facet, one branch per value (first-order intra-facet);
    level 2: one switcher per partition (`like`, `new`), one branch per task
    containing it (second-order intra-facet); with more facets, level
    `j + 1` holds every code of `j` facets' values. A node sums the branches
    of the nodes one level up whose code it contains; towers attach at
    `expansion_level` (default: the number of facets, one node per task) and
    a task sums every node of that level its code contains (`like_new` =
    branch of `like` + branch of `new`). Every behaviour whose tasks cover
    all partitions also gets a routed output (its name): the score of each
    row's own partition. See `tfmtl.mfh.FacetTree` for the counts.
    """
    return build_tree_model("mfh", "mfh", schema, tasks, embedding_dim, switchers, node_units,
                            combine, tower_units, None, expansion_level, dropout,
                            loss_normalization)


@register("hmtl", facets=True, sharing="union")
@_with_args("""        order: list of facet names, the behaviour facet `"behaviour"`
            included. Defaults to behaviour first, then the facets in order.
""")
def hmtl(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS, node_units=(),
         combine="sum", tower_units=(64, 32), order=None, dropout=0.0,
         loss_normalization="per_sample", selection=None):
    """Hierarchical MTL (Eq. 4): one switcher tree for one facet order.

    The root branches by the first facet of `order`, each of its nodes by
    the second, and so on; towers sit on the last level's nodes (one per
    task). Routed outputs as in `mfh`.
    """
    return build_tree_model("hmtl", "hmtl", schema, tasks, embedding_dim, switchers, node_units,
                            combine, tower_units, order, None, dropout, loss_normalization)


@register("flat", facets=True, sharing="union")
@_with_args()
def flat(schema, tasks, embedding_dim=16, switchers=DEFAULT_SWITCHERS[1:], node_units=(),
         combine="sum", tower_units=(64, 32), dropout=0.0, loss_normalization="per_sample",
         selection=None):
    """The flat baselines: one switcher branching to every task.

    With a list of `Task` this is the plain multi-task model (`switchers=
    "mmoe"` is MMoE); with `FacetedTasks` every behaviour x partition task
    gets a branch (the paper's flat 6-task model). Routed outputs as in
    `mfh`. The default switcher is PLE.
    """
    return build_tree_model("flat", "flat", schema, tasks, embedding_dim, switchers, node_units,
                            combine, tower_units, None, None, dropout, loss_normalization)
