"""Ali-CCP (Alibaba Click and Conversion Prediction), the published layout.

The data set ships as `sample_skeleton_{train,test}.csv` and
`common_features_{train,test}.csv`. A skeleton line is
`sample_id,click,conversion,common_feature_index,feature_num,feature_list`
and a common-features line `common_feature_index,feature_num,feature_list`,
where a feature list joins features with `\\x01` and each feature is
`field_id \\x02 feature_id \\x03 value`. A row's features are its own plus
the common ones of its index (user-side features shared by many rows).
"""

import pathlib

import pandas as pd

from tfmtl.schema.inference import infer_schema
from tfmtl.schema.task import Task

FIELDS = {
    "101": "user_id", "109_14": "user_categories", "110_14": "user_shops",
    "127_14": "user_brands", "150_14": "user_intentions", "121": "user_profile",
    "122": "user_group", "124": "user_gender", "125": "user_age",
    "126": "user_consumption_1", "127": "user_consumption_2", "128": "user_is_occupied",
    "129": "user_geography", "205": "item_id", "206": "item_category", "207": "item_shop",
    "210": "item_intention", "216": "item_brand", "508": "user_item_categories",
    "509": "user_item_shops", "702": "user_item_brands", "853": "user_item_intentions",
    "301": "position",
}


def parse_feature_list(text):
    """`{field_id: [feature_id, ...]}` of one `\\x01`-joined feature list."""
    features = {}
    for item in text.split("\x01"):
        if not item:
            continue
        field, _, rest = item.partition("\x02")
        feature_id, _, _value = rest.partition("\x03")
        features.setdefault(field, []).append(feature_id)
    return features


def load_ali_ccp(directory, split="train", max_rows=None):
    """Reads one split of Ali-CCP into `(frame, schema, tasks)`.

    Columns are named after their fields (`FIELDS`); a field with several
    values in a row (the `*_14` behaviour histories) is multi-valued,
    `|`-joined; a field a row lacks is `""`. Rows with a conversion but no
    click (inconsistent) are dropped. Tasks: `ctr` (label `click`, every
    row) and `cvr` (label `conversion`, masked to clicked rows) — the ESMM
    setting.
    """
    directory = pathlib.Path(directory)
    skeleton = directory / f"sample_skeleton_{split}.csv"
    common_path = directory / f"common_features_{split}.csv"
    for path in (skeleton, common_path):
        if not path.exists():
            raise FileNotFoundError(f"Ali-CCP file not found: {path}")
    common = {}
    with open(common_path, encoding="utf-8") as lines:
        for line in lines:
            index, _num, features = line.rstrip("\n").split(",", 2)
            common[index] = parse_feature_list(features)
    rows = []
    with open(skeleton, encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if max_rows is not None and len(rows) >= max_rows:
                break
            parts = line.rstrip("\n").split(",", 5)
            if len(parts) != 6:
                raise ValueError(f"{skeleton.name} line {number + 1}: expected 6 fields")
            _sample, click, conversion, index, _num, features = parts
            if click == "0" and conversion == "1":
                continue
            row = dict(common.get(index, {}))
            row.update(parse_feature_list(features))
            record = {FIELDS.get(k, f"field_{k}"): "|".join(v) for k, v in row.items()}
            record["click"], record["conversion"] = int(click), int(conversion)
            rows.append(record)
    frame = pd.DataFrame(rows)
    features = [c for c in frame.columns if c not in ("click", "conversion")]
    frame[features] = frame[features].fillna("")
    multi = [c for c in features if frame[c].str.contains("|", regex=False).any()]
    schema, _ = infer_schema(frame, labels=["click"], categorical=[c for c in features if c not in multi],
                             multi_valued=multi, exclude=["conversion"])
    tasks = [Task("ctr", label="click"), Task("cvr", label="conversion", mask="click")]
    return frame, schema, tasks
