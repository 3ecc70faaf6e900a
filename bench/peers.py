"""tfmtl against DeepCTR and torch-rechub, interleaved config by config in one run, with ratios.

The peers' harness (`--peers`: its `common.py`, `make_data.py` and runners;
not part of tfmtl) fixes the data (`synth`: 400,000 + 100,000 rows, 20
categorical and 5 dense fields; `ml100k`), the matched architecture
(embedding 16; MMoE 4 experts [256, 128]; PLE 1 level 2 + 2 experts; towers
[64]; batch 1024; Adam 1e-3; 2 threads) and the measures. Each round runs,
for each configuration, every runner in its own process one after the
other: tfmtl with dense Adam, tfmtl with `LazyAdam`, tfmtl with Adam and
`jit_compile=True` (lookups in the input pipeline, XLA steps), tfmtl with Adam
and with `LazyAdam` built under Keras' `mixed_bfloat16` policy (`_bf16`),
DeepCTR 0.9.4 under Keras 3, torch-rechub 0.9.0. The peers compute in
float32, so the bfloat16 runners get a ratio column of their own. This
machine's speed drifts by up to 2x over minutes: only ratios within a round
are compared; the table gives each round's figures and each round's ratio,
and the raw records stay in the JSON.

`--before REV` runs each tfmtl runner a second time from an earlier commit
(`git archive REV`, its own `bench/peer_tfmtl.py`), right after this
checkout's, as `<runner>_before`: a change's effect measured in the same
rounds as the peers, with a column of this checkout's best float32 figure
over the earlier commit's.

    python bench/peers.py --peers ../shared/peers --venvs $VENVS [--rounds 2] \
        [--configs synth:mmoe,synth:ple,ml100k:mmoe] [--runners tfmtl_adam,rechub] \
        [--before REV] [--out bench/results]

`$VENVS` holds `deepctrenv` and `torchenv` (set-up in the harness's README).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.output import write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNERS = ("tfmtl_adam", "tfmtl_lazy_adam", "tfmtl_adam_xla", "tfmtl_adam_bf16",
           "tfmtl_lazy_adam_bf16", "deepctr_keras3", "rechub")
PEERS = ("deepctr_keras3", "rechub")
BEFORE = "_before"  # a tfmtl runner run from the earlier commit of `--before`


def with_before(runners):
    """`runners` with each tfmtl runner followed by its earlier commit's (`<runner>_before`)."""
    return [x for r in runners for x in ((r, r + BEFORE) if r.startswith("tfmtl_") else (r,))]


def command(runner, data, model, out, args, before_root=None):
    """The command line of one runner; a `_before` runner runs `before_root`'s own script."""
    one = ["--data", data, "--models", model, "--epochs", str(args.epochs), "--out", out,
           "--append"]
    if runner.startswith("tfmtl_"):
        here = HERE
        if runner.endswith(BEFORE):
            runner, here = runner.removesuffix(BEFORE), os.path.join(before_root, "bench")
        optimizer = runner[len("tfmtl_"):].removesuffix("_bf16").removesuffix("_xla")
        return ([sys.executable, os.path.join(here, "peer_tfmtl.py"), "--peers", args.peers,
                 "--optimizer", optimizer] + (["--jit"] if "_xla" in runner else [])
                + (["--precision", "mixed_bfloat16"] if runner.endswith("_bf16") else []) + one)
    if runner == "deepctr_keras3":
        return [os.path.join(args.venvs, "deepctrenv", "bin", "python"),
                os.path.join(args.peers, "run_deepctr.py"), "--keras", "3"] + one
    return [os.path.join(args.venvs, "torchenv", "bin", "python"),
            os.path.join(args.peers, "run_rechub.py"), "--pipeline", "tensor"] + one


def run(args, raw_dir):
    """Every round, config and runner in turn (with `--before`, each tfmtl runner then its
    earlier commit's); the records of each runner in `raw_dir`."""
    for path in os.listdir(raw_dir):
        os.remove(os.path.join(raw_dir, path))
    before_root, runners = None, args.runners.split(",")
    if args.before:
        before_root = tempfile.mkdtemp(prefix="tfmtl_before_")
        archive = subprocess.run(["git", "archive", args.before], cwd=os.path.dirname(HERE),
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", before_root], input=archive, check=True)
        runners = with_before(runners)
    configs = [c.split(":") for c in args.configs.split(",")]
    try:
        for round_ in range(args.rounds):
            for data, model in configs:
                for runner in runners:
                    out = os.path.join(raw_dir, f"{runner}.json")
                    print(f"round {round_ + 1}: {data} {model} {runner}", flush=True)
                    subprocess.run(command(runner, data, model, out, args, before_root),
                                   check=True)
    finally:
        if before_root:
            shutil.rmtree(before_root, ignore_errors=True)


def records(raw_dir):
    found = {}
    for runner in with_before(RUNNERS):
        path = os.path.join(raw_dir, f"{runner}.json")
        for record in json.load(open(path)) if os.path.exists(path) else []:
            found.setdefault((record["data"], record["model"]), {}).setdefault(
                runner, []).append(record)
    return found


def figures(record):
    """The measures of one record (`None` when the run failed)."""
    if record.get("status") != "ok":
        return None
    task = next(iter(record["quality"]["epoch1"].values()))
    whole = record.get("train_sps_end_to_end")
    return {"train": record["train_sps"]["median"], "whole": whole and whole["median"],
            "infer": record["infer_sps"]["median"],
            "p50": record["latency_b1_best_p50_ms"], "rss": record["peak_rss_mib"],
            "auc": task.get("auc")}


MEASURES = ("train", "whole", "infer", "p50", "rss", "auc")


def table(found, rounds, shown=MEASURES):
    runners = [r for r in with_before(RUNNERS) if any(r in by_runner for by_runner in found.values())]
    before = any(r.endswith(BEFORE) for r in runners)
    lines = ["| config | measure | " + " | ".join(runners) + " | tfmtl float32 (best of ours) / "
             "best peer, per round | tfmtl mixed bfloat16 / best peer |"
             + (" tfmtl float32 (best of ours) / the same runners before |" if before else ""),
             "|---" * (len(runners) + 4 + before) + "|"]
    measures = (("train", "training samples/s", max),
                ("whole", "training samples/s, the whole fit call (tfmtl only)", max),
                ("infer", "inference samples/s, batch 4096", max),
                ("p50", "batch-1 p50 ms", min), ("rss", "peak RSS MiB", min),
                ("auc", "first task's test AUC after epoch 1", max))
    for (data, model), by_runner in found.items():
        for key, label, best in measures:
            if key not in shown:
                continue
            cells = []
            for runner in runners:
                values = [f[key] for f in map(figures, by_runner.get(runner, [])) if f]
                cells.append(" / ".join(_fmt(key, v) for v in values) or "failed")
            ratio = {}
            for bf16 in (False, True):  # the peers run float32: bfloat16 is put apart
                ratios = []
                for r in range(rounds):
                    # `_xla` looks up every row before its steps, outside the timed window:
                    # its training figure is shown, not put against the peers'.
                    ours = [_at(by_runner, x, r, key) for x in RUNNERS if x.startswith("tfmtl")
                            and x.endswith("_bf16") == bf16
                            and not (key == "train" and "_xla" in x)]
                    theirs = [_at(by_runner, x, r, key) for x in PEERS]
                    ours, theirs = [v for v in ours if v], [v for v in theirs if v]
                    if ours and theirs:
                        ratios.append(best(ours) / best(theirs))
                ratio[bf16] = " / ".join(f"{v:.2f}" for v in ratios)
            lines.append(f"| {data} {model} | {label} | " + " | ".join(cells)
                         + f" | {ratio[False]} | {ratio[True]} |"
                         + (f" {_against_before(by_runner, rounds, key, best)} |"
                            if before else ""))
    return "\n".join(lines)


def _against_before(by_runner, rounds, key, best):
    """This checkout's best float32 tfmtl figure over the earlier commit's same runners', per
    round (the runners both ran; `_xla`'s training figure left out, as against the peers)."""
    ratios = []
    for r in range(rounds):
        pairs = [(_at(by_runner, x, r, key), _at(by_runner, x + BEFORE, r, key))
                 for x in RUNNERS if x.startswith("tfmtl") and not x.endswith("_bf16")
                 and not (key == "train" and "_xla" in x)]
        pairs = [(now, then) for now, then in pairs if now and then]
        if pairs:
            ratios.append(best(p[0] for p in pairs) / best(p[1] for p in pairs))
    return " / ".join(f"{v:.2f}" for v in ratios)


def _at(by_runner, runner, round_, key):
    runs = by_runner.get(runner, [])
    figure = figures(runs[round_]) if round_ < len(runs) else None
    return figure[key] if figure and figure[key] is not None else None


def _fmt(key, value):
    if value is None:
        return "-"
    return {"train": f"{value:,.0f}", "whole": f"{value:,.0f}", "infer": f"{value:,.0f}",
            "p50": f"{value:.2f}", "rss": f"{value:,.0f}", "auc": f"{value:.4f}"}[key]


def side_by_side_arguments(parser):
    """The options of a bench that can run this side-by-side run instead of its own."""
    parser.add_argument("--peers", metavar="HARNESS",
                        help="run tfmtl and the two peers interleaved through the peers harness "
                             "instead (bench/peers.py; with --venvs, --rounds, --out)")
    parser.add_argument("--venvs", help="the folder of the peers' deepctrenv and torchenv")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runners", help="bench/peers.py's runners (default: all)")
    parser.add_argument("--out", help="with --peers: where the results go")


def side_by_side(args, measures, name):
    """This side-by-side run for a bench's `args`, its table showing `measures` only."""
    if not args.venvs:
        raise SystemExit("--peers needs --venvs (the folder of deepctrenv and torchenv)")
    main(["--peers", args.peers, "--venvs", args.venvs, "--rounds", str(args.rounds),
          "--measures", measures, "--name", name]
         + (["--runners", args.runners] if args.runners else [])
         + (["--out", args.out] if args.out else []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="the peers harness directory")
    parser.add_argument("--venvs", required=True, help="the folder of deepctrenv and torchenv")
    parser.add_argument("--configs", default="synth:mmoe,synth:ple,ml100k:mmoe")
    parser.add_argument("--runners", default=",".join(RUNNERS),
                        help=f"a subset of {','.join(RUNNERS)}, in the order they run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", help="directory for peers.md / peers.json and the raw records")
    parser.add_argument("--measures", default=",".join(MEASURES),
                        help=f"the table's rows, a subset of {','.join(MEASURES)} (the raw "
                             "records keep every measure)")
    parser.add_argument("--name", default="peers", help="the results' file name")
    parser.add_argument("--before", metavar="REV",
                        help="also run each tfmtl runner from this earlier commit, after this "
                             "checkout's (`<runner>_before`)")
    parser.add_argument("--report-only", action="store_true",
                        help="only tabulate the raw records already under --out")
    args = parser.parse_args(argv)
    args.peers, args.venvs = os.path.abspath(args.peers), os.path.abspath(args.venvs)
    unknown = set(args.runners.split(",")) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown runner(s) {sorted(unknown)}; choose from {', '.join(RUNNERS)}")
    shown = args.measures.split(",")
    if set(shown) - set(MEASURES):
        parser.error(f"unknown measure(s) {sorted(set(shown) - set(MEASURES))}; choose from "
                     f"{', '.join(MEASURES)}")
    os.environ.setdefault("BENCH_DATA", os.path.join(tempfile.gettempdir(), "benchdata"))
    raw_dir = os.path.join(args.out or tempfile.mkdtemp(), "peers_raw")
    os.makedirs(raw_dir, exist_ok=True)
    if not args.report_only:
        data_dir = os.environ["BENCH_DATA"]
        if not all(os.path.exists(os.path.join(data_dir, f"{d}.npz"))
                   for d in ("synth", "ml100k")):
            subprocess.run([os.path.join(args.venvs, "torchenv", "bin", "python"),
                            os.path.join(args.peers, "make_data.py")], check=True,
                           cwd=args.peers)
        run(args, raw_dir)
    found = records(raw_dir)
    text = ("Each cell: the runner's figure in each round (round 1 / round 2 ...); the last "
            "two columns: the best float32 tfmtl runner, then the best mixed-bfloat16 one, over "
            "the best peer (float32) within each round (higher is better for samples/s and "
            "AUC, lower for ms and MiB; a ratio > 1 means tfmtl is higher)."
            + (f" `<runner>{BEFORE}`: the same runner at commit {args.before or '(see --before)'}"
               ", run right after this checkout's; the last column is this checkout's best "
               "float32 figure over that commit's, per round."
               if any(r.endswith(BEFORE) for by in found.values() for r in by) else "")
            + "\n\n" + table(found, args.rounds, shown))
    payload = {f"{d}:{m}": runners for (d, m), runners in found.items()}
    write_results(args.out, args.name, text, payload)


if __name__ == "__main__":
    main()
