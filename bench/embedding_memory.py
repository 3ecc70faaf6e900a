"""Memory of an embedding table as its vocabulary grows: bytes per row, optimizer slots included.

Each configuration runs in a fresh process: a Shared-Bottom model over one
hashed id field of `rows` table rows and dimension `d` (plus one dense
field), built, then trained one epoch on 4,096 rows with Adam (Keras 3:
every row's moments and weights updated every step) or `tfmtl.optimizers.
LazyAdam` (only the rows in the batch). Reported: the resident memory the
model adds after building and after training (what stays: the table and the
two Adam slots, 12 d bytes per row in theory, plus what the allocator keeps
of the step's temporaries), and the peak over the process start (what one
worker must hold), per table row. Memory, not time: the figures do not
depend on the machine's load.

    python bench/embedding_memory.py [--out bench/results]
"""

import argparse
import json
import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = [(4_000_000, 16), (16_000_000, 16), (4_000_000, 64)]


def _rss_mib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def measure(rows, dim, optimizer):
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import pandas as pd

    import tfmtl
    import zoo
    from tfmtl.optimizers import LazyAdam

    schema = tfmtl.Schema([tfmtl.SparseFeature("item", num_bins=rows, dtype="int64"),
                           tfmtl.DenseFeature("x")])
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"item": rng.integers(0, 10**9, 4096), "x": rng.normal(size=4096),
                          "click": rng.integers(0, 2, 4096)})
    start = _rss_mib()
    model = zoo.build("shared_bottom", schema, [tfmtl.Task("click")], embedding_dim=dim,
                      units=(16,), tower_units=(8,))
    built = _rss_mib()
    model.compile(optimizer=keras.optimizers.Adam(1e-3) if optimizer == "adam"
                  else LazyAdam(1e-3))
    model.fit(frame, epochs=1, batch_size=1024, verbose=0)
    trained = _rss_mib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mib = 1 << 20
    return {"rows": rows, "dim": dim, "optimizer": optimizer, "built_mib": built - start,
            "trained_mib": trained - start, "peak_mib": peak - start,
            "theory_bytes_per_row": 12 * dim,
            "built_bytes_per_row": (built - start) * mib / rows,
            "trained_bytes_per_row": (trained - start) * mib / rows,
            "peak_bytes_per_row": (peak - start) * mib / rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="a directory for embedding_memory.md and .json")
    args = parser.parse_args()
    results = []
    for rows, dim in CONFIGS:
        for optimizer in ("adam", "lazy_adam"):
            process = subprocess.run(
                [sys.executable, __file__, "--one", str(rows), str(dim), optimizer],
                capture_output=True, text=True)
            if process.returncode:
                raise SystemExit(process.stderr[-3000:])
            results.append(json.loads(process.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    lines = ["# Embedding-table memory per row (bench/embedding_memory.py)\n",
             "| table rows | dim | optimizer | theory: weights + 2 slots (B/row) | after build "
             "(B/row) | after training (B/row) | peak over start (B/row) | peak (MiB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['dim']} | {r['optimizer']} | "
                     f"{r['theory_bytes_per_row']} | {r['built_bytes_per_row']:.0f} | "
                     f"{r['trained_bytes_per_row']:.0f} | {r['peak_bytes_per_row']:.0f} | "
                     f"{r['peak_mib']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(os.path.join(args.out, "embedding_memory.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "embedding_memory.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
    else:
        main()
