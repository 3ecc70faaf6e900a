"""Tenrec QK-video (Tencent), the published CSV layout.

`QK-video.csv` has columns `user_id, item_id, click, follow, like, share,
video_category, watching_times, gender, age`; `ctr_data_1M.csv` adds
`hist_1 .. hist_10`, the user's last clicked items.
"""

import pathlib

import pandas as pd

from tfmtl.schema.inference import infer_schema

LABELS = ("click", "follow", "like", "share")


def load_tenrec(path, tasks=("click", "like"), max_rows=None):
    """Reads a Tenrec QK-video CSV into `(frame, schema, tasks)`.

    `watching_times` (known only after the impression) is dropped. The
    `hist_*` columns, when present, become one multi-valued `history`
    feature (`|`-joined, zeros, the padding, left out).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("QK-video*.csv")) + sorted(path.glob("ctr_data_1M*.csv"))
        if not candidates:
            raise FileNotFoundError(f"No QK-video.csv or ctr_data_1M.csv in {path}")
        path = candidates[0]
    if not path.exists():
        raise FileNotFoundError(f"Tenrec file not found: {path}")
    unknown = [t for t in tasks if t not in LABELS]
    if unknown:
        raise ValueError(f"Tenrec QK-video has no label {unknown}; labels: {list(LABELS)}")
    frame = pd.read_csv(path, nrows=max_rows)
    history = sorted((c for c in frame.columns if c.startswith("hist_")),
                     key=lambda c: int(c.split("_")[1]))
    if history:
        values = frame[history].astype("int64").to_numpy()
        frame["history"] = ["|".join(str(v) for v in row if v != 0) for row in values]
        frame = frame.drop(columns=history)
    frame = frame.drop(columns=[c for c in ("watching_times",) if c in frame.columns])
    categorical = [c for c in ("user_id", "item_id", "video_category", "gender", "age")
                   if c in frame.columns]
    schema, task_list = infer_schema(
        frame, labels=list(tasks), kinds={t: "binary" for t in tasks},
        categorical=categorical, multi_valued=["history"] if history else [],
        exclude=[c for c in LABELS if c not in tasks],
    )
    return frame, schema, task_list
