"""`tf.data` pipelines: in-memory frames and parquet files read in chunks."""

import glob
import os
import zlib

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from tfmtl.data.arrays import check_columns, columns_of, features_from
from tfmtl.data.targets import Targets, prepare_arrays


def to_dataset(frame, schema, targets=None, batch_size=1024, shuffle=True, seed=None):
    """A prefetched `tf.data.Dataset` of `(x, y[, sample_weight])` batches.

    The frame is checked and its targets made once (`Targets`), converted to
    tensors, and each batch is one `tf.gather` of a batch of row indices,
    reshuffled every epoch when `shuffle`: no Python runs per batch.

    Args:
        frame: DataFrame or dict of column arrays.
        schema: `Schema`.
        targets: a model's `Targets` (`model.targets`, which knows its
            derived outputs and facets), a list of `Task`, or `None` for
            feature batches only (for prediction).
        batch_size: int. Defaults to `1024`.
        shuffle: bool. Defaults to `True`.
        seed: int or `None`. Shuffle seed.
    """
    if targets is not None and not isinstance(targets, Targets):
        targets = Targets(targets)
    parts = tuple({k: tf.constant(v) for k, v in part.items()}
                  for part in _arrays(frame, schema, targets))
    rows = len(next(iter(parts[0].values())))
    indices = tf.data.Dataset.range(rows)
    if shuffle:
        indices = indices.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size)
    dataset = batches.map(
        lambda idx: tf.nest.map_structure(lambda t: tf.gather(t, idx), parts),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if len(parts) == 1:
        dataset = dataset.map(lambda p: p[0] if isinstance(p, tuple) else p)
    return dataset.prefetch(tf.data.AUTOTUNE)


def parquet_files(path):
    """The parquet files of `path`: a file, a directory (every `*.parquet` under it, in
    name order), a glob pattern, or a list of any of these."""
    if isinstance(path, (list, tuple)):
        files = [f for p in path for f in parquet_files(p)]
    else:
        text = str(path)
        if os.path.isdir(text):
            files = sorted(glob.glob(os.path.join(text, "**", "*.parquet"), recursive=True))
        elif any(c in text for c in "*?["):
            files = sorted(glob.glob(text, recursive=True))
        elif os.path.exists(text):
            files = [text]
        else:
            raise ValueError(f"No parquet data at {text}: not a file, a directory or a pattern "
                             "that matches files.")
    if not files:
        raise ValueError(f"No .parquet files in {path}.")
    return files


def split_draws(seed, file, group, rows):
    """Each row's uniform draw for `split`: a function of the seed, the file's name (not its
    folder: adding or moving files leaves the other files' parts as they were), the row group
    and the row; the same in every pass and process."""
    key = zlib.crc32(os.path.basename(str(file)).encode())
    return np.random.default_rng([int(seed or 0), key, group]).random(rows)


def parquet_dataset(
    path, schema, targets=None, batch_size=1024, chunk_rows=262_144, shuffle=True, seed=None,
    split=None,
):
    """Batches streamed from parquet files larger than memory, a chunk at a time.

    Python runs once per chunk of at most `chunk_rows` rows (read with
    pyarrow, checked, converted); within a chunk rows are shuffled, and
    `tf.data` rebatches chunks into batches of `batch_size`. With `shuffle`,
    the order of the files and of each file's row groups is shuffled too
    (seeded, and new each pass). Memory holds about one chunk and the
    prefetched batches, whatever the files' total size.

    Args:
        path: a parquet file, a directory of them, a glob pattern or a list
            (`parquet_files`).
        schema: `Schema`.
        targets: a model's `Targets` (`model.targets`), a list of `Task`, or
            `None` for feature batches only (prediction).
        batch_size: int. Defaults to `1024`.
        chunk_rows: int. Rows read and converted at once.
        shuffle: bool. Defaults to `True`.
        seed: int or `None`. Seeds the shuffles and `split`.
        split: `None` (every row), or `(fractions, part)`: rows are assigned
            to parts by a seeded draw per row (`split_draws`), e.g.
            `((0.8, 0.1, 0.1), 1)` streams the 10% validation rows. The parts
            are disjoint and the same on every pass, worker and call with the
            same seed, with no pass over the data to make them.

    Returns:
        A `tf.data.Dataset` whose cardinality is the number of batches.
    """
    if targets is not None and not isinstance(targets, Targets):
        targets = Targets(targets)
    names = parquet_files(path)
    files = [pq.read_metadata(f) for f in names]  # footers only: files are opened as read
    columns = sorted(set(schema.names) | set(targets.columns if targets is not None else ()))
    for file, name in zip(files, names):
        missing = [c for c in columns if c not in file.schema.to_arrow_schema().names]
        if missing:
            raise ValueError(f"Column(s) missing from {name}: {missing}")
    keep = _split_rule(split)
    first = next((n for n, f in zip(names, files) if f.num_rows), None)
    if first is None:
        raise ValueError(f"The parquet data at {path} has no rows.")
    example = to_dataset(pq.ParquetFile(first).read_row_group(0, columns=columns).slice(0, 1)
                         .to_pandas(), schema, targets, batch_size=1, shuffle=False)
    signature = tf.nest.map_structure(
        lambda s: tf.TensorSpec((None,) + tuple(s.shape[1:]), s.dtype), example.element_spec)
    groups = [(i, g) for i, f in enumerate(files) for g in range(f.num_row_groups)]
    rows = sum(int(keep(split_draws(seed, names[i], g, files[i].row_group(g).num_rows)).sum())
               for i, g in groups) if keep else sum(f.num_rows for f in files)
    if rows == 0:
        raise ValueError(f"No rows of {path} fall in split part {split[1]}.")
    rng = np.random.default_rng(seed)

    def chunks():
        order = list(groups)
        if shuffle:
            order = [order[i] for i in rng.permutation(len(order))]
        for frame in _frames(names, files, order, columns, chunk_rows, keep, seed):
            # NumPy only: a tf.data pipeline made per chunk would add its functions to the
            # process's function library for good (memory that grows with the data).
            yield _chunk_arrays(frame, schema, targets, rng if shuffle else None)

    dataset = tf.data.Dataset.from_generator(chunks, output_signature=signature)
    batches = -(-rows // batch_size)
    dataset = dataset.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _arrays(frame, schema, targets):
    """`(x,)` or `(x, y[, weights])` of NumPy arrays from a frame, checked."""
    if targets is None:
        columns = columns_of(frame)
        check_columns(columns, schema)
        return (features_from(columns, schema),)
    x, y, weights = prepare_arrays(frame, None, None, schema, targets)
    return tuple(part for part in (x, y, weights) if part is not None)


def _chunk_arrays(frame, schema, targets, rng):
    """One chunk as `to_dataset` gives it, checked and converted, rows shuffled by `rng`."""
    parts = _arrays(frame, schema, targets)
    if rng is not None:
        order = rng.permutation(len(frame))
        parts = tuple({k: np.asarray(v)[order] for k, v in part.items()} for part in parts)
    return parts[0] if len(parts) == 1 else parts


def parquet_chunks(path, columns=None, chunk_rows=262_144, split=None, seed=None):
    """DataFrames of at most `chunk_rows` rows from parquet files, in file and row order (for
    `tfmtl.schema.infer_schema_streaming`); `split` and `seed` as for `parquet_dataset`."""
    names = parquet_files(path)
    files = [pq.read_metadata(f) for f in names]
    groups = [(i, g) for i, f in enumerate(files) for g in range(f.num_row_groups)]
    return _frames(names, files, groups, columns, chunk_rows, _split_rule(split), seed)


def parquet_schema(path, labels, chunk_rows=262_144, split=None, seed=None, **kwargs):
    """`infer_schema` of parquet files larger than memory, in one streaming pass
    (`tfmtl.schema.infer_schema_streaming`); `split` and `seed` pick the rows as
    `parquet_dataset` does (e.g. the training part), `kwargs` go to the inference."""
    from tfmtl.schema.streaming import infer_schema_streaming

    return infer_schema_streaming(parquet_chunks(path, None, chunk_rows, split, seed), labels,
                                  **kwargs)


def _frames(names, files, groups, columns, chunk_rows, keep, seed):
    """Chunks of the row groups `groups` (pairs of file index and row group). Each row group
    is read from a file opened for it and closed after: an open `ParquetFile` keeps the
    buffers it has read, so keeping every file open grows memory with the data."""
    for i, g in groups:
        draws = (split_draws(seed, names[i], g, files[i].row_group(g).num_rows) if keep
                 else None)
        offset = 0
        with pq.ParquetFile(names[i]) as file:
            for batch in file.iter_batches(batch_size=chunk_rows, row_groups=[g],
                                           columns=columns):
                frame = batch.to_pandas()
                if keep is not None:
                    frame = frame[keep(draws[offset:offset + len(frame)])]
                offset += batch.num_rows
                if len(frame):
                    yield frame


def _split_rule(split):
    if split is None:
        return None
    fractions, part = split
    fractions = np.asarray(fractions, dtype="float64")
    if (fractions <= 0).any() or not np.isclose(fractions.sum(), 1.0) or not (
            0 <= part < len(fractions)):
        raise ValueError(f"split must be (fractions summing to 1, a part index). "
                         f"Received: {split}")
    edges = np.concatenate([[0.0], np.cumsum(fractions)])
    edges[-1] = np.inf
    low, high = edges[part], edges[part + 1]
    return lambda draws: (draws >= low) & (draws < high)
