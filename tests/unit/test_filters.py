"""Unit tests for Qdrant's filter grammar in ``server.engine.filters``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from server.engine.field_matchers import DatetimeRange, MatchValue, Range
from server.engine.filters import (
    FieldCondition,
    Filter,
    HasId,
    IsEmpty,
    Nested,
    parse_filter,
)
from server.engine.point_ids import PointId
from server.errors import InvalidFilter

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


def no_vectors(name: str) -> bool:
    return False


def parse(raw: Any) -> Filter:
    parsed = parse_filter(raw)
    assert parsed is not None
    return parsed


def holds(raw_condition: dict[str, Any], payload: dict[str, Any], point_id: PointId = 1) -> bool:
    """Evaluate one condition on one payload, both row-wise and through ``mask``."""
    flt = parse({"must": [raw_condition]})
    by_row = flt.matches(point_id, payload, no_vectors)
    by_mask = bool(flt.mask(Rows([point_id], [payload]))[0])
    assert by_row == by_mask
    return by_row


@dataclass
class Rows:
    """A minimal FilterSource."""

    point_ids: list[PointId]
    point_payloads: list[dict[str, Any]]
    vectors: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def ids(self) -> Sequence[PointId]:
        return self.point_ids

    @property
    def payloads(self) -> Sequence[dict[str, Any]]:
        return self.point_payloads

    def vector_present(self, name: str) -> npt.NDArray[np.bool_]:
        default = [False] * len(self.point_ids)
        return np.array(self.vectors.get(name, default), dtype=bool)


# --- parsing to a tree ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"must": []},
        {"should": []},
        {"must": None, "should": None, "must_not": None, "min_should": None},
        {"must": [], "should": [], "must_not": []},
    ],
)
def test_filter_without_conditions_parses_to_none(raw: Any) -> None:
    assert parse_filter(raw) is None


def test_parsed_tree_is_introspectable() -> None:
    flt = parse({"must": [{"key": "a.b", "match": {"value": 3}}], "should": {"has_id": [1]}})
    condition = flt.must[0]
    assert isinstance(condition, FieldCondition)
    assert condition.key == "a.b"
    assert condition.path.items == ("a", "b")
    assert condition.test == MatchValue(3)
    assert flt.should == (HasId(frozenset({1})),)


def test_client_style_null_fields_are_ignored() -> None:
    raw = {
        "must": [{"key": "k", "match": {"value": "x"}, "range": None, "geo_radius": None}],
        "should": None,
        "must_not": None,
        "min_should": None,
    }
    assert parse(raw).must[0] == parse({"must": {"key": "k", "match": {"value": "x"}}}).must[0]


def test_range_with_strings_is_a_datetime_range() -> None:
    condition = parse({"must": {"key": "t", "range": {"gte": "2024-01-01T00:00:00Z"}}}).must[0]
    assert isinstance(condition, FieldCondition)
    assert isinstance(condition.test, DatetimeRange)


def test_empty_object_condition_is_an_empty_filter_like_qdrant() -> None:
    assert parse({"must_not": [{}]}).must_not == (Filter(),)


def test_field_is_empty_false_is_the_negation() -> None:
    condition = parse({"must": {"key": "a", "is_empty": False}}).must[0]
    assert isinstance(condition, Filter)
    assert isinstance(condition.must_not[0], IsEmpty)


# --- boolean structure ---------------------------------------------------------------


PAYLOAD = {"city": "Berlin", "n": 5}


def test_must_is_and() -> None:
    flt = parse(
        {"must": [{"key": "city", "match": {"value": "Berlin"}}, {"key": "n", "range": {"gt": 9}}]}
    )
    assert not flt.matches(1, PAYLOAD, no_vectors)


def test_should_is_or() -> None:
    flt = parse(
        {"should": [{"key": "city", "match": {"value": "Rome"}}, {"key": "n", "range": {"gt": 1}}]}
    )
    assert flt.matches(1, PAYLOAD, no_vectors)


def test_must_not_rejects_if_any_condition_holds() -> None:
    flt = parse(
        {
            "must_not": [
                {"key": "city", "match": {"value": "Rome"}},
                {"key": "n", "range": {"gt": 1}},
            ]
        }
    )
    assert not flt.matches(1, PAYLOAD, no_vectors)


def test_empty_should_is_no_constraint() -> None:
    flt = parse({"must": [{"key": "n", "range": {"gt": 1}}], "should": []})
    assert flt.matches(1, PAYLOAD, no_vectors)


@pytest.mark.parametrize(("min_count", "expected"), [(1, True), (2, True), (3, False)])
def test_min_should_counts_satisfied_conditions(min_count: int, expected: bool) -> None:
    conditions = [
        {"key": "city", "match": {"value": "Berlin"}},
        {"key": "n", "range": {"gte": 5}},
        {"has_id": [99]},
    ]
    flt = parse({"min_should": {"conditions": conditions, "min_count": min_count}})
    assert flt.matches(1, PAYLOAD, no_vectors) is expected


def test_filter_nests_as_a_condition() -> None:
    inner = {
        "should": [{"key": "n", "range": {"lt": 0}}, {"key": "city", "match": {"value": "Berlin"}}]
    }
    assert parse({"must": [inner]}).matches(1, PAYLOAD, no_vectors)


# --- match ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operand", "stored", "expected"),
    [
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        (1, 1.0, False),
        (0, False, False),
        (1, 1, True),
        ("1", 1, False),
        ("red", "red", True),
        ("red", "Red", False),
    ],
)
def test_match_value_keeps_types_apart(operand: Any, stored: Any, expected: bool) -> None:
    assert holds({"key": "a", "match": {"value": operand}}, {"a": stored}) is expected


def test_match_on_array_holds_if_any_element_matches() -> None:
    assert holds({"key": "tags", "match": {"value": "b"}}, {"tags": ["a", "b"]})


def test_match_any() -> None:
    assert holds({"key": "a", "match": {"any": [1, 2]}}, {"a": 2})
    assert not holds({"key": "a", "match": {"any": [1, 2]}}, {"a": True})
    assert not holds({"key": "a", "match": {"any": []}}, {"a": 1})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"a": "x"}, True),
        ({"a": "red"}, False),
        ({}, False),
        ({"a": None}, False),
        ({"a": []}, False),
        ({"a": ["red", "x"]}, True),
        ({"a": ["red"]}, False),
        ({"a": [None, 5]}, True),
        ({"a": 5}, True),
    ],
)
def test_match_except(payload: dict[str, Any], expected: bool) -> None:
    assert holds({"key": "a", "match": {"except": ["red"]}}, payload) is expected


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"text": "brown FOX"}, True),
        ({"text": "fox brown"}, True),
        ({"text": "bro"}, False),
        ({"text": ""}, False),
        ({"text_any": "cat fox"}, True),
        ({"phrase": "brown fox"}, True),
        ({"phrase": "fox brown"}, False),
        ({"prefix": "The"}, True),
        ({"prefix": "the"}, False),
        ({"substring": "k bro"}, True),
    ],
)
def test_text_matches_without_index(match: dict[str, str], expected: bool) -> None:
    assert holds({"key": "t", "match": match}, {"t": "The quick brown fox"}) is expected


# --- range -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"), [(5, True), (5.5, True), (10, False), (True, False), ("7", False)]
)
def test_numeric_range(stored: Any, expected: bool) -> None:
    assert holds({"key": "n", "range": {"gte": 5, "lt": 10}}, {"n": stored}) is expected


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2024-01-01T12:00:00Z", True),
        ("2024-01-01T13:30:00+02:00", False),  # 11:30 UTC
        ("2024-01-01 12:00:00", True),  # naive means UTC
        ("2024-01-02", True),
        ("yesterday", False),
        (1704110400, False),
    ],
)
def test_datetime_range_compares_instants(stored: Any, expected: bool) -> None:
    condition = {"key": "t", "range": {"gte": "2024-01-01T12:00:00Z"}}
    assert holds(condition, {"t": stored}) is expected


# --- values_count, is_empty, is_null ----------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [({"a": [1, 2]}, True), ({"a": [1]}, False), ({"a": 3}, False), ({}, False)],
)
def test_values_count(payload: dict[str, Any], expected: bool) -> None:
    assert holds({"key": "a", "values_count": {"gte": 2}}, payload) is expected


def test_values_count_of_missing_key_is_zero() -> None:
    assert holds({"key": "a", "values_count": {"lt": 1}}, {})


@pytest.mark.parametrize(
    ("payload", "empty", "null"),
    [
        ({}, True, False),
        ({"a": None}, True, True),
        ({"a": []}, True, False),
        ({"a": [None]}, False, True),
        ({"a": 0}, False, False),
        ({"a": ""}, False, False),
    ],
)
def test_is_empty_and_is_null(payload: dict[str, Any], empty: bool, null: bool) -> None:
    assert holds({"is_empty": {"key": "a"}}, payload) is empty
    assert holds({"is_null": {"key": "a"}}, payload) is null
    assert holds({"key": "a", "is_empty": True}, payload) is empty
    assert holds({"key": "a", "is_null": False}, payload) is not null


# --- geo -----------------------------------------------------------------------------

BERLIN = {"lon": 13.405, "lat": 52.52}
POTSDAM = {"lon": 13.064, "lat": 52.391}


def test_geo_radius_in_metres() -> None:
    near = {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 30_000.0}}
    tight = {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 20_000.0}}
    assert holds(near, {"loc": POTSDAM})
    assert not holds(tight, {"loc": POTSDAM})


def test_geo_bounding_box_crossing_the_antimeridian() -> None:
    box = {"top_left": {"lon": 170, "lat": 10}, "bottom_right": {"lon": -170, "lat": -10}}
    condition = {"key": "loc", "geo_bounding_box": box}
    assert holds(condition, {"loc": {"lon": 179.5, "lat": 0}})
    assert holds(condition, {"loc": {"lon": -175, "lat": 0}})
    assert not holds(condition, {"loc": {"lon": 0, "lat": 0}})


def test_geo_polygon_excludes_holes() -> None:
    square = [
        {"lon": 0, "lat": 0},
        {"lon": 10, "lat": 0},
        {"lon": 10, "lat": 10},
        {"lon": 0, "lat": 10},
    ]
    hole = [{"lon": 4, "lat": 4}, {"lon": 6, "lat": 4}, {"lon": 6, "lat": 6}, {"lon": 4, "lat": 6}]
    polygon = {
        "exterior": {"points": [*square, square[0]]},
        "interiors": [{"points": [*hole, hole[0]]}],
    }
    condition = {"key": "loc", "geo_polygon": polygon}
    assert holds(condition, {"loc": {"lon": 2, "lat": 2}})
    assert not holds(condition, {"loc": {"lon": 5, "lat": 5}})
    assert not holds(condition, {"loc": {"lon": 20, "lat": 5}})


def test_geo_ignores_values_that_are_not_points() -> None:
    condition = {"key": "loc", "geo_radius": {"center": BERLIN, "radius": 1e9}}
    assert not holds(condition, {"loc": {"lon": "13", "lat": 52}})
    assert holds(condition, {"loc": [7, POTSDAM]})


# --- paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [("a.b", False), ("a[].b", True), ("a[1].b", True), ("a[0].b", False), ('"x.y"', True)],
)
def test_json_paths(key: str, expected: bool) -> None:
    payload = {"a": [{"b": 1}, {"b": 2}], "x.y": 2}
    assert holds({"key": key, "match": {"value": 2}}, payload) is expected


def test_dotted_path_into_objects() -> None:
    assert holds({"key": "a.b.c", "match": {"value": 1}}, {"a": {"b": {"c": 1}}})


# --- ids, vectors, nested ---------------------------------------------------------------


def test_has_id_normalises_uuids() -> None:
    flt = parse({"must": {"has_id": [UUID.upper(), 7]}})
    rows = Rows([7, UUID, 8], [{}, {}, {}])
    assert flt.mask(rows).tolist() == [True, True, False]


def test_has_vector_uses_the_source() -> None:
    flt = parse({"must": {"has_vector": "image"}})
    rows = Rows([1, 2], [{}, {}], {"image": [False, True]})
    assert flt.mask(rows).tolist() == [False, True]
    assert flt.matches(1, {}, lambda name: name == "image")


def test_nested_requires_one_element_to_satisfy_everything() -> None:
    payload = {"dogs": [{"name": "a", "age": 1}, {"name": "b", "age": 5}]}
    same_element = {
        "must": [{"key": "name", "match": {"value": "a"}}, {"key": "age", "range": {"gt": 3}}]
    }
    flat = [
        {"key": "dogs[].name", "match": {"value": "a"}},
        {"key": "dogs[].age", "range": {"gt": 3}},
    ]
    assert not holds({"nested": {"key": "dogs", "filter": same_element}}, payload)
    assert parse({"must": flat}).matches(1, payload, no_vectors)


def test_nested_key_may_end_with_brackets() -> None:
    payload = {"dogs": [{"age": 5}]}
    inner = {"must": {"key": "age", "range": {"gt": 3}}}
    condition = parse({"must": {"nested": {"key": "dogs[]", "filter": inner}}}).must[0]
    assert isinstance(condition, Nested)
    assert holds({"nested": {"key": "dogs[]", "filter": inner}}, payload)


def test_has_id_never_holds_inside_nested() -> None:
    inner = {"must": {"has_id": [1]}}
    assert not holds({"nested": {"key": "a", "filter": inner}}, {"a": [{"b": 1}]}, point_id=1)


# --- mask ----------------------------------------------------------------------------


def test_mask_agrees_with_matches_row_by_row() -> None:
    payloads: list[dict[str, Any]] = [{"n": i, "tag": ["x", "y"][i % 2]} for i in range(50)]
    rows = Rows(list(range(50)), payloads, {"": [i % 3 == 0 for i in range(50)]})
    flt = parse(
        {
            "must": [{"key": "n", "range": {"gte": 10}}, {"has_vector": ""}],
            "must_not": {"has_id": [12, 15]},
            "should": [{"key": "tag", "match": {"value": "x"}}, {"key": "n", "range": {"gt": 40}}],
            "min_should": {"conditions": [{"key": "n", "range": {"lt": 45}}], "min_count": 1},
        }
    )
    expected = [flt.matches(i, payloads[i], {"": i % 3 == 0}.__getitem__) for i in range(50)]
    assert flt.mask(rows).tolist() == expected
    assert sum(expected) == 5  # 18, 24, 30, 36, 42


def test_mask_of_empty_source() -> None:
    flt = parse({"must": {"key": "a", "match": {"value": 1}}})
    assert flt.mask(Rows([], [])).tolist() == []


# --- malformed filters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (5, "expected a filter object, got 5"),
        ({"must": [{"key": "a", "range": {"gt": "abc"}}]}, "must[0].range.gt: expected a number"),
        ({"must": [{"key": "a", "range": {"gt": True}}]}, "must[0].range.gt: expected a number"),
        (
            {"must": {"key": "a", "range": {"gt": 1, "lt": "2024-01-01"}}},
            "must.range.lt: expected a number like the other bounds",
        ),
        ({"must": {"key": "a", "range": {"above": 1}}}, 'must.range: unknown field "above"'),
        (
            {"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]},
            "must[0].match: match needs exactly one",
        ),
        ({"must": [{"key": "a", "match": {}}]}, "must[0].match: match needs exactly one"),
        (
            {"must": [{"key": "a", "match": {"value": 1.5}}]},
            "must[0].match.value: expected a string",
        ),
        (
            {"must": [{"key": "a", "match": {"value": None}}]},
            "must[0].match: match needs exactly one",
        ),
        (
            {"must": [{"key": "a", "match": {"any": [1, "x"]}}]},
            "must[0].match.any: expected a list",
        ),
        ({"must": [{"key": "a", "match": {"any": [True]}}]}, "must[0].match.any: expected a list"),
        (
            {"must": [{"key": "a", "match": {"except": "x"}}]},
            "must[0].match.except: expected a list",
        ),
        ({"must": [{"key": "a", "match": {"text": 3}}]}, "must[0].match.text: expected a string"),
        ({"must": [{"key": "a"}]}, "must[0]: field condition needs exactly one of"),
        ({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}, "got match, range"),
        ({"must": [{"key": 3, "match": {"value": 1}}]}, "must[0].key: expected a payload key"),
        ({"must": [{"key": "a..b", "match": {"value": 1}}]}, "must[0].key: invalid key"),
        ({"must": [{"key": "", "match": {"value": 1}}]}, "must[0].key: the key is empty"),
        ({"must": [{"key": "a", "has_id": [1]}]}, "cannot be combined with a field condition"),
        ({"must": [{"has_id": [1], "has_vector": "v"}]}, "must[0]: one condition per object"),
        ({"must": [{"has_id": [1], "must": []}]}, "must[0]: one condition per object"),
        ({"must": [{"foo": 1}]}, 'must[0]: unknown field "foo"'),
        ({"must": [{"foo": None}]}, 'must[0]: unknown field "foo"'),
        ({"must": [3]}, "must[0]: expected a condition object, got 3"),
        ({"must": "x"}, "must: expected a condition or a list of conditions"),
        ({"filter": []}, 'unknown field "filter" in a filter'),
        ({"must": {"has_id": ["not-an-id"]}}, "must.has_id[0]: Bad point id"),
        ({"must": {"has_id": [-1]}}, "must.has_id[0]: Bad point id"),
        ({"must": {"has_id": 1}}, "must.has_id: expected a list of point ids"),
        ({"must": {"has_vector": 1}}, "must.has_vector: expected a vector name"),
        ({"must": {"is_empty": {"key": 1}}}, "must.is_empty.key: expected a payload key"),
        ({"must": {"is_null": "a"}}, "must.is_null: expected an is_null object"),
        ({"must": {"key": "a", "is_empty": "yes"}}, "must.is_empty: expected true or false"),
        (
            {"must": {"key": "a", "values_count": {"gt": -1}}},
            "must.values_count.gt: expected a non-negative",
        ),
        (
            {"must": {"key": "a", "values_count": {"gt": 1.5}}},
            "must.values_count.gt: expected a non-negative",
        ),
        (
            {"must": {"nested": {"key": "a"}}},
            "must.nested.filter: a nested condition needs a filter",
        ),
        (
            {"must": {"nested": {"key": "a", "filter": {"must": 1}}}},
            "must.nested.filter.must: expected",
        ),
        (
            {"min_should": {"conditions": [], "min_count": 0}},
            "min_should.min_count: expected an integer >= 1",
        ),
        (
            {"min_should": {"conditions": {}, "min_count": 1}},
            "min_should.conditions: expected a list",
        ),
        (
            {"min_should": {"conditions": [], "min_count": True}},
            "min_should.min_count: expected an integer",
        ),
        (
            {"must": {"key": "a", "geo_radius": {"center": {"lon": 200, "lat": 0}, "radius": 1}}},
            "must.geo_radius.center.lon: expected a number between -180 and 180",
        ),
        (
            {"must": {"key": "a", "geo_radius": {"center": {"lon": 0, "lat": 0}}}},
            "must.geo_radius.radius",
        ),
        (
            {"must": {"key": "a", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 0}}}},
            "must.geo_bounding_box.bottom_right: expected a geo point object",
        ),
        (
            {
                "must": {
                    "key": "a",
                    "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}] * 3}},
                }
            },
            "must.geo_polygon.exterior.points: a polygon ring needs at least 4 points",
        ),
        (
            {
                "must": {
                    "key": "a",
                    "geo_polygon": {
                        "exterior": {
                            "points": [
                                {"lon": 0, "lat": 0},
                                {"lon": 1, "lat": 0},
                                {"lon": 1, "lat": 1},
                                {"lon": 0, "lat": 1},
                            ]
                        }
                    },
                }
            },
            "must.geo_polygon.exterior.points: a polygon ring must be closed",
        ),
    ],
)
def test_malformed_filter_is_rejected_with_its_path(raw: Any, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(raw)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"total": 0, "index": 0}, "Slice total must be >= 1"),
        ({"total": 3, "index": 3}, "Slice index must be in [0;2]"),
        ({"total": 3, "index": -1}, "Slice index must be in [0;2]"),
        ({"total": 3}, "Slice index must be in [0;2]"),
        ({"total": 2, "index": 0, "seed": 1}, "unknown field"),
    ],
)
def test_malformed_slice_is_rejected(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter({"must": {"slice": raw}})
    assert message in caught.value.message


def test_conditions_are_immutable_values() -> None:
    first = parse({"must": {"key": "n", "range": {"gt": 1}}})
    second = parse({"must": [{"key": "n", "range": {"gt": 1.0}}]})
    assert first == second
    condition = first.must[0]
    assert isinstance(condition, FieldCondition)
    assert condition.test == Range(gt=1)
    with pytest.raises(AttributeError):
        condition.key = "m"  # type: ignore[misc]


def test_filters_matching_one_and_true_are_different_filters() -> None:
    """Equal filters are grouped as one in a batch (``collection/search.py``): ``1 == True``
    in Python must not make a filter for ``1`` equal one for ``true``."""
    one, true = (
        parse_filter({"must": [{"key": "flag", "match": {"value": value}}]}) for value in (1, True)
    )
    assert one != true and hash(one) != hash(true)
    assert len({one, true}) == 2
    again = parse_filter({"must": [{"key": "flag", "match": {"value": 1}}]})
    assert one == again and hash(one) == hash(again)
