"""The one nesting limit (issue 18, finding 7): payloads, filters and JSON paths."""

from __future__ import annotations

from typing import Any

import pytest

from server.engine.filters import parse_filter
from server.engine.payload import MAX_JSON_DEPTH, check_depth, parse_json_path, set_payload
from server.errors import BadRequest


def nested(depth: int) -> Any:
    """An object ``depth`` levels deep (alternating objects and arrays)."""
    value: Any = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def nested_filter(levels: int) -> dict[str, Any]:
    """A filter of ``levels`` ``must`` clauses around one condition (2 JSON levels each)."""
    flt: dict[str, Any] = {"must": [{"key": "n", "match": {"value": 1}}]}
    for _ in range(levels):
        flt = {"must": [flt]}
    return flt


def test_the_limit_is_exact() -> None:
    check_depth(nested(MAX_JSON_DEPTH), "payload")
    with pytest.raises(BadRequest, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        check_depth(nested(MAX_JSON_DEPTH + 1), "payload")


@pytest.mark.parametrize("depth", [250, 254, 255, 340, 510, 1023, 5000])
def test_depths_around_the_old_failure_points_are_refused_without_recursion(depth: int) -> None:
    with pytest.raises(BadRequest, match="payload nests objects and arrays deeper than"):
        check_depth(nested(depth), "payload")


def test_scalars_and_flat_values_pass() -> None:
    for value in (1, "x", None, [], {}, {"a": [1, 2, {"b": "c"}]}):
        check_depth(value, "payload")


@pytest.mark.parametrize("levels", [170, 250, 255])
def test_deep_filters_are_a_bad_request(levels: int) -> None:
    with pytest.raises(BadRequest, match="filter nests objects and arrays deeper than"):
        parse_filter(nested_filter(levels))


def test_a_filter_inside_the_limit_parses() -> None:
    assert parse_filter(nested_filter(MAX_JSON_DEPTH // 2 - 2)) is not None


def test_json_paths_have_at_most_the_limit_of_steps() -> None:
    assert len(parse_json_path(".".join(["a"] * MAX_JSON_DEPTH)).items) == MAX_JSON_DEPTH
    with pytest.raises(ValueError, match=f"more than {MAX_JSON_DEPTH} steps"):
        parse_json_path(".".join(["a"] * 5000))


def test_set_payload_refuses_deep_values_before_copying_them() -> None:
    with pytest.raises(BadRequest, match="payload nests"):
        set_payload({}, {"deep": nested(600)})
