"""The unindexed-field log behind ``GET /issues`` (Qdrant's ``UnindexedField`` issue)."""

from __future__ import annotations

from server.engine.filters import parse_filter
from server.engine.unindexed_fields import SLOW_SEARCH_S, UnindexedFieldLog

FILTER = parse_filter(
    {
        "must": [{"key": "city", "match": {"value": "Berlin"}}],
        "should": [{"key": "n", "range": {"gt": 2}}, {"is_empty": {"key": "tags"}}],
        "must_not": [{"key": "done", "match": {"value": True}}],
    }
)
SLOW = SLOW_SEARCH_S + 0.1


def test_a_fast_search_records_nothing() -> None:
    log = UnindexedFieldLog()
    log.observe("c", {}, [FILTER], SLOW_SEARCH_S)
    assert log.current({"c": {}}) == []


def test_a_slow_search_records_each_unindexed_key_with_the_types_that_serve_it() -> None:
    log = UnindexedFieldLog()
    log.observe("c", {"done": {"type": "bool"}}, [FILTER, None], SLOW)
    found = {seen.field: seen.types for seen in log.current({"c": {}})}
    assert found == {"city": ("keyword",), "n": ("float", "integer")}  # done is indexed


def test_an_index_of_a_fitting_type_solves_it_and_a_wrong_type_does_not() -> None:
    log = UnindexedFieldLog()
    log.observe("c", {}, [FILTER], SLOW)
    schema = {"city": {"type": "keyword"}, "n": {"type": "keyword"}}
    assert {seen.field for seen in log.current({"c": schema})} == {"n", "done"}
    assert {seen.field for seen in log.current({"c": {}})} == {"n", "done"}  # city forgotten


def test_a_collection_gone_or_cleared_forgets_its_keys() -> None:
    log = UnindexedFieldLog()
    log.observe("a", {}, [FILTER], SLOW)
    log.observe("b", {}, [FILTER], SLOW)
    log.clear(["a"])
    assert {seen.collection for seen in log.current({"a": {}, "b": {}})} == {"b"}
    assert log.current({"a": {}}) == []  # b is gone from the catalog
    assert log.current({"b": {}}) == []
