"""MovieLens-100K: GroupLens files or RecBole atomic files, and a local fetch."""

import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import pandas as pd

from tfmtl.schema.inference import infer_schema

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
RECBOLE = "recbole==1.2.1"
_MEMBER = "recbole/dataset_example/ml-100k/"


def default_cache():
    """`$TFMTL_CACHE`, else `~/.cache/tfmtl`."""
    return pathlib.Path(os.environ.get("TFMTL_CACHE", pathlib.Path.home() / ".cache" / "tfmtl"))


def fetch_movielens_100k(cache_dir=None):
    """Puts MovieLens-100K (RecBole atomic files) in `cache_dir/ml-100k/`.

    The files ship inside the `recbole==1.2.1` wheel, which
    `pip download --no-deps` fetches from the package index (no torch, no
    other download); `dataset_example/ml-100k/` is extracted from it. A
    second call finds the files and does nothing.

    Returns:
        The directory holding `ml-100k.inter`, `ml-100k.user`, `ml-100k.item`.
    """
    target = pathlib.Path(cache_dir or default_cache()) / "ml-100k"
    if (target / "ml-100k.inter").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", RECBOLE, "-d", scratch]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"Could not fetch MovieLens-100K: `{' '.join(command)}` failed: "
                f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
            )
        wheel = next(pathlib.Path(scratch).glob("recbole-*.whl"))
        staging = pathlib.Path(scratch) / "ml-100k"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(_MEMBER) and member.split("/")[-1].startswith("ml-100k."):
                    (staging / member.split("/")[-1]).write_bytes(archive.read(member))
        if not (staging / "ml-100k.inter").exists():
            raise RuntimeError(f"{wheel.name} holds no {_MEMBER}ml-100k.inter")
        try:
            staging.rename(target)  # atomic: a reader never sees half the files
        except OSError:
            if not (target / "ml-100k.inter").exists():
                raise
    return target


def load_movielens_100k(path=None, like_threshold=4.0):
    """Reads MovieLens-100K into a frame with the schema and tasks.

    `path` is a directory holding either the GroupLens files (`u.data`,
    `u.user`, `u.item`) or the RecBole atomic files (`ml-100k.inter`,
    `.user`, `.item`); `None` fetches the latter (`fetch_movielens_100k`).

    Features: `user_id`, `item_id`, `age`, `gender`, `occupation`,
    `zip_prefix` (first three characters), `release_year`, `genres`
    (multi-valued, `|`-separated). Tasks: `like` (`rating >= 4`, binary)
    and `rating` (regression). `timestamp` is kept for time splits and is
    not a feature.

    Returns:
        `(frame, schema, tasks)`.
    """
    path = pathlib.Path(path) if path is not None else fetch_movielens_100k()
    if (path / "u.data").exists():
        frame = _read_grouplens(path)
    elif (path / "ml-100k.inter").exists():
        frame = _read_recbole(path)
    else:
        raise FileNotFoundError(
            f"No MovieLens-100K files in {path}: expected u.data/u.user/u.item "
            "or ml-100k.inter/.user/.item"
        )
    frame["like"] = (frame["rating"] >= like_threshold).astype("int64")
    frame["rating"] = frame["rating"].astype("float32")
    frame = frame[
        ["user_id", "item_id", "age", "gender", "occupation", "zip_prefix",
         "release_year", "genres", "timestamp", "like", "rating"]
    ]
    schema, tasks = movielens_schema(frame)
    return frame, schema, tasks


def movielens_schema(frame):
    """Schema and tasks of a MovieLens frame (or of a training split of it)."""
    return infer_schema(
        frame,
        labels=["like", "rating"],
        kinds={"like": "binary", "rating": "regression"},
        categorical=["user_id", "item_id", "age", "gender", "occupation", "zip_prefix",
                     "release_year"],
        multi_valued=["genres"],
        exclude=["timestamp"],
    )


def _read_grouplens(path):
    ratings = pd.read_csv(path / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(path / "u.user", sep="|", names=["user_id", "age", "gender", "occupation", "zip"],
                        encoding="latin-1")
    items = pd.read_csv(
        path / "u.item", sep="|", encoding="latin-1", header=None,
        names=["item_id", "title", "release_date", "video_release", "url", *GENRES],
    )
    flags = items[list(GENRES)].to_numpy().astype(bool)
    items["genres"] = ["|".join(g for g, on in zip(GENRES, row) if on) for row in flags]
    dates = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce")
    items["release_year"] = dates.dt.year.fillna(-1).astype("int64")
    return _join(ratings, users, items[["item_id", "release_year", "genres"]])


def _read_recbole(path):
    def read(name):
        frame = pd.read_csv(path / f"ml-100k.{name}", sep="\t", dtype=str, keep_default_na=False)
        frame.columns = [c.split(":")[0] for c in frame.columns]
        return frame

    ratings = read("inter")
    ratings = ratings.astype({"user_id": "int64", "item_id": "int64", "rating": "float32",
                              "timestamp": "float64"})
    ratings["timestamp"] = ratings["timestamp"].astype("int64")
    users = read("user").rename(columns={"zip_code": "zip"}).astype({"user_id": "int64", "age": "int64"})
    items = read("item").rename(columns={"class": "genres"})
    items["item_id"] = items["item_id"].astype("int64")
    items["release_year"] = pd.to_numeric(items["release_year"], errors="coerce").fillna(-1).astype("int64")
    items["genres"] = items["genres"].str.split().str.join("|")
    return _join(ratings, users, items[["item_id", "release_year", "genres"]])


def _join(ratings, users, items):
    users = users.assign(zip_prefix=users["zip"].astype(str).str[:3])
    frame = ratings.merge(users[["user_id", "age", "gender", "occupation", "zip_prefix"]],
                          on="user_id", how="left")
    frame = frame.merge(items, on="item_id", how="left")
    frame["genres"] = frame["genres"].fillna("")
    frame["release_year"] = frame["release_year"].fillna(-1).astype("int64")
    return frame.reset_index(drop=True)


def split(frame, fractions=(0.8, 0.1, 0.1), seed=0):
    """Random split into parts of the given fractions (a fixed permutation)."""
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1. Received: {fractions}")
    order = np.random.default_rng(seed).permutation(len(frame))
    bounds = np.cumsum([0] + [int(round(f * len(frame))) for f in fractions[:-1]] + [len(frame)])
    bounds[-1] = len(frame)
    return [frame.iloc[order[a:b]].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]
