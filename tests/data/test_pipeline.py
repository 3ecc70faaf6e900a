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
