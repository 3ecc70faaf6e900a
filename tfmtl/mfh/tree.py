"""The node-and-edge structure of MFH's trees (flat, hierarchical, multi-faceted)."""

import itertools

KINDS = ("flat", "hmtl", "mfh")


class FacetTree:
    """Which switcher nodes exist and how they connect (MFH, Sec. 3-4).

    A node is coded by values of some facets: a tuple of `(facet, value)`
    pairs sorted by facet, the root `()`. Nodes of level `k < depth` hold a
    switcher whose branches feed their children; a node of level `k > 0`
    combines the branches of all its parents.

    - `"flat"`: the root branches straight to every task (the flat baselines).
    - `"hmtl"` (Eq. 4): one facet order; level `k` holds the codes of the
      first `k` facets of `order`, each node has one parent.
    - `"mfh"` (Eq. 5, Fig. 6-7, Sec. 4.2): level 0 is the root (the
      inter-facet switcher, one branch per facet); level 1 holds one node
      per facet (`((f, None),)`, the first-order intra-facet switcher, one
      branch per value of the facet); level `j + 1` holds every code of `j`
      facets' values (level 2: one node per partition, the second-order
      intra-facet switchers). A partition node's parent is its facet's node;
      a node of `j >= 2` values has `j` parents, the codes one value short
      that it contains (the paper's "contains the lower MLP's code as a
      subcode"; how such a node combines its parents is not stated: as a
      task does, by a sum). With `N` facets of `n_i` values: `N + prod(1 +
      n_i)` nodes, `N + sum_i n_i prod_{l != i}(1 + n_l)` edges.

    Towers attach at `expansion_level` (default: the number of facets, where
    a node is a task): task `t` reads every node of that level whose code `t`
    contains (one in `hmtl`, `C(N, level)` in `mfh`). Nodes contained in no
    kept task are left out.

    Args:
        sizes: list of int. Values per facet.
        kind: str. One of `KINDS`.
        task_codes: list of tuples, one value index per facet. Defaults to
            the whole product.
        order: list of facet indices (`"hmtl"`). Defaults to `0, 1, ...`.
        expansion_level: int in `[1, len(sizes)]`.

    Example:

    >>> tree = FacetTree([2, 3], "mfh")
    >>> [len(level) for level in tree.levels], tree.num_edges
    ([1, 2, 5, 6], 19)
    """

    def __init__(self, sizes, kind, task_codes=None, order=None, expansion_level=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: {kind!r}")
        self.sizes = [int(n) for n in sizes]
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"sizes must be positive. Received: {sizes}")
        n = len(self.sizes)
        full = list(itertools.product(*(range(s) for s in self.sizes)))
        self.task_codes = [tuple(c) for c in (full if task_codes is None else task_codes)]
        if not self.task_codes or any(len(c) != n for c in self.task_codes):
            raise ValueError(f"task_codes must be non-empty tuples of {n} value indices.")
        self.kind = kind
        self.order = list(range(n)) if order is None else [int(f) for f in order]
        if sorted(self.order) != list(range(n)):
            raise ValueError(f"order must be a permutation of {list(range(n))}. Received: {order}")
        level = n if expansion_level is None else int(expansion_level)
        if not 1 <= level <= n:
            raise ValueError(f"expansion_level must be in [1, {n}]. Received: {expansion_level}")
        self.expansion_level = level if kind != "flat" else 1
        tasks = [self.code_of(c) for c in self.task_codes]
        if kind == "flat":
            self.levels = [[()], tasks]
        elif kind == "hmtl":
            self.levels = [
                _unique(_sorted(tuple((f, c[f]) for f in self.order[:k])) for c in self.task_codes)
                for k in range(self.expansion_level + 1)
            ]
        else:  # root, the facet nodes, then the codes of 1, 2, ... facets' values
            codes = [sorted(_unique(sub for t in tasks for sub in itertools.combinations(t, k)))
                     for k in range(1, self.expansion_level + 1)]
            facets = sorted({f for code in codes[0] for f, _ in code})
            self.levels = [[()], [facet_node(f) for f in facets]] + codes
        self.parents = {(): []}
        for k in range(1, len(self.levels)):
            above = set(self.levels[k - 1])
            for node in self.levels[k]:
                if kind == "flat":
                    self.parents[node] = [()]
                elif kind == "hmtl":
                    self.parents[node] = [_sorted(node_in_order(node, self.order)[:-1])]
                elif is_facet_node(node):
                    self.parents[node] = [()]
                elif len(node) == 1:
                    self.parents[node] = [facet_node(node[0][0])]
                else:
                    self.parents[node] = [p for p in itertools.combinations(node, len(node) - 1)
                                          if p in above]
        self.children = {node: [] for level in self.levels for node in level}
        for level in self.levels[1:]:
            for node in level:
                for parent in self.parents[node]:
                    self.children[parent].append(node)
        leaves = self.levels[-1]
        self.task_leaves = {
            t: [leaf for leaf in leaves if set(leaf) <= set(self.code_of(t))]
            for t in self.task_codes
        }

    @staticmethod
    def code_of(values):
        """A task's node code from its value indices."""
        return tuple(enumerate(values))

    @property
    def depth(self):
        """Levels holding switchers (the leaves' level)."""
        return len(self.levels) - 1

    @property
    def num_nodes(self):
        return sum(len(level) for level in self.levels)

    @property
    def num_edges(self):
        return sum(len(self.parents[node]) for level in self.levels[1:] for node in level)


def facet_node(facet):
    """The code of facet `facet`'s node (MFH's first-order intra-facet switcher)."""
    return ((facet, None),)


def is_facet_node(node):
    return len(node) == 1 and node[0][1] is None


def node_in_order(node, order):
    rank = {f: i for i, f in enumerate(order)}
    return sorted(node, key=lambda pair: rank[pair[0]])


def _sorted(node):
    return tuple(sorted(node))


def _unique(nodes):
    seen, out = set(), []
    for node in nodes:
        node = _sorted(node)
        if node not in seen:
            seen.add(node)
            out.append(node)
    return out
