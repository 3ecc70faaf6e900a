"""A derived AutoMTL architecture: plain data, JSON in and out, and its drawing."""

import dataclasses

from tfmtl.serialization import JsonRecord


@dataclasses.dataclass
class Architecture(JsonRecord):
    """What an AutoMTL search chose (Sec. 3.4.3), to build and train from scratch.

    `zoo.build("automtl", schema, tasks, architecture=architecture)` builds
    it: embeddings -> `interaction` -> the `SearchedExperts` switcher
    (projection to `units`, the experts' chains of operations, one softmax
    gate per task over its `task_experts`) -> towers -> heads;
    `switcher_spec()` gives the switcher alone, for any level of the MFH
    trees.

    Args:
        tasks: list of str. The tasks, in order.
        interaction: str. The interaction operation (`tfmtl.search.ops`).
        experts: list of lists of str. Each expert's operations.
        task_experts: dict of task to the indices of its selected experts.
        embedding_dim, units: int. Widths of the embeddings and the experts.
        tower_units: list of int.
        dropout: float.
        alphas: dict of block name to `softmax(alpha)` over its candidates.
        betas: dict of task to `softmax(beta)` over the experts.
        candidates: dict: `{"interaction": [...], "expert": [...]}`.
        info: dict. Settings, timings, memory.
    """

    tasks: list
    interaction: str
    experts: list
    task_experts: dict
    embedding_dim: int = 16
    units: int = 64
    tower_units: list = (128, 64)
    dropout: float = 0.1
    alphas: dict = None
    betas: dict = None
    candidates: dict = None
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.tower_units = [int(u) for u in self.tower_units]
        missing = sorted(set(self.tasks) - set(self.task_experts))
        if missing:
            raise ValueError(f"No experts selected for tasks {missing}.")
        for task, chosen in self.task_experts.items():
            if not chosen or any(not 0 <= int(i) < len(self.experts) for i in chosen):
                raise ValueError(f"Task {task!r}: expert indices must be in 0..{len(self.experts) - 1}."
                                 f" Received: {chosen}")

    def switcher_spec(self, tasks=None):
        """The derived experts and gates as a switcher spec (`tfmtl.layers.switcher_for`).

        `tasks`: the branches, in order (default: the searched tasks).
        """
        tasks = self.tasks if tasks is None else list(tasks)
        unknown = sorted(set(tasks) - set(self.task_experts))
        if unknown:
            raise ValueError(f"The architecture has no experts for {unknown}; it was searched "
                             f"for {self.tasks}.")
        return {"type": "automtl", "experts": self.experts,
                "branch_experts": [list(self.task_experts[t]) for t in tasks],
                "units": self.units, "dropout": self.dropout}

    def summary(self):
        lines = [f"interaction: {self.interaction}"]
        used = sorted({i for chosen in self.task_experts.values() for i in chosen})
        for i, ops in enumerate(self.experts):
            mark = "" if i in used else "  (selected by no task: not built)"
            lines.append(f"expert {i}: {' -> '.join(ops)}{mark}")
        for task in self.tasks:
            lines.append(f"task {task}: experts {list(self.task_experts[task])}")
        return "\n".join(lines)

    def draw(self, path):
        """A picture of the derived architecture (as the paper's Fig. 6), saved to `path`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        used = sorted({i for chosen in self.task_experts.values() for i in chosen})
        depth = max(len(e) for e in self.experts)
        width = max(len(used), len(self.tasks), 1)
        figure, axis = plt.subplots(figsize=(1.9 * width + 1, 1.1 * depth + 4.2))
        axis.set_xlim(-0.7, width - 0.3)
        axis.set_ylim(-1.8, depth + 2.6)
        axis.axis("off")
        colours = {"gating": "#f6c85f", "conv": "#6f4e7c", "mlp": "#9dd866", "skip": "#dddddd"}

        def box(x, y, text, colour="#ffffff", dark=False):
            axis.add_patch(plt.Rectangle((x - 0.42, y - 0.3), 0.84, 0.6, facecolor=colour,
                                         edgecolor="black", lw=0.8))
            axis.text(x, y, text, ha="center", va="center", fontsize=8,
                      color="white" if dark else "black")

        middle = (width - 1) / 2
        box(middle, depth + 2, f"interaction: {self.interaction}", "#8dd3c7")
        axis.text(middle, -1.65, "embeddings -> interaction -> projection -> experts -> task gates",
                  ha="center", fontsize=7, color="gray")
        for column, i in enumerate(used):
            axis.annotate("", (column, depth + 0.3), (middle, depth + 1.7),
                          arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
            for level, op in enumerate(self.experts[i]):
                kind = op.split("_")[0]
                box(column, depth - level, op, colours.get(kind, "#ffffff"), kind == "conv")
            axis.text(column, depth + 0.5, f"expert {i}", ha="center", fontsize=7)
        for t, task in enumerate(self.tasks):
            x = (t + 0.5) * width / len(self.tasks) - 0.5
            box(x, -0.9, task, "#fb8072")
            for i in self.task_experts[task]:
                if i in used:
                    axis.annotate("", (x, -0.6), (used.index(i), depth - len(self.experts[i]) + 0.7),
                                  arrowprops=dict(arrowstyle="->", lw=0.6, color="#555555"))
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return path
