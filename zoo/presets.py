"""The named switcher models as data: one builder (`zoo/switcher_model.py`), many presets.

A preset names a switcher (`tfmtl.layers.SWITCHERS`), a view, and the
papers' default hyperparameters; `sizes` holds the reduced or matched sizes
the benchmarks use (`zoo.preset(name, size)`), so that no bench keeps a
dict of its own.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model: a switcher between a view of the embeddings and the towers.

    Args:
        name: str. The zoo name.
        summary: str. One line: what the model is.
        reference: str. The paper.
        switcher: str. A name in `tfmtl.layers.SWITCHERS`.
        defaults: dict. Every hyperparameter and its default: `embedding_dim`,
            `tower_units`, `tower_dropout`, the view's (`specific_fields`) and
            the switcher's own.
        view: str. `"shared"` or `"task_embeddings"` (see `zoo.blocks.view`).
        sizes: dict of size name to hyperparameters overriding `defaults`.
    """

    name: str
    summary: str
    reference: str
    switcher: str
    defaults: dict
    view: str = "shared"
    sizes: dict = dataclasses.field(default_factory=dict)


_COMMON = {"embedding_dim": 16, "tower_units": (64,), "dropout": 0.0, "tower_dropout": 0.0,
           "embedding_l2": 0.0}
_LINEAR_GATE = {"gate_units": ()}

# Sizes the benchmarks share (`zoo.preset(name, size)`):
# - "peers": the architecture ../shared/peers runs DeepCTR and torch-rechub with
#   (embedding 16, MMoE 4 experts [256, 128], PLE one level of 2 + 2 experts, towers [64]);
# - "fdn_paper": FDN's Table 1 baselines (8 experts [128, 64]; CGC/PLE 3 specific + 2 shared);
# - "stem_paper": the STEM-Net paper's baselines as its authors' code sets them (every expert
#   [512, 512, 512]; every gate an MLP [128, 64]; towers [128, 64]; MMoE 8 experts; PLE one
#   level of 8 shared + 1 per task);
# - "stem_small": the same structures with experts [128, 64] (bench/stem.py on 2 CPU cores);
# - "mfh_level_1", "mfh_level_2": bench/mfh.py's MMoE switchers at the tree's levels 1 and 2;
# - "multisfs": bench/multisfs.py's backbones; "automtl": bench/automtl.py's baselines.
PRESETS = {
    "shared_bottom": Preset(
        "shared_bottom", "Shared-Bottom: one shared MLP, a tower per task.",
        "Caruana, Multitask Learning, 1997", "shared_bottom",
        {**_COMMON, "units": (256, 128)},
        sizes={"peers": {"units": (256, 128)},
               "automtl": {"units": (128, 64), "tower_units": (128, 64)}},
    ),
    "omoe": Preset(
        "omoe", "One-gate Mixture-of-Experts (the MMoE paper's OMoE baseline).",
        "Ma et al., KDD 2018", "omoe",
        {**_COMMON, "num_experts": 8, "expert_units": (256, 128), **_LINEAR_GATE},
    ),
    "mmoe": Preset(
        "mmoe", "Multi-gate Mixture-of-Experts: one softmax gate per task.",
        "Ma et al., Modeling Task Relationships in Multi-task Learning with Multi-gate "
        "Mixture-of-Experts, KDD 2018", "mmoe",
        {**_COMMON, "num_experts": 8, "expert_units": (256, 128), **_LINEAR_GATE},
        sizes={"peers": {"num_experts": 4, "expert_units": (256, 128)},
               "fdn_paper": {"num_experts": 8, "expert_units": (128, 64)},
               "stem_paper": {"num_experts": 8, "expert_units": (512, 512, 512),
                              "gate_units": (128, 64), "tower_units": (128, 64)},
               "stem_small": {"num_experts": 8, "expert_units": (128, 64),
                              "gate_units": (128, 64), "tower_units": (128, 64)},
               "mfh_level_1": {"num_experts": 4, "expert_units": (256,)},
               "mfh_level_2": {"num_experts": 2, "expert_units": (128,)},
               "multisfs": {"num_experts": 8, "expert_units": (128, 64), "tower_units": (64,)},
               "automtl": {"num_experts": 8, "expert_units": (128, 64),
                           "tower_units": (128, 64)}},
    ),
    "cgc": Preset(
        "cgc", "Customized Gate Control: PLE with one extraction level.",
        "Tang et al., Progressive Layered Extraction (PLE), RecSys 2020", "cgc",
        {**_COMMON, "num_specific_experts": 1, "num_shared_experts": 1,
         "expert_units": (256, 128), **_LINEAR_GATE},
        sizes={"fdn_paper": {"num_specific_experts": 3, "num_shared_experts": 2,
                             "expert_units": (128, 64)},
               "automtl": {"num_specific_experts": 4, "num_shared_experts": 4,
                           "expert_units": (128, 64), "tower_units": (128, 64)}},
    ),
    "ple": Preset(
        "ple", "Progressive Layered Extraction: stacked CGC levels, any number.",
        "Tang et al., Progressive Layered Extraction (PLE), RecSys 2020", "ple",
        {**_COMMON, "num_levels": 2, "num_specific_experts": 1, "num_shared_experts": 1,
         "expert_units": (256, 128), **_LINEAR_GATE},
        sizes={"peers": {"num_levels": 1, "num_specific_experts": 2, "num_shared_experts": 2,
                         "expert_units": (256, 128)},
               "fdn_paper": {"num_levels": 2, "num_specific_experts": 3,
                             "num_shared_experts": 2, "expert_units": (128, 64)},
               "stem_paper": {"num_levels": 1, "num_specific_experts": 1,
                              "num_shared_experts": 8, "expert_units": (512, 512, 512),
                              "gate_units": (128, 64), "tower_units": (128, 64)},
               "stem_small": {"num_levels": 1, "num_specific_experts": 1,
                              "num_shared_experts": 8, "expert_units": (128, 64),
                              "gate_units": (128, 64), "tower_units": (128, 64)},
               "multisfs": {"num_levels": 2, "num_specific_experts": 2, "num_shared_experts": 2,
                            "expert_units": (64,), "tower_units": (64,)},
               "automtl": {"num_levels": 2, "num_specific_experts": 4, "num_shared_experts": 4,
                           "expert_units": (128, 64), "tower_units": (128, 64)}},
    ),
    "me_ple": Preset(
        "me_ple", "Multi-embedding PLE (STEM-Net paper's baseline): task-specific tables.",
        "Su et al., STEM: Unleashing the Power of Embeddings for Multi-task Recommendation, "
        "AAAI 2024", "ple",
        {**_COMMON, "tower_units": (128, 64), "specific_fields": "all", "num_levels": 1,
         "num_specific_experts": 1, "num_shared_experts": 8, "expert_units": (512, 512, 512),
         "gate_units": (128, 64)},  # the authors' code: every gate an MLP [128, 64]
        view="task_embeddings",
        sizes={"stem_paper": {}, "stem_small": {"expert_units": (128, 64)}},
    ),
}

# What each hyperparameter means, for the generated docstrings.
ARGUMENTS = {
    "embedding_dim": "int. Width of every field's embedding.",
    "tower_units": "list of int. Each task's tower.",
    "dropout": "float. Dropout in the experts (the bottom for Shared-Bottom).",
    "tower_dropout": "float. Dropout in the towers.",
    "embedding_l2": "float. L2 on every embedding table, added to each batch's loss "
                    "(`5e-7` is FuxiCTR's and STEM-Net's `1e-6`, which halves it).",
    "units": "list of int. The shared bottom's widths.",
    "num_experts": "int. Number of experts.",
    "expert_units": "list of int. Widths of each expert.",
    "num_levels": "int. Extraction levels.",
    "num_specific_experts": "int. Experts per task (and level).",
    "num_shared_experts": "int. Shared experts (per level).",
    "gate_units": "list of int. Hidden layers of each gate; `()` is the papers' linear gate, "
                  "`(128, 64)` STEM-Net's MLP gate.",
    "specific_fields": "`\"all\"` or a list of fields with task-specific tables (STEM-Net's "
                       "Table 5 variants).",
}
