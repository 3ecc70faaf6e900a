"""What every recorded AutoMTL search preferred: its expert blocks' alphas, search by search.

Reads the searches `bench/automtl.py` recorded (`automtl_<data>.json` in
`--out`: AutoMTL under every search seed and the ablations) and prints, per
search, how many of its expert blocks each operation won, the mean softmax
weight of skip and of gating beside the uniform `1 / candidates`, where in
the experts skip won (by block position), and how close the two leaders
were. No training: it reads the recorded architectures only.

    python bench/automtl_alphas.py [--data movielens,synthetic] [--out bench/results]

Results: `automtl_alphas.{md,json,csv}` in `--out`.
"""

import argparse
import json
import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.output import write_results  # noqa: E402

BLOCK = re.compile(r"expert_(\d+)_block_(\d+)$")


def summarise(architecture):
    """One search's expert alphas (`softmax(alpha)` per block, as the architecture records them).

    Returns a dict: `blocks`, `won` (a `Counter` of the strongest operation per
    block), `skip_weight` and `gating_weight` (their mean weight over the
    blocks), `uniform` (`1 / candidates`), `skip_won_by_position` (per block
    position, the share of the experts whose block there skip won),
    `leaders_skip_gating` (blocks whose two strongest are skip and gating)
    and `leader_margin` (median over blocks of the strongest weight minus the
    second's).
    """
    candidates = architecture["candidates"]["expert"]
    rows = []
    for name, weights in architecture["alphas"].items():
        match = BLOCK.match(name)
        if match:
            rows.append((int(match[1]), int(match[2]), np.asarray(weights, dtype=float)))
    if not rows:
        raise ValueError("The architecture records no expert block's alphas.")
    won, margins, pair = Counter(), [], 0
    positions = {}
    for _, position, weights in rows:
        order = np.argsort(weights)[::-1]
        first, second = candidates[order[0]], candidates[order[1]]
        won[first] += 1
        margins.append(weights[order[0]] - weights[order[1]])
        pair += {first, second} == {"skip", "gating"}
        positions.setdefault(position, []).append(first == "skip")

    def mean_weight(op):
        return float(np.mean([w[candidates.index(op)] for *_, w in rows])) if op in candidates \
            else float("nan")

    return {"blocks": len(rows), "won": won, "skip_weight": mean_weight("skip"),
            "gating_weight": mean_weight("gating"), "uniform": 1 / len(candidates),
            "skip_won_by_position": {p: float(np.mean(v)) for p, v in sorted(positions.items())},
            "leaders_skip_gating": pair, "leader_margin": float(np.median(margins))}


def table(searches):
    """`searches`: `(data, label, summary)` triples -> (markdown lines, DataFrame)."""
    lines = ["| data | search | blocks won by skip / gating / others | others | mean weight "
             "skip / gating (uniform) | skip won, by block position | two leaders skip and "
             "gating | median lead over the second |", "|---" * 8 + "|"]
    records = []
    for data, label, s in searches:
        others = {op: n for op, n in s["won"].most_common() if op not in ("skip", "gating")}
        positions = " / ".join(f"{share:.0%}" for share in s["skip_won_by_position"].values())
        lines.append(
            f"| {data} | {label} | {s['won']['skip']} / {s['won']['gating']} / "
            f"{sum(others.values())} of {s['blocks']} | "
            + (", ".join(f"{op} {n}" for op, n in others.items()) or "-")
            + f" | {s['skip_weight']:.3f} / {s['gating_weight']:.3f} ({s['uniform']:.3f}) | "
            f"{positions} | {s['leaders_skip_gating']} of {s['blocks']} | "
            f"{s['leader_margin']:.3f} |")
        records.append({"data": data, "search": label, "blocks": s["blocks"],
                        "won_skip": s["won"]["skip"], "won_gating": s["won"]["gating"],
                        "won_others": sum(others.values()), "skip_weight": s["skip_weight"],
                        "gating_weight": s["gating_weight"], "uniform": s["uniform"],
                        "leaders_skip_gating": s["leaders_skip_gating"],
                        "leader_margin": s["leader_margin"],
                        **{f"skip_won_position_{p}": v
                           for p, v in s["skip_won_by_position"].items()}})
    return lines, pd.DataFrame(records)


def recorded(out, data):
    """`(label, architecture dict)` of every search in `automtl_<data>.json` that has expert alphas."""
    path = os.path.join(out, f"automtl_{data}.json")
    if not os.path.exists(path):
        raise SystemExit(f"No recorded searches for {data!r}: {path} does not exist "
                         "(bench/automtl.py writes it).")
    with open(path) as f:
        runs = json.load(f)[data]
    return [(label, run["architecture"]) for label, run in runs.items()
            if isinstance(run, dict) and "architecture" in run
            and any(BLOCK.match(k) for k in run["architecture"].get("alphas", {}))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="movielens,synthetic")
    parser.add_argument("--out", default="bench/results",
                        help="where the recorded searches are and the results go")
    args = parser.parse_args()
    searches = [(data, label, summarise(architecture))
                for data in args.data.split(",") for label, architecture in recorded(args.out, data)]
    lines, frame = table(searches)
    text = "\n".join(["### The expert blocks' alphas of every recorded AutoMTL search", "",
                      "`hom Expert` shares one alpha per block position among the experts, so its "
                      "blocks repeat the same choice.", ""] + lines)
    write_results(args.out, "automtl_alphas", text, frame.to_dict(orient="records"), frame)


if __name__ == "__main__":
    main()
