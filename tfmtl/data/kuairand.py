"""KuaiRand (Kuaishou), the published CSV layout.

The interaction log (`log_standard_*.csv`, or `log_random_*.csv`) has
columns `user_id, video_id, date, hourmin, time_ms, is_click, is_like,
is_follow, is_comment, is_forward, is_hate, long_view, play_time_ms,
duration_ms, profile_stay_time, comment_stay_time, is_profile_enter,
is_rand, tab`; `user_features*.csv` and `video_features_basic*.csv` are
joined on `user_id` and `video_id`.
"""

import pathlib

import pandas as pd

from tfmtl.schema.inference import infer_schema

LABELS = ("is_click", "is_like", "long_view", "is_follow", "is_comment", "is_forward",
          "is_hate", "is_profile_enter")
LEAKS = ("time_ms", "play_time_ms", "profile_stay_time", "comment_stay_time", "date",
         "is_rand")
USER_CATEGORICAL = ("user_active_degree", "is_lowactive_period", "is_live_streamer",
                    "is_video_author", "follow_user_num_range", "fans_user_num_range",
                    "friend_user_num_range", "register_days_range")
VIDEO_CATEGORICAL = ("author_id", "video_type", "upload_type", "visible_status", "music_id",
                     "music_type", "tag")


def load_kuairand(directory, tasks=("is_click", "is_like", "long_view"), max_rows=None):
    """Reads KuaiRand's log joined with user and video features.

    Label columns are the binary feedback signals (`LABELS`); columns only
    known after the impression (play time, stay times, `time_ms`, `date`)
    are dropped. Returns `(frame, schema, tasks)`.
    """
    directory = pathlib.Path(directory)
    logs = sorted(directory.glob("log_standard_*.csv")) or sorted(directory.glob("log_random_*.csv"))
    if not logs:
        raise FileNotFoundError(f"No KuaiRand log_standard_*.csv / log_random_*.csv in {directory}")
    unknown = [t for t in tasks if t not in LABELS]
    if unknown:
        raise ValueError(f"KuaiRand has no label {unknown}; labels: {list(LABELS)}")
    frame = pd.concat([pd.read_csv(p, nrows=max_rows) for p in logs], ignore_index=True)
    if max_rows is not None:
        frame = frame.head(max_rows)
    users = sorted(directory.glob("user_features*.csv"))
    videos = sorted(directory.glob("video_features_basic*.csv"))
    if users:
        user = pd.read_csv(users[0])
        keep = ["user_id"] + [c for c in user.columns if c in USER_CATEGORICAL or c.startswith("onehot_feat")]
        frame = frame.merge(user[keep], on="user_id", how="left")
    if videos:
        video = pd.read_csv(videos[0])
        keep = ["video_id"] + [c for c in video.columns if c in VIDEO_CATEGORICAL or c == "video_duration"]
        frame = frame.merge(video[keep], on="video_id", how="left")
    frame = frame.drop(columns=[c for c in LEAKS + ("duration_ms",) if c in frame.columns])
    other_labels = [c for c in LABELS if c in frame.columns and c not in tasks]
    categorical = [c for c in frame.columns
                   if c in ("user_id", "video_id", "tab", "hourmin") + USER_CATEGORICAL + VIDEO_CATEGORICAL
                   or c.startswith("onehot_feat")]
    for column in categorical:
        if frame[column].dtype.kind == "f":  # ids with missing values read as floats
            frame[column] = frame[column].fillna(-1).astype("int64")
    dense = [c for c in ("video_duration",) if c in frame.columns]
    schema, task_list = infer_schema(
        frame, labels=list(tasks), kinds={t: "binary" for t in tasks},
        categorical=categorical,
        dense=dense, exclude=other_labels,
    )
    return frame, schema, task_list
