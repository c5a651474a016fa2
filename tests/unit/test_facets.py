"""Facet counts straight from a payload index: each index type counts a row once per
value, only the selected rows, and stays right after the index changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from server.engine.facets import top_hits
from server.engine.payload_index import make_field_index

PAYLOADS: list[dict[str, Any]] = [
    {"k": "a", "n": 1},
    {"k": ["a", "b", "a"], "n": [2, 2, 3]},
    {"k": "b", "n": 2},
    {"k": 7, "n": "x"},  # values the index cannot hold are not counted
    {},
]


@pytest.mark.parametrize(
    ("field", "kind", "expected"),
    [("k", "keyword", {"a": 2, "b": 2}), ("n", "integer", {1: 1, 2: 2, 3: 1})],
)
def test_each_row_counts_once_per_value(field: str, kind: str, expected: dict[Any, int]) -> None:
    index = make_field_index(field, kind)
    index.build(PAYLOADS)
    assert index.value_counts(np.ones(len(PAYLOADS), dtype=bool)) == expected


def test_only_selected_rows_count_and_changes_are_seen() -> None:
    index = make_field_index("k", "keyword")
    index.build(PAYLOADS)
    selected = np.array([False, True, True, False, False])
    assert index.value_counts(selected) == {"a": 1, "b": 2}
    index.remove(2, PAYLOADS[2])
    index.add(2, {"k": "c"})
    assert index.value_counts(selected) == {"a": 1, "b": 1, "c": 1}
    index.move(2, 4, {"k": "c"})
    assert index.value_counts(np.array([False, False, False, False, True])) == {"c": 1}


def test_hits_are_ordered_by_count_then_value() -> None:
    hits = top_hits({"b": 2, "a": 2, "c": 5, "d": 1}, 3)
    assert [(hit.value, hit.count) for hit in hits] == [("c", 5), ("a", 2), ("b", 2)]
