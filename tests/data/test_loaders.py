"""Loaders read the published layouts; written here as small files."""

import numpy as np
import pandas as pd
import pytest

from tfmtl.data import (
    fetch_movielens_100k,
    load_ali_ccp,
    load_kuairand,
    load_movielens_100k,
    load_tenrec,
    split,
)
from tfmtl.schema import SequenceFeature


def write_grouplens(directory):
    (directory / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n")
    (directory / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    flags = lambda on: "|".join("1" if i in on else "0" for i in range(19))  # noqa: E731
    (directory / "u.item").write_bytes(
        (f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags({3, 4, 5})}\n"
         f"20|Caf\xe9 (1996)|||http://y|{flags({1})}\n").encode("latin-1")
    )


def write_recbole(directory):
    (directory / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n")
    (directory / "ml-100k.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n")
    (directory / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\n20\tCafe\t\tAction\n")


@pytest.mark.parametrize("write", [write_grouplens, write_recbole])
def test_movielens_layouts_read_the_same(tmp_path, write):
    write(tmp_path)
    frame, schema, tasks = load_movielens_100k(tmp_path)
    assert frame[["user_id", "item_id", "rating", "like"]].values.tolist() == [
        [1, 10, 5.0, 1], [2, 10, 3.0, 0], [1, 20, 4.0, 1]]
    assert frame.genres.tolist() == ["Animation|Children's|Comedy"] * 2 + ["Action"]
    assert frame.release_year.tolist() == [1995, 1995, -1]
    assert frame.zip_prefix.tolist() == ["857", "940", "857"]
    assert frame.age.tolist() == [24, 53, 24]
    assert schema.names == ("user_id", "item_id", "age", "gender", "occupation", "zip_prefix",
                            "release_year", "genres")
    assert isinstance(schema["genres"], SequenceFeature)
    assert [(t.name, t.kind) for t in tasks] == [("like", "binary"), ("rating", "regression")]


def test_movielens_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="u.data/u.user/u.item"):
        load_movielens_100k(tmp_path)


def test_real_movielens_100k_from_the_recbole_wheel(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    directory = fetch_movielens_100k(cache)
    assert fetch_movielens_100k(cache) == directory  # second call: already there
    frame, schema, _ = load_movielens_100k(directory)
    assert len(frame) == 100_000
    assert frame.user_id.nunique() == 943 and frame.item_id.nunique() == 1682
    assert frame.like.mean() == pytest.approx(0.55375)
    assert set(frame.rating.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(schema["genres"].vocabulary) == 19
    train, valid, test = split(frame, seed=0)
    assert (len(train), len(valid), len(test)) == (80_000, 10_000, 10_000)
    keys = [set(zip(p.user_id, p.item_id)) for p in (train, valid, test)]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]


def test_ali_ccp_skeleton_and_common_features(tmp_path):
    feature = lambda field, fid: f"{field}\x02{fid}\x031.0"  # noqa: E731
    common = "\x01".join([feature("101", "u1"), feature("121", "7"), feature("109_14", "c1"),
                          feature("109_14", "c2")])
    (tmp_path / "common_features_train.csv").write_text(f"abc,4,{common}\n")
    rows = [
        ("1", "1", "0", "abc", "\x01".join([feature("205", "i1"), feature("301", "1")])),
        ("2", "0", "0", "abc", "\x01".join([feature("205", "i2"), feature("301", "2")])),
        ("3", "0", "1", "abc", feature("205", "i3")),  # conversion without click: dropped
        ("4", "1", "1", "missing", feature("205", "i1")),
    ]
    (tmp_path / "sample_skeleton_train.csv").write_text(
        "".join(f"{s},{c},{v},{i},2,{f}\n" for s, c, v, i, f in rows))
    frame, schema, tasks = load_ali_ccp(tmp_path)
    assert frame.click.tolist() == [1, 0, 1] and frame.conversion.tolist() == [0, 0, 1]
    assert frame.user_id.tolist() == ["u1", "u1", ""]
    assert frame.item_id.tolist() == ["i1", "i2", "i1"]
    assert frame.user_categories.tolist() == ["c1|c2", "c1|c2", ""]
    assert isinstance(schema["user_categories"], SequenceFeature)
    assert [(t.name, t.label, t.mask) for t in tasks] == [("ctr", "click", None),
                                                          ("cvr", "conversion", "click")]


def test_ali_ccp_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="sample_skeleton_train.csv"):
        load_ali_ccp(tmp_path)


def test_kuairand_log_with_user_and_video_features(tmp_path):
    log = pd.DataFrame({
        "user_id": [0, 1, 0], "video_id": [5, 6, 7], "date": [20220408] * 3,
        "hourmin": [1200, 1300, 1400], "time_ms": [1, 2, 3], "is_click": [1, 0, 1],
        "is_like": [0, 0, 1], "is_follow": [0, 0, 0], "is_comment": [0, 0, 0],
        "is_forward": [0, 0, 0], "is_hate": [0, 0, 0], "long_view": [1, 0, 0],
        "play_time_ms": [5000, 0, 300], "duration_ms": [9000, 8000, 7000],
        "profile_stay_time": [0, 0, 0], "comment_stay_time": [0, 0, 0],
        "is_profile_enter": [0, 0, 0], "is_rand": [0, 0, 0], "tab": [1, 1, 2],
    })
    log.to_csv(tmp_path / "log_standard_4_08_to_4_21_pure.csv", index=False)
    pd.DataFrame({"user_id": [0, 1], "user_active_degree": ["high_active", "full_active"],
                  "is_live_streamer": [0, 1], "onehot_feat0": [1, 0]}).to_csv(
        tmp_path / "user_features_pure.csv", index=False)
    pd.DataFrame({"video_id": [5, 6], "author_id": [9, 8], "video_type": ["NORMAL", "AD"],
                  "video_duration": [9000.0, np.nan], "tag": ["1,2", "3"]}).to_csv(
        tmp_path / "video_features_basic_pure.csv", index=False)
    frame, schema, tasks = load_kuairand(tmp_path)
    assert [t.name for t in tasks] == ["is_click", "is_like", "long_view"]
    assert "play_time_ms" not in frame and "time_ms" not in frame
    assert "play_time_ms" not in schema and "is_follow" not in schema
    assert frame.author_id.tolist() == [9, 8, -1]  # video 7 has no features
    assert schema["user_active_degree"].vocabulary is not None
    assert type(schema["video_duration"]).__name__ == "DenseFeature"
    with pytest.raises(ValueError, match="no label"):
        load_kuairand(tmp_path, tasks=("is_watch",))


def test_tenrec_qk_video_with_history(tmp_path):
    pd.DataFrame({
        "user_id": [1, 2], "item_id": [10, 11], "click": [1, 0], "follow": [0, 0],
        "like": [1, 0], "share": [0, 0], "video_category": [3, 4], "watching_times": [2, 0],
        "gender": [1, 2], "age": [3, 4], "hist_1": [10, 0], "hist_2": [12, 0],
    }).to_csv(tmp_path / "ctr_data_1M.csv", index=False)
    frame, schema, tasks = load_tenrec(tmp_path)
    assert frame.history.tolist() == ["10|12", ""]
    assert "watching_times" not in frame
    assert isinstance(schema["history"], SequenceFeature)
    assert [t.name for t in tasks] == ["click", "like"] and "share" not in schema
