"""Payload index options that change what is evaluated where: integer ``lookup`` /
``range``, ``is_tenant`` / ``is_principal``, and payloads read from the point store
in batches (``on_disk_payload``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from index.metrics import Distance
from server.engine.filters import parse_filter
from server.engine.payload_index import PayloadIndexes, check_field_schema
from server.engine.segment import AppendableSegment, PointBatch
from server.errors import BadRequest

PAYLOADS = [{"n": i % 5, "k": "a" if i < 6 else "b", "free": i} for i in range(10)]


def _bounds(schema: dict[str, Any], raw: dict[str, Any]) -> tuple[list[int], list[int] | None]:
    indexes = PayloadIndexes(schema)
    indexes.build(PAYLOADS)
    flt = parse_filter(raw)
    assert flt is not None
    bounds = indexes.bounds(flt, len(PAYLOADS))
    possible = None if bounds.possible is None else sorted(bounds.possible)
    return sorted(bounds.certain), possible


RANGE = {"must": [{"key": "n", "range": {"gte": 3}}]}
MATCH = {"must": [{"key": "n", "match": {"value": 1}}]}


def test_integer_index_serves_match_and_range_by_default() -> None:
    assert _bounds({"n": {"type": "integer"}}, RANGE) == ([3, 4, 8, 9], [3, 4, 8, 9])
    assert _bounds({"n": {"type": "integer"}}, MATCH) == ([1, 6], [1, 6])


def test_integer_index_without_range_leaves_ranges_to_the_scan() -> None:
    schema = {"n": {"type": "integer", "range": False}}
    assert _bounds(schema, RANGE) == ([], None)
    assert _bounds(schema, MATCH) == ([1, 6], [1, 6])


def test_integer_index_without_lookup_leaves_matches_to_the_scan() -> None:
    schema = {"n": {"type": "integer", "lookup": False}}
    assert _bounds(schema, MATCH) == ([], None)
    assert _bounds(schema, RANGE) == ([3, 4, 8, 9], [3, 4, 8, 9])


def test_integer_index_needs_lookup_or_range() -> None:
    with pytest.raises(BadRequest, match="lookup"):
        check_field_schema({"type": "integer", "lookup": False, "range": False})


def test_an_empty_tenant_ends_the_evaluation() -> None:
    """With ``is_tenant`` the tenant condition is looked at first: a tenant with no row
    answers nothing, whatever the other conditions are."""
    raw = {
        "must": [
            {"key": "n", "range": {"gte": 0}},
            {"key": "k", "match": {"value": "nobody"}},
        ]
    }
    schema: dict[str, Any] = {"k": {"type": "keyword", "is_tenant": True}, "n": "integer"}
    indexes = PayloadIndexes(schema)
    assert indexes.leading == frozenset({("k",)})
    assert _bounds(schema, raw) == ([], [])


def test_principal_field_is_leading() -> None:
    indexes = PayloadIndexes({"n": {"type": "integer", "is_principal": True}, "k": "keyword"})
    assert indexes.leading == frozenset({("n",)})


class CountingStore:
    """A point store stand-in that counts payload reads."""

    def __init__(self, payloads: dict[str, dict[str, Any]]) -> None:
        self.stored = {pid: orjson.dumps(p) for pid, p in payloads.items()}
        self.reads: list[int] = []

    def payloads_of(self, pids: Sequence[str]) -> dict[str, bytes]:
        self.reads.append(len(pids))
        return {pid: self.stored[pid] for pid in pids if pid in self.stored}


def _stored_segment(store: CountingStore, schema: dict[str, Any]) -> AppendableSegment:
    segment = AppendableSegment({"": (2, Distance.DOT)}, schema, payload_reader=store)
    n = len(PAYLOADS)
    batch = PointBatch(
        list(range(n)),
        {"": np.zeros((n, 2), dtype=np.float32)},
        {"": np.ones(n, dtype=bool)},
        [dict(p) for p in PAYLOADS],
    )
    segment.upsert(batch, 1)
    return segment


def test_unindexed_conditions_read_stored_payloads_in_one_batch() -> None:
    store = CountingStore({str(i): p for i, p in enumerate(PAYLOADS)})
    segment = _stored_segment(store, {"k": "keyword"})
    flt = parse_filter(
        {"must": [{"key": "free", "range": {"gte": 2}}, {"key": "n", "match": {"value": 3}}]}
    )
    assert flt is not None
    mask, _ = segment.filter_mask(flt, segment.live_mask())
    assert np.flatnonzero(mask).tolist() == [3, 8]
    assert store.reads == [10]  # one read for both conditions, every row once


def test_stored_segment_keeps_only_indexed_keys_and_forgets_old_values() -> None:
    store = CountingStore({str(i): p for i, p in enumerate(PAYLOADS)})
    segment = _stored_segment(store, {"k": "keyword"})
    assert segment.payloads.kept(0) == {"k": "a"}
    store.stored["0"] = orjson.dumps({"k": "b"})  # the store is written first
    segment.set_payload(0, {"k": "b"}, 2)
    flt = parse_filter({"must": [{"key": "k", "match": {"value": "a"}}]})
    assert flt is not None
    mask, _ = segment.filter_mask(flt, segment.live_mask())
    assert np.flatnonzero(mask).tolist() == [1, 2, 3, 4, 5]
    assert segment.payload(0) == {"k": "b"}
