"""Where every benchmark's figures go: printed, and under `--out` as `<name>.md`, `.csv`, `.json`."""

import json
import os

import numpy as np


def write_results(out, name, text, payload, frame=None):
    """Prints `text`; with a directory `out`, writes `name.md` (the text), `name.json`
    (`payload`, NumPy numbers as plain ones) and, given a DataFrame, `name.csv`."""
    text = text if text.endswith("\n") else text + "\n"
    print("\n" + text)
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text)
    if frame is not None:
        frame.to_csv(os.path.join(out, f"{name}.csv"), index=False)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=1, default=_plain)


def _plain(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)
