"""Which part of a derived AutoMTL model costs it: the skip connections or the interaction?

Reads a search recorded by `bench/automtl.py` (`<search>_architecture.json` in
`--out`, `<search>` by default `automtl_<data>`) and retrains, with
`bench/automtl.py`'s protocol and seeds, architectures derived from the same
alphas and betas:

- `as derived`: the recorded architecture (the strongest operation per block);
- `no skip`: in every expert block the strongest operation other than skip
  (the DARTS literature's usual guard against skip collapse; not the paper's
  rule);
- `all skip`: every expert block a skip connection (the projected input);
- `interaction skip`: as derived, with the interaction replaced by skip (the
  flat embeddings, as the paper's w/o INT, but without searching again).

    python bench/automtl_skip.py [--data synthetic] [--search automtl_synthetic] [--seeds 0,1,2]
                                 [--out bench/results]

Results: `automtl_skip_<search without its "automtl_">.{md,json,csv}` in `--out`.
"""

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.automtl import evaluate, movielens, scores, synthetic  # noqa: E402
from bench.output import write_results  # noqa: E402
from tfmtl.search import Architecture  # noqa: E402


def without_skip(architecture):
    """The architecture derived from the same alphas, skip left out of every expert block."""
    candidates = architecture.candidates["expert"]
    experts = []
    for i, ops in enumerate(architecture.experts):
        chain = []
        for b in range(len(ops)):
            weights = np.array(architecture.alphas[f"expert_{i}_block_{b}"], dtype=float)
            weights[candidates.index("skip")] = -np.inf
            chain.append(candidates[int(np.argmax(weights))])
        experts.append(chain)
    return dataclasses.replace(architecture, experts=experts)


def all_skip(architecture):
    return dataclasses.replace(architecture,
                               experts=[["skip"] * len(ops) for ops in architecture.experts])


def interaction_skip(architecture):
    return dataclasses.replace(architecture, interaction="skip")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", choices=("synthetic", "movielens"))
    parser.add_argument("--search", help="the recorded search's file prefix in --out "
                        "(default automtl_<data>)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="bench/results",
                        help="where the recorded search is and the results go")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    prefix = args.search or f"automtl_{args.data}"
    derived = Architecture.load(os.path.join(args.out, f"{prefix}_architecture.json"))
    parts, schema, tasks = movielens() if args.data == "movielens" else synthetic()
    variants = {"as derived": derived, "no skip": without_skip(derived),
                "all skip": all_skip(derived), "interaction skip": interaction_skip(derived)}
    rows = []
    for label, architecture in variants.items():
        print(f"{label}: {architecture.interaction}; "
              + "; ".join(" -> ".join(ops) for ops in architecture.experts), flush=True)
        for seed in seeds:
            result = evaluate("automtl", schema, tasks, parts, seed, architecture=architecture)
            rows.append(dict(variant=label, seed=seed, **result))
            print(f"  seed {seed}: {scores(result, tasks)}", flush=True)
    frame = pd.DataFrame(rows)
    columns = [f"{t.name}_auc" for t in tasks] + ["mtl_loss"]
    lines = [f"### {prefix}: one recorded search derived {len(variants)} ways, retrained "
             f"(mean ± std over seeds {seeds})", "",
             "| variant | interaction | experts | " + " | ".join(columns) + " | parameters | epochs |",
             "|---" * (len(columns) + 5) + "|"]
    for label, block in frame.groupby("variant", sort=False):
        chains = "; ".join(" -> ".join(ops) for ops in variants[label].experts)
        cells = [f"{block[c].mean():.4f} ± {block[c].std():.4f}" for c in columns]
        lines.append(f"| {label} | {variants[label].interaction} | {chains} | "
                     + " | ".join(cells)
                     + f" | {int(block.parameters.mean())} | {block.epochs.mean():.1f} |")
    write_results(args.out, f"automtl_skip_{prefix.removeprefix('automtl_')}", "\n".join(lines),
                  frame.to_dict(orient="records"), frame)


if __name__ == "__main__":
    main()
