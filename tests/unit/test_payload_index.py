"""Unit tests for ``server.engine.payload_index``: per-field indexes and filter candidates."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any
from unittest import mock

import pytest
from pyroaring import BitMap

from server.engine import payload_index
from server.engine.field_matchers import ValueTest
from server.engine.filters import FieldCondition, Filter, parse_filter
from server.engine.payload_index import (
    FIELD_TYPES,
    PayloadIndexes,
    make_field_index,
)
from server.errors import BadRequest, UnsupportedFeature

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
Payload = dict[str, Any]


def indexes_of(schema: Mapping[str, str], payloads: list[Payload]) -> PayloadIndexes:
    """Indexes filled row by row (the appendable segment's way)."""
    indexes = PayloadIndexes(schema)
    for row, payload in enumerate(payloads):
        indexes.add(row, payload)
    return indexes


def parse(raw: dict[str, Any]) -> Filter:
    parsed = parse_filter(raw)
    assert parsed is not None
    return parsed


def value_test(raw: dict[str, Any]) -> ValueTest:
    """The value test of a one-condition filter."""
    condition = parse(raw).must[0]
    assert isinstance(condition, FieldCondition)
    return condition.test


def candidates(indexes: PayloadIndexes, raw: dict[str, Any], row_count: int) -> set[int] | None:
    found = indexes.candidates(parse(raw), row_count)
    return None if found is None else set(found)


def matching(raw: dict[str, Any], payloads: list[Payload]) -> set[int]:
    flt = parse(raw)
    return {row for row, p in enumerate(payloads) if flt.matches(row, p, lambda name: False)}


def must(key: str, **test: Any) -> dict[str, Any]:
    return {"must": [{"key": key, **test}]}


# --- the registry --------------------------------------------------------------------


def test_field_types_are_the_documented_list() -> None:
    assert FIELD_TYPES == ("keyword", "integer", "float", "bool", "datetime", "uuid", "text")
    assert [make_field_index("f", kind).type for kind in FIELD_TYPES] == list(FIELD_TYPES)


def test_unknown_index_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature):
        make_field_index("f", "geo")


def test_bad_field_path_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        make_field_index("a..b", "keyword")


def test_schema_types_quiver_cannot_index_are_skipped() -> None:
    indexes = PayloadIndexes({"city": "keyword", "where": "geo", "n": {"type": "integer"}})
    assert {field: index.type for field, index in indexes.fields.items()} == {
        "city": "keyword",
        "n": "integer",
    }


# --- keyword -------------------------------------------------------------------------

CITIES: list[Payload] = [
    {"city": "Paris"},
    {"city": ["Berlin", "Paris"]},
    {"city": None},
    {},
    {"city": 7},
]


def test_keyword_match_value_finds_rows_holding_the_value_in_arrays_too() -> None:
    indexes = indexes_of({"city": "keyword"}, CITIES)
    assert candidates(indexes, must("city", match={"value": "Paris"}), 5) == {0, 1}


def test_keyword_index_on_strings_only_is_exact() -> None:
    payloads = CITIES[:4]
    indexes = indexes_of({"city": "keyword"}, payloads)
    for raw in (
        must("city", match={"value": "Paris"}),
        must("city", match={"any": ["Berlin", "Rome"]}),
        must("city", match={"except": ["Paris"]}),
        must("city", match={"value": 1}),
    ):
        assert candidates(indexes, raw, 4) == matching(raw, payloads)


def test_keyword_except_keeps_a_row_with_another_value_and_drops_null_and_missing() -> None:
    indexes = indexes_of({"city": "keyword"}, CITIES[:4])
    assert candidates(indexes, must("city", match={"except": ["Paris"]}), 4) == {1}


def test_values_of_the_wrong_type_are_not_indexed_but_stay_candidates() -> None:
    indexes = indexes_of({"city": "keyword"}, CITIES)
    assert indexes.fields["city"].entries() == [("Berlin", 1), ("Paris", 0), ("Paris", 1)]
    assert indexes.points("city") == 2
    assert candidates(indexes, must("city", match={"value": 7}), 5) == {4}
    assert candidates(indexes, must("city", range={"gt": 0}), 5) == {4}
    assert candidates(indexes, must("city", match={"value": True}), 5) == set()


def test_keyword_prefix_is_answered_from_the_vocabulary() -> None:
    indexes = indexes_of({"city": "keyword"}, CITIES[:4])
    assert candidates(indexes, must("city", match={"prefix": "Ber"}), 4) == {1}


# --- integer / float -----------------------------------------------------------------

NUMBERS: list[Payload] = [
    {"n": 1},
    {"n": 2.5},
    {"n": True},
    {"n": [3, 10]},
    {"n": "4"},
    {},
    {"n": -5},
]


def test_integer_index_holds_ints_but_not_bools_or_floats() -> None:
    index = make_field_index("n", "integer")
    for row, payload in enumerate(NUMBERS):
        index.add(row, payload)
    assert index.entries() == [(-5, 6), (1, 0), (3, 3), (10, 3)]
    assert index.rows_with_value() == BitMap([0, 3, 6])
    assert index.rows_with_other_values() == BitMap([1, 2, 4])


def test_integer_match_keeps_bools_apart() -> None:
    payloads: list[Payload] = [{"n": 1}, {"n": True}, {"n": [0, 1]}]
    indexes = indexes_of({"n": "integer"}, payloads)
    assert candidates(indexes, must("n", match={"value": 1}), 3) == {0, 2}
    index = indexes.fields["n"]
    assert index.match(value_test(must("n", match={"value": 1})))[0] == BitMap([0, 2])
    assert candidates(indexes, must("n", match={"value": True}), 3) == {1}


def test_integer_range_with_float_bounds_is_exact() -> None:
    payloads: list[Payload] = [{"n": v} for v in range(-3, 4)]
    indexes = indexes_of({"n": "integer"}, payloads)
    for bounds in ({"gt": 0.5}, {"gte": -1.5, "lt": 2}, {"lte": 1.0}, {"gt": 3}, {}):
        raw = must("n", range=bounds)
        assert candidates(indexes, raw, 7) == matching(raw, payloads)


def test_integer_except_and_any() -> None:
    payloads: list[Payload] = [{"n": 1}, {"n": [1, 2]}, {"n": 3}, {"n": None}]
    indexes = indexes_of({"n": "integer"}, payloads)
    assert candidates(indexes, must("n", match={"except": [1]}), 4) == {1, 2}
    assert candidates(indexes, must("n", match={"any": [2, 3]}), 4) == {1, 2}
    assert candidates(indexes, must("n", match={"except": ["a"]}), 4) == {0, 1, 2}


def test_float_range_treats_ints_and_floats_numerically() -> None:
    indexes = indexes_of({"n": "float"}, NUMBERS)
    raw = must("n", range={"gte": 1, "lt": 3.5})
    assert candidates(indexes, raw, 7) == {0, 1, 3}
    assert indexes.fields["n"].match(value_test(raw))[0] == BitMap([0, 1, 3])


@pytest.mark.parametrize(
    "bounds",
    [{"gt": 1, "gte": 1}, {"gte": 1.0, "lt": 2.5}, {"lt": 2.5, "lte": 2.5}, {"gt": float("-inf")}],
)
def test_float_range_picks_the_tightest_bounds(bounds: dict[str, float]) -> None:
    payloads: list[Payload] = [{"n": v} for v in (0, 1, 1.0, 2.5, 3, float("inf"))]
    indexes = indexes_of({"n": "float"}, payloads)
    raw = must("n", range=bounds)
    assert candidates(indexes, raw, 6) == matching(raw, payloads)


def test_rows_mask_marks_the_candidates() -> None:
    assert payload_index.rows_mask(BitMap([0, 2, 9]), 4).tolist() == [True, False, True, False]


def test_float_match_on_an_integer_is_only_possible() -> None:
    payloads: list[Payload] = [{"n": 1}, {"n": 1.0}]
    indexes = indexes_of({"n": "float"}, payloads)
    certain, possible = indexes.fields["n"].match(value_test(must("n", match={"value": 1})))
    assert (certain, possible) == (BitMap(), BitMap([0, 1]))
    assert matching(must("n", match={"value": 1}), payloads) == {0}


# --- bool / datetime / uuid ----------------------------------------------------------


def test_bool_index_keeps_true_apart_from_one() -> None:
    payloads: list[Payload] = [{"b": True}, {"b": 1}, {"b": [False, True]}, {"b": False}]
    indexes = indexes_of({"b": "bool"}, payloads)
    assert candidates(indexes, must("b", match={"value": True}), 4) == {0, 2}
    assert candidates(indexes, must("b", match={"value": 1}), 4) == {1}
    assert candidates(indexes, {"must_not": [{"key": "b", "match": {"value": True}}]}, 4) == {
        1,
        3,
    }


DATES: list[Payload] = [
    {"t": "2024-01-01T00:00:00Z"},
    {"t": "2024-01-01T02:00:00+02:00"},  # the same instant as row 0
    {"t": ["2023-06-01", "2025-01-01T00:00:00.000001Z"]},
    {"t": "not a date"},
    {"t": 1704067200},
]


def test_datetime_index_stores_instants() -> None:
    index = make_field_index("t", "datetime")
    index.build(DATES)
    assert [row for _, row in index.entries()] == [2, 0, 1, 2]
    assert index.rows_with_other_values() == BitMap([3, 4])


@pytest.mark.parametrize(
    "bounds",
    [
        {"gte": "2024-01-01T00:00:00Z"},
        {"gt": "2024-01-01T00:00:00Z"},
        {"lt": "2024-01-01T01:00:00+01:00"},
        {"gt": "2025-01-01T00:00:00Z", "lte": "2025-01-01T00:00:00.000001Z"},
        {"lt": "2023-01-01"},
    ],
)
def test_datetime_range_matches_the_filter(bounds: dict[str, str]) -> None:
    payloads = DATES[:3]
    indexes = indexes_of({"t": "datetime"}, payloads)
    raw = must("t", range=bounds)
    assert candidates(indexes, raw, 3) == matching(raw, payloads)


def test_uuid_index_canonicalises_and_answers_spellings_as_possible() -> None:
    payloads: list[Payload] = [{"u": UUID}, {"u": UUID.upper()}, {"u": "nope"}, {"u": [UUID, 3]}]
    index = make_field_index("u", "uuid")
    index.build(payloads)
    assert index.entries() == [(UUID, 0), (UUID, 1), (UUID, 3)]
    test = value_test(must("u", match={"value": UUID}))
    assert index.match(test) == (BitMap([0, 3]), BitMap([0, 1, 3]))
    indexes = indexes_of({"u": "uuid"}, payloads)
    raw = {"must_not": [{"key": "u", "match": {"value": UUID}}]}
    assert candidates(indexes, raw, 4) == {1, 2}
    assert matching(raw, payloads) == {1, 2}


def test_uuid_tests_on_other_spellings_are_only_possible() -> None:
    index = make_field_index("u", "uuid")
    index.build([{"u": UUID}, {"u": UUID.upper()}])
    lower = value_test(must("u", match={"substring": "c793"}))
    assert index.match(lower) == (BitMap([0]), BitMap([0, 1]))
    upper = value_test(must("u", match={"substring": "C793"}))
    assert index.match(upper) == (BitMap(), BitMap([1]))


# --- paths and arrays ----------------------------------------------------------------


def test_nested_paths_index_what_filters_select() -> None:
    payloads: list[Payload] = [
        {"a": {"b": "x"}},
        {"a": [{"b": "x"}, {"b": "y"}]},
        {"a": {"b": ["y", "x"]}},
        {"a": "x"},
    ]
    indexes = indexes_of({"a.b": "keyword", "a[].b": "keyword"}, payloads)
    for key in ("a.b", "a[].b"):
        raw = must(key, match={"value": "x"})
        assert candidates(indexes, raw, 4) == matching(raw, payloads)


def test_must_not_over_an_array_drops_a_row_holding_the_value() -> None:
    payloads: list[Payload] = [{"tags": ["a", "b"]}, {"tags": ["b"]}, {}]
    indexes = indexes_of({"tags": "keyword"}, payloads)
    raw = {"must_not": [{"key": "tags", "match": {"value": "a"}}]}
    assert candidates(indexes, raw, 3) == {1, 2} == matching(raw, payloads)


def test_must_not_of_a_partially_answered_condition_constrains_nothing() -> None:
    indexes = indexes_of({"tags": "keyword"}, [{"tags": "a"}, {"tags": 1}])
    raw = {"must_not": [{"key": "tags", "match": {"text": "a"}}]}
    assert candidates(indexes, raw, 2) == {1}  # the keyword scan is exact here
    raw = {"must_not": [{"key": "other", "match": {"value": "a"}}]}
    assert candidates(indexes, raw, 2) is None


@pytest.mark.parametrize(
    ("condition", "rows"),
    [
        ({"is_empty": {"key": "k"}}, {2, 3, 4}),
        ({"is_null": {"key": "k"}}, {3, 5}),
        ({"key": "k", "is_empty": False}, {0, 1, 5}),
    ],
)
def test_is_empty_and_is_null_are_exact(condition: dict[str, Any], rows: set[int]) -> None:
    payloads: list[Payload] = [{"k": "a"}, {"k": 5}, {"k": []}, {"k": None}, {}, {"k": [None]}]
    indexes = indexes_of({"k": "keyword"}, payloads)
    raw = {"must": [condition]}
    assert candidates(indexes, raw, 6) == rows == matching(raw, payloads)


# --- combining conditions ------------------------------------------------------------


def test_unindexed_conditions_give_no_constraint() -> None:
    indexes = indexes_of({"k": "keyword"}, [{"k": "a"}])
    assert candidates(indexes, must("other", match={"value": "a"}), 1) is None
    assert candidates(indexes, {"must": [{"has_id": [1]}]}, 1) is None
    nested = {"nested": {"key": "k", "filter": {"must": [{"key": "x", "match": {"value": 1}}]}}}
    assert candidates(indexes, {"must": [nested]}, 1) is None


def test_should_constrains_only_when_every_branch_is_indexed() -> None:
    payloads: list[Payload] = [{"k": "a", "n": 1}, {"k": "b", "n": 2}, {"k": "c", "n": 3}]
    indexes = indexes_of({"k": "keyword", "n": "integer"}, payloads)
    both = {"should": [{"key": "k", "match": {"value": "a"}}, {"key": "n", "range": {"gte": 3}}]}
    assert candidates(indexes, both, 3) == {0, 2}
    half = {"should": [{"key": "k", "match": {"value": "a"}}, {"has_id": [1]}]}
    assert candidates(indexes, half, 3) is None


def test_must_intersects_and_min_should_counts() -> None:
    payloads: list[Payload] = [{"k": "a", "n": 1}, {"k": "a", "n": 2}, {"k": "b", "n": 2}]
    indexes = indexes_of({"k": "keyword", "n": "integer"}, payloads)
    both = {"must": [{"key": "k", "match": {"value": "a"}}, {"key": "n", "match": {"value": 2}}]}
    assert candidates(indexes, both, 3) == {1}
    conditions = [
        {"key": "k", "match": {"value": "a"}},
        {"key": "n", "match": {"value": 2}},
        {"key": "n", "range": {"lt": 2}},
    ]
    raw = {"min_should": {"conditions": conditions, "min_count": 2}}
    assert candidates(indexes, raw, 3) == {0, 1} == matching(raw, payloads)


def test_candidates_stay_inside_the_row_count() -> None:
    indexes = indexes_of({"k": "keyword"}, [{"k": "a"}, {"k": "b"}])
    assert candidates(indexes, {"must_not": [{"key": "k", "match": {"value": "a"}}]}, 2) == {1}


# --- updates -------------------------------------------------------------------------


def test_remove_forgets_the_row() -> None:
    schema = {"k": "keyword", "n": "integer"}
    indexes = indexes_of(schema, [{"k": "a", "n": 1}, {"k": "a", "n": 2}])
    indexes.remove(0, {"k": "a", "n": 1})
    assert candidates(indexes, must("k", match={"value": "a"}), 2) == {1}
    assert candidates(indexes, must("n", range={"lt": 5}), 2) == {1}
    assert indexes.points("k") == indexes.points("n") == 1


def test_move_is_the_swap_remove_of_an_appendable_segment() -> None:
    payloads: list[Payload] = [{"k": "a", "n": 1}, {"k": "b", "n": 2}, {"k": ["c", "a"], "n": 3}]
    indexes = indexes_of({"k": "keyword", "n": "integer"}, payloads)
    indexes.remove(0, payloads[0])
    indexes.move(2, 0, payloads[2])
    rebuilt = PayloadIndexes({"k": "keyword", "n": "integer"})
    rebuilt.build([payloads[2], payloads[1]])
    for field in ("k", "n"):
        assert indexes.fields[field].entries() == rebuilt.fields[field].entries()
    assert candidates(indexes, must("k", match={"value": "a"}), 2) == {0}
    assert candidates(indexes, must("n", range={"gte": 2}), 2) == {0, 1}


@pytest.mark.parametrize("kind", ["keyword", "integer"])
def test_a_row_freed_by_a_move_can_be_reused(kind: str) -> None:
    value = "a" if kind == "keyword" else 1
    payloads: list[Payload] = [{"v": value}, {"v": value}]
    indexes = indexes_of({"v": kind}, payloads)
    indexes.remove(0, payloads[0])
    indexes.move(1, 0, payloads[1])
    indexes.add(1, {"v": value})  # row 1 is free again
    indexes.remove(1, {"v": value})
    assert indexes.fields["v"].entries() == [(value, 0)]


def test_sorted_index_stays_exact_through_many_updates_and_compaction() -> None:
    with mock.patch.multiple(payload_index, _PENDING_SCAN=3, _COMPACT_AT=5):
        payloads: list[Payload] = [{"n": i % 17} for i in range(60)]
        indexes = indexes_of({"n": "integer"}, payloads)
        for row in range(0, 50, 2):  # remove every other row, swap-removing from the end
            last = len(payloads) - 1
            if row > last:
                break
            indexes.remove(row, payloads[row])
            if row != last:
                indexes.move(last, row, payloads[last])
                payloads[row] = payloads[last]
            payloads.pop()
            raw = must("n", range={"gte": 4, "lt": 11})
            assert candidates(indexes, raw, len(payloads)) == matching(raw, payloads)
        rebuilt = make_field_index("n", "integer")
        rebuilt.build(payloads)
        assert indexes.fields["n"].entries() == rebuilt.entries()


def test_memory_bytes_counts_every_index() -> None:
    empty = PayloadIndexes({"k": "keyword", "n": "integer"})
    indexes = indexes_of(
        {"k": "keyword", "n": "integer"}, [{"k": str(i), "n": i} for i in range(99)]
    )
    assert indexes.memory_bytes() > empty.memory_bytes() > 0


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("start", [None, 40, 40.5])
def test_ordered_pairs_equal_a_sort_across_sorted_view_and_unsorted_tail(
    descending: bool, start: float | None
) -> None:
    """Enough adds for a sorted view plus an unsorted tail, with removes and moves in
    between: ``ordered`` lists exactly the live (value, row) pairs from ``start``."""
    rng = random.Random(5)
    index = make_field_index("n", "float" if start == 40.5 else "integer")
    payloads: dict[int, dict[str, Any]] = {}
    for row in range(900):
        payloads[row] = {"n": [rng.randrange(100), rng.randrange(100)] if row % 9 else 7}
        index.add(row, payloads[row])
        if row % 13 == 0 and row:
            gone = rng.choice(sorted(payloads))
            index.remove(gone, payloads.pop(gone))
    found = index.ordered(start, descending)
    assert found is not None
    values, rows = found
    pairs = [
        (v, r)
        for r, p in payloads.items()
        for v in (p["n"] if isinstance(p["n"], list) else [p["n"]])
    ]
    if start is not None:
        pairs = [(v, r) for v, r in pairs if (v <= start if descending else v >= start)]
    assert sorted(zip(values.tolist(), rows.tolist(), strict=True)) == sorted(pairs)
    assert list(values) == sorted(values, reverse=descending)


def test_keyword_index_cannot_order() -> None:
    assert make_field_index("k", "keyword").ordered(None, False) is None
