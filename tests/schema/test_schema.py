import numpy as np
import pandas as pd
import pytest

from tfmtl.schema import DenseFeature, Schema, SequenceFeature, SparseFeature, Task, infer_schema


def test_infer_schema_kinds_vocabularies_and_tasks():
    data = pd.DataFrame(
        {
            "user_id": [3, 3, 5, 9, 3, 5],
            "city": ["a", "b", "a", None, "a", "b"],
            "genres": ["x|y", "y", "", "x|z", "z", "y"],
            "tags": [["p", "q"], ["q"], [], ["p"], ["q"], ["r"]],
            "price": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "flag": [True, False, True, True, False, True],
            "click": [1, 0, 1, 1, 0, 0],
            "buy": [1, 0, 0, 1, 0, 0],
            "rating": [4.5, 3.0, 1.0, 2.0, 5.0, 4.0],
            "row": range(6),
        }
    )
    schema, tasks = infer_schema(
        data, labels=["click", "buy", "rating"], masks={"buy": "click"}, exclude=["row"]
    )
    assert schema.names == ("user_id", "city", "genres", "tags", "price", "flag")
    assert schema["user_id"] == SparseFeature("user_id", vocabulary=(3, 5, 9), dtype="int64")
    assert schema["city"].vocabulary == ("a", "b")  # most frequent first, None dropped
    assert isinstance(schema["genres"], SequenceFeature)
    assert schema["genres"].vocabulary == ("y", "x", "z")
    assert isinstance(schema["tags"], SequenceFeature)
    assert schema["price"].mean == pytest.approx(3.6)
    assert schema["price"].variance == pytest.approx(np.var([1, 2, 4, 5, 6]))
    assert schema["flag"].vocabulary == ("True", "False")
    assert [(t.name, t.kind, t.mask) for t in tasks] == [
        ("click", "binary", None), ("buy", "binary", "click"), ("rating", "regression", None)
    ]


def test_infer_schema_hashes_large_vocabularies_and_honours_overrides():
    data = pd.DataFrame({"id": np.arange(500), "code": np.arange(500) % 7, "y": np.arange(500) % 2})
    schema, _ = infer_schema(data, labels=["y"], max_vocabulary=100, dense=["code"])
    assert schema["id"].num_bins == 100 and schema["id"].vocabulary is None
    assert isinstance(schema["code"], DenseFeature)


def test_infer_schema_errors():
    data = pd.DataFrame({"a": [1, 2], "y": [0, 1]})
    with pytest.raises(ValueError, match="empty DataFrame"):
        infer_schema(data.iloc[:0], labels=["y"])
    with pytest.raises(ValueError, match=r"Columns missing from the DataFrame: \['z'\]"):
        infer_schema(data, labels=["z"])
    with pytest.raises(ValueError, match="tasks that have no label"):
        infer_schema(data, labels=["y"], masks={"cvr": "a"})


def test_schema_config_round_trip_and_shared_tables():
    schema = Schema(
        [
            SparseFeature("item", vocabulary=("a", "b"), shared_embedding="items"),
            SequenceFeature("history", vocabulary=("b", "c"), shared_embedding="items"),
            SparseFeature("user", num_bins=10, dtype="int64"),
            DenseFeature("price", 1.0, 2.0),
        ]
    )
    assert Schema.from_config(schema.get_config()) == schema
    assert schema.table_vocabulary("items") == ("a", "b", "c")
    assert schema.field_names == ("item", "history", "user")
    assert schema.select(["price", "item"]).names == ("item", "price")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SparseFeature("a"), "exactly one of `vocabulary` and `num_bins`"),
        (lambda: SparseFeature("a", vocabulary=("x",), num_bins=3), "exactly one"),
        (lambda: SparseFeature("a", vocabulary=("x", "x")), "repeated"),
        (lambda: SparseFeature("a", num_bins=1), "num_bins"),
        (lambda: SparseFeature("a", num_bins=4, dtype="float"), "dtype"),
        (lambda: SequenceFeature("a", num_bins=4, combiner="max"), "combiner"),
        (lambda: SequenceFeature("a", vocabulary=("", "x")), "empty string"),
        (lambda: DenseFeature("a", variance=-1.0), "variance"),
        (lambda: DenseFeature("a", mean=float("nan")), "finite"),
        (lambda: Task("a", kind="classification"), "kind"),
        (lambda: Task("a", loss_weight=-1), "loss_weight"),
        (lambda: Task("a", kind="regression", label=("x", "y")), "product"),
        (lambda: Schema([]), "at least one"),
        (lambda: Schema([DenseFeature("a"), DenseFeature("a")]), "Repeated feature names"),
        (lambda: Schema([SparseFeature("a", num_bins=3, shared_embedding="t"),
                         SparseFeature("b", vocabulary=("x",), shared_embedding="t")]), "same num_bins"),
        (lambda: Schema([SparseFeature("a", num_bins=3, shared_embedding="t", dtype="int64"),
                         SparseFeature("b", num_bins=3, shared_embedding="t")]), "one dtype"),
    ],
)
def test_bad_specs_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_task_label_defaults_and_products():
    assert Task("like").label == "like"
    assert Task("ctcvr", label=["click", "buy"]).label_columns == ("click", "buy")
    assert Task("cvr", label="buy", mask="click").columns == ("buy", "click")
    assert Task.from_config(Task("x", "regression", "y", 0.5, "m").get_config()) == Task(
        "x", "regression", "y", 0.5, "m"
    )


def test_a_regression_task_starts_its_head_at_the_label_mean():
    frame = pd.DataFrame({"user": ["a", "b", "a", "c"], "click": [1, 0, 1, 1],
                          "rating": [4.0, 1.0, 3.0, 5.0], "dwell": [10.0, 99.0, 20.0, 30.0]})
    _, tasks = infer_schema(frame, labels=["click", "rating", "dwell"],
                            kinds={"rating": "regression", "dwell": "regression"},
                            masks={"dwell": "click"})
    by_name = {t.name: t for t in tasks}
    assert by_name["click"].initial_bias is None
    assert by_name["rating"].initial_bias == pytest.approx(3.25)
    assert by_name["dwell"].initial_bias == pytest.approx(20.0)  # the masked-out row is not counted
    assert Task.from_config(by_name["rating"].get_config()) == by_name["rating"]
    with pytest.raises(ValueError, match="initial_bias must be a finite number"):
        Task("x", "regression", initial_bias=float("nan"))
