import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfmtl
import zoo
from tfmtl.data import parquet_dataset, to_dataset


def frame(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user": rng.integers(0, 50, n), "city": rng.choice(["a", "b", "c"], n),
        "tags": ["x|y" if i % 3 else "" for i in range(n)], "price": rng.normal(size=n),
        "click": rng.integers(0, 2, n), "buy": rng.integers(0, 2, n), "row": np.arange(n),
    })


def test_to_dataset_batches_every_row_once_with_masks():
    data = frame()
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"], masks={"buy": "click"},
                                       exclude=["row"])
    schema = tfmtl.Schema(list(schema) + [tfmtl.DenseFeature("row")])
    dataset = to_dataset(data, schema, tasks, batch_size=128, seed=1)
    x, y, w = next(iter(dataset))
    assert x["user"].dtype == tf.int64 and x["city"].dtype == tf.string
    assert y["click"].shape == (128, 1) and w["buy"].shape == (128,)
    epochs = []
    for epoch in range(2):
        seen = np.concatenate([b[0]["row"].numpy() for b in dataset])
        epochs.append(seen)
        assert sorted(seen.astype(int)) == list(range(1000))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    for x, y, w in dataset.take(3):
        row = x["row"].numpy().astype(int)
        np.testing.assert_array_equal(w["buy"].numpy(), data.click.to_numpy()[row])
        np.testing.assert_array_equal(y["buy"].numpy()[:, 0], (data.buy * data.click).to_numpy()[row])
        np.testing.assert_array_equal(w["click"].numpy(), np.ones(len(row)))


def test_to_dataset_refuses_bad_labels():
    data = frame(20).assign(click=[2] + [0] * 19)
    schema, tasks = tfmtl.infer_schema(frame(20), labels=["click"])
    with pytest.raises(ValueError, match="not 0 or 1"):
        to_dataset(data, schema, tasks)


def test_parquet_read_in_chunks_gives_every_row(tmp_path):
    data = frame(2500)
    path = tmp_path / "data.parquet"
    data.to_parquet(path, row_group_size=700)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"], exclude=["row"])
    schema = tfmtl.Schema(list(schema) + [tfmtl.DenseFeature("row")])
    dataset = parquet_dataset(path, schema, tasks, batch_size=256, chunk_rows=600, seed=0)
    sizes, rows = [], []
    for x, y in dataset:
        sizes.append(len(x["row"]))
        rows.append(x["row"].numpy().astype(int))
        np.testing.assert_array_equal(y["click"].numpy()[:, 0], data.click.to_numpy()[rows[-1]])
    assert sorted(np.concatenate(rows)) == list(range(2500))
    assert max(sizes) == 256
    assert len(sizes) == int(dataset.cardinality()) == 10  # ceil(2500 / 256)
    m = zoo.build("mmoe", schema, tasks, num_experts=2, expert_units=(8,))
    m.compile()
    history = m.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_parquet_missing_column(tmp_path):
    data = frame(10)
    data.drop(columns=["city"]).to_parquet(tmp_path / "d.parquet")
    schema, tasks = tfmtl.infer_schema(data, labels=["click"])
    with pytest.raises(ValueError, match=r"missing from .*\['city'\]"):
        parquet_dataset(tmp_path / "d.parquet", schema, tasks)


def _directory(tmp_path, data, files=3):
    folder = tmp_path / "rows"
    (folder / "part").mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(data)), files)):
        where = folder / "part" if i == 0 else folder  # files in sub-folders count too
        data.iloc[part].to_parquet(where / f"{i:03d}.parquet", row_group_size=300)
    return folder


def test_parquet_directory_streams_every_row_once_and_splits_rows_disjointly(tmp_path):
    data = frame(2000)
    folder = _directory(tmp_path, data)
    schema, tasks = tfmtl.infer_schema(data, labels=["click", "buy"], exclude=["row"])
    schema = tfmtl.Schema(list(schema) + [tfmtl.DenseFeature("row")])
    everything = parquet_dataset(folder, schema, tasks, batch_size=128, chunk_rows=250, seed=3)
    rows = np.concatenate([x["row"].numpy() for x, _ in everything]).astype(int)
    assert sorted(rows) == list(range(2000)) and int(everything.cardinality()) == 16
    parts = []
    for part in range(3):
        dataset = parquet_dataset(folder, schema, tasks, batch_size=128, chunk_rows=250, seed=3,
                                  split=((0.8, 0.1, 0.1), part))
        seen = [x["row"].numpy().astype(int) for x, _ in dataset]
        assert len(seen) == int(dataset.cardinality())  # counted without reading the data
        again = np.concatenate([x["row"].numpy() for x, _ in dataset]).astype(int)
        parts.append(np.concatenate(seen))
        assert sorted(again) == sorted(parts[-1])  # the same rows on every pass
    assert sorted(np.concatenate(parts)) == list(range(2000))  # disjoint and complete
    assert 1400 < len(parts[0]) < 1800 and 100 < len(parts[1]) < 300
    features = parquet_dataset(folder, schema, batch_size=500, shuffle=False)
    first = next(iter(features))
    assert isinstance(first, dict) and len(first["row"]) == 500  # no targets: features only


def test_streaming_schema_equals_infer_schema_on_the_whole_frame(tmp_path):
    data = frame(3000, seed=1).assign(
        score=lambda f: f.price * 2 + 3, code=lambda f: (f.user * 7) % 11,
        rating=lambda f: f.user % 5 + 1.0, visits=lambda f: f.user % 9)
    data.loc[data.index % 7 == 0, "price"] = np.nan
    folder = _directory(tmp_path, data)
    # Blanks in the last file only, as a writer without pandas' metadata leaves them: pandas
    # reads the column as floats there and on the whole folder (dense), as ints elsewhere.
    import pyarrow as pa
    import pyarrow.parquet as pq

    last = folder / "002.parquet"
    table = pq.read_table(last).replace_schema_metadata(None)
    visits = table.column("visits").to_pylist()
    visits[5] = None
    table = table.set_column(table.schema.get_field_index("visits"), "visits",
                             pa.array(visits, pa.int64()))
    pq.write_table(table, last, row_group_size=300)
    kwargs = dict(labels=["click", "buy", "rating"], masks={"buy": "click"}, exclude=["row"])
    whole, tasks = tfmtl.infer_schema(pd.read_parquet(folder), **kwargs)
    assert isinstance(whole["visits"], tfmtl.DenseFeature)
    streamed, streamed_tasks = tfmtl.data.parquet_schema(folder, chunk_rows=400, **kwargs)
    assert streamed.names == whole.names and streamed.rows == 3000
    for a, b in zip(whole, streamed):
        config_a, config_b = a.get_config(), b.get_config()
        for key in ("mean", "variance"):
            if key in config_a:
                np.testing.assert_allclose(config_b.pop(key), config_a.pop(key), rtol=1e-9)
        assert config_a == config_b
    assert [t.get_config() for t in tasks] == [t.get_config() for t in streamed_tasks]
    assert tasks[2].kind == "regression" and tasks[2].initial_bias is not None


def test_streaming_schema_hashes_a_column_past_the_vocabulary_limit(tmp_path):
    from tfmtl.schema import infer_schema_streaming
    from tfmtl.schema.streaming import COUNT_LIMIT

    data = frame(4000).assign(item=np.arange(4000) * 13)
    counted = []

    def chunks():  # the item column's count table, after each chunk is added
        for i in range(0, 4000, 500):
            yield data.iloc[i:i + 500]
            counted.append(None)

    from tfmtl.schema import streaming

    original = streaming._Stats.add

    def add(self, chunk):
        original(self, chunk)
        counted.append(self.features["item"]["counts"])

    streaming._Stats.add = add
    try:
        schema, _ = infer_schema_streaming(chunks(), labels=["click"], exclude=["row"],
                                           max_vocabulary=100)
    finally:
        streaming._Stats.add = original
    assert schema["item"].num_bins == 100 and schema["item"].vocabulary is None
    assert schema["user"].vocabulary is not None  # 50 values: kept
    sizes = [None if c is None else len(c) for c in counted[::2]]
    # 500 new values per chunk: counted until past COUNT_LIMIT x 100, then dropped
    assert sizes[0] == 500 > COUNT_LIMIT * 100 or sizes[0] is None
    assert all(s is None for s in sizes[1:]), sizes
    with pytest.raises(ValueError, match="no rows"):
        infer_schema_streaming([], labels=["click"])
