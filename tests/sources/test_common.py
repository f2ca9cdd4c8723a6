"""_common: text batches of bounded size, joined back exactly; received values as Arrow text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.sources._common import TEXT, TextBatches, one_batch, record_columns, text_array


def test_blocks_are_cut_into_bounded_batches_and_joined_back_with_missing_columns_as_na() -> None:
    gathered = TextBatches("src", ["a"], batch_rows=4)
    batches = [
        *gathered.add({"a": ["1", "2", "3"]}, origin="p1", rows=[1, 2, 3]),
        *gathered.add({"a": ["4", None], "b": ["x", "y"]}, origin="p2", rows=[1, 3]),  # b first seen
        *gathered.add({"b": ["z"] * 5}, origin="p3", rows=range(1, 6)),
    ]
    gathered.note("p4")  # read, nothing kept
    batches += list(gathered.finish())

    assert [len(batch.frame) for batch in batches] == [4, 4, 2]
    assert [batch.origins for batch in batches] == [["p1", "p2"], ["p2", "p3"], ["p3", "p4"]]
    assert list(batches[0].frame.columns) == ["a", "b", "_origin", "_row"]
    joined = one_batch("src", batches).frame
    assert joined["_origin"].tolist() == ["p1"] * 3 + ["p2"] * 2 + ["p3"] * 5
    assert joined["_row"].tolist() == [1, 2, 3, 1, 3, 1, 2, 3, 4, 5]
    assert joined["a"].isna().tolist() == [False] * 4 + [True] * 6
    assert joined["b"].tolist()[3:] == ["x", "y", "z", "z", "z", "z", "z"] and joined["b"][:3].isna().all()
    assert (joined.drop(columns="_row").dtypes == TEXT).all() and joined["_row"].dtype == "int64"


def test_nothing_read_is_one_empty_batch_with_the_columns_and_origins() -> None:
    gathered = TextBatches("src", ["a", "b"], batch_rows=10)
    gathered.note("empty.jsonl")

    (batch,) = gathered.finish()

    assert len(batch.frame) == 0 and list(batch.frame.columns) == ["a", "b", "_origin", "_row"]
    assert batch.origins == ["empty.jsonl"]


def test_a_full_last_batch_is_not_followed_by_an_empty_one() -> None:
    gathered = TextBatches("src", ["a"], batch_rows=2)

    batches = [*gathered.add({"a": ["1", "2"]}, origin="f", rows=[1, 2]), *gathered.finish()]

    assert [len(batch.frame) for batch in batches] == [2]


def test_values_become_text_as_validation_expects() -> None:
    values = ["x", None, 12, 0.5, True, {"k": [1, "é"]}, Decimal("1.10"), b"\xff"]

    assert text_array(values).to_pylist() == [
        "x", None, "12", "0.5", "true", '{"k":[1,"é"]}', "1.10", "ff"]
    assert text_array(["only", None, "text"]).to_pylist() == ["only", None, "text"]


def test_records_of_mixed_shapes_become_columns_in_first_seen_order() -> None:
    same = record_columns([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    mixed = record_columns([{"a": 1}, {"b": 2, "a": 3}, {}])

    assert {name: list(values) for name, values in same.items()} == {"a": [1, 3], "b": [2, 4]}
    assert mixed == {"a": [1, 3, None], "b": [None, 2, None]}


def test_batch_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_rows"):
        TextBatches("src", [], batch_rows=0)


def test_one_batch_of_one_batch_is_that_batch() -> None:
    gathered = TextBatches("src", ["a"], batch_rows=5)
    batches = [*gathered.add({"a": ["1"]}, origin="f", rows=[1]), *gathered.finish()]

    assert one_batch("src", batches) is batches[0]
