"""`tf.data` pipelines: in-memory frames and parquet files read in chunks."""

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
    if targets is None:
        columns = columns_of(frame)
        check_columns(columns, schema)
        parts = ({k: tf.constant(v) for k, v in features_from(columns, schema).items()},)
    else:
        if not isinstance(targets, Targets):
            targets = Targets(targets)
        x, y, weights = prepare_arrays(frame, None, None, schema, targets)
        parts = tuple(
            {k: tf.constant(v) for k, v in part.items()}
            for part in (x, y, weights) if part is not None
        )
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


def parquet_dataset(
    path, schema, targets, batch_size=1024, chunk_rows=262_144, shuffle=True, seed=None
):
    """Batches from a parquet file larger than memory, read a chunk at a time.

    Python runs once per chunk of `chunk_rows` rows (read with pyarrow,
    checked, converted); within a chunk, rows are shuffled and batched by
    `tf.data`. Chunk order is shuffled too when `shuffle` (by row group).
    """
    if not isinstance(targets, Targets):
        targets = Targets(targets)
    file = pq.ParquetFile(path)
    columns = sorted(set(schema.names) | set(targets.columns))
    missing = [c for c in columns if c not in file.schema_arrow.names]
    if missing:
        raise ValueError(f"Column(s) missing from {path}: {missing}")
    example = to_dataset(
        file.read_row_group(0, columns=columns).slice(0, 1).to_pandas(), schema, targets,
        batch_size=1, shuffle=False,
    )
    signature = tf.nest.map_structure(
        lambda s: tf.TensorSpec((None,) + tuple(s.shape[1:]), s.dtype), example.element_spec
    )
    rng = np.random.default_rng(seed)

    def chunks():
        groups = np.arange(file.num_row_groups)
        if shuffle:
            rng.shuffle(groups)
        for batch in file.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=columns):
            frame = batch.to_pandas()
            for part in to_dataset(frame, schema, targets, batch_size=len(frame), shuffle=shuffle,
                                   seed=int(rng.integers(1 << 31))):
                yield part

    dataset = tf.data.Dataset.from_generator(chunks, output_signature=signature)
    batches = -(-file.metadata.num_rows // batch_size)
    dataset = dataset.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)
