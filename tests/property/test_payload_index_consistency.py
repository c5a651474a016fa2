"""Payload indexes must agree with a rebuild and never lose a row a filter matches.

* After any sequence of adds, swap-removes (remove + move) and payload edits, every
  field index holds what ``build`` makes from the final payloads.
* For random payloads (every JSON kind, in arrays and nested objects) and random
  filters over the whole grammar, ``candidates`` is a superset of the rows
  ``Filter.matches`` accepts and ``certain`` a subset; for filters made only of
  keyword / integer must-conditions on fields of the right type, both are exact.

The filter strategies follow tests/property/test_filters_vs_qdrant_local.py, without
qdrant-client: the oracle here is Quiver's own ``Filter.matches``.
"""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.engine import payload_index
from server.engine.filters import Filter, parse_filter
from server.engine.payload_index import FieldIndex, PayloadIndexes, make_field_index
from tests.helpers.strategies import filter_clauses as filters
from tests.helpers.strategies import range_bounds as bounds

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SCHEMA = {
    "k": "keyword",
    "n": "integer",
    "f": "float",
    "b": "bool",
    "t": "datetime",
    "u": "uuid",
    "o.k": "keyword",
    "l[].n": "integer",
    "o.f": "float",
}
UUID = str(uuid.UUID(int=0xABCDEF))
WORDS = ["red", "Red fox", "blue", "", "1", "2024-01-01T00:00:00Z", "2024-03-01 10:00:00+02:00"]
WORDS += ["2023-12-31", "not a date", UUID, UUID.upper(), UUID.replace("-", "")]
NUMBERS = [-3, -1, 0, 1, 2, 3, 2**53 + 1, 2**63, -0.5, 1.0, 2.5, float("inf")]
DATE_BOUNDS = ["2024-01-01T00:00:00Z", "2024-03-01T08:30:00Z", "2023-12-31", "2024-06-15T12:30"]

# --- payloads ------------------------------------------------------------------------

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(NUMBERS),
    st.booleans(),
    st.none(),
    st.just({"lat": 0.5, "lon": 0.5}),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.lists(st.lists(scalars, max_size=2)))
objects = st.fixed_dictionaries({}, optional={"k": values, "n": values, "f": values})
payloads = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(["k", "n", "f", "b", "t", "u"], values),
        "o": st.one_of(objects, st.lists(objects, max_size=2), scalars),
        "l": st.one_of(st.lists(objects, max_size=3), objects, values),
    },
)

# --- filters -------------------------------------------------------------------------

match_values = st.one_of(
    st.booleans(), st.integers(-3, 3), st.sampled_from(["red", "1", UUID, UUID.upper()])
)
variants = st.one_of(
    st.lists(st.sampled_from(["red", "1", "blue", UUID, UUID.upper()]), max_size=3),
    st.lists(st.sampled_from([-3, 0, 1, 3, 2**53 + 1, 2**63]), min_size=1, max_size=3),
)
matches = st.one_of(
    st.builds(lambda v: {"value": v}, match_values),
    st.builds(lambda v: {"any": v}, variants),
    st.builds(lambda v: {"except": v}, variants),
    st.builds(
        lambda kind, v: {kind: v},
        st.sampled_from(["text", "prefix", "substring"]),
        st.sampled_from(["red", "R", "2024", "", "abc", "ABC"]),
    ),
)
number_bounds = st.sampled_from([-3, -0.5, 0, 1, 1.5, 3, 2**53 + 1, float("inf")])


field_tests = st.one_of(
    st.builds(lambda m: {"match": m}, matches),
    st.builds(lambda b: {"range": b}, bounds(number_bounds)),
    st.builds(lambda b: {"range": b}, bounds(st.sampled_from(DATE_BOUNDS))),
    st.builds(lambda b: {"values_count": b}, bounds(st.integers(0, 2))),
    st.builds(
        lambda r: {"geo_radius": {"center": {"lon": 0.5, "lat": 0.5}, "radius": r}},
        st.sampled_from([1.0, 1000.0]),
    ),
    st.builds(lambda kind, v: {kind: v}, st.sampled_from(["is_empty", "is_null"]), st.booleans()),
)
KEYS = [*SCHEMA, "x", "k[]", "o", "l[].k", "o[].k"]


def leaf_conditions(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda k, t: {"key": k, **t}, st.sampled_from(keys), field_tests),
        st.builds(
            lambda k, kind: {kind: {"key": k}},
            st.sampled_from(keys),
            st.sampled_from(["is_empty", "is_null"]),
        ),
        st.builds(lambda ids: {"has_id": ids}, st.lists(st.integers(0, 5), max_size=2)),
    )


nested = st.builds(
    lambda k, f: {"nested": {"key": k, "filter": f}},
    st.sampled_from(["l", "o"]),
    filters(leaf_conditions(["k", "n"])),
)
random_filters = filters(st.recursive(leaf_conditions(KEYS) | nested, filters, max_leaves=6))


def parse(raw: dict[str, Any]) -> Filter:
    return parse_filter(raw) or Filter()


def matching(flt: Filter, rows: list[dict[str, Any]]) -> set[int]:
    return {row for row, p in enumerate(rows) if flt.matches(row, p, lambda name: False)}


# --- (1) incremental updates equal a rebuild -----------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), payloads),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("edit"), st.integers(0, 50), payloads),
        st.tuples(st.just("query"), random_filters),
    ),
    max_size=40,
)
PROBES = [
    parse({"must": {"key": key, **test}})
    for key in SCHEMA
    for test in (
        {"match": {"value": UUID}},
        {"match": {"except": [1]}},
        {"match": {"prefix": "r"}},
        {"range": {"gte": 0, "lt": 2.5}},
        {"range": {"gt": "2023-12-31"}},
    )
]


def same_index(incremental: FieldIndex, rebuilt: FieldIndex) -> None:
    assert incremental.entries() == rebuilt.entries()
    assert incremental.rows_with_value() == rebuilt.rows_with_value()
    assert incremental.rows_with_other_values() == rebuilt.rows_with_other_values()
    assert incremental.rows_not_empty() == rebuilt.rows_not_empty()
    assert incremental.rows_with_null() == rebuilt.rows_with_null()
    assert incremental.points() == rebuilt.points()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_updates_equal_a_rebuild(ops: list[tuple[Any, ...]]) -> None:
    # tiny thresholds so re-sorting and compaction happen within a short sequence
    with mock.patch.multiple(payload_index, _PENDING_SCAN=2, _COMPACT_AT=3):
        indexes = PayloadIndexes(SCHEMA)
        rows: list[dict[str, Any]] = []
        for op in ops:
            apply(indexes, rows, op)
        rebuilt = PayloadIndexes(SCHEMA)
        rebuilt.build(rows)
        for field in SCHEMA:
            same_index(indexes.fields[field], rebuilt.fields[field])
        for probe in PROBES:
            assert indexes.bounds(probe, len(rows)) == rebuilt.bounds(probe, len(rows))


def apply(indexes: PayloadIndexes, rows: list[dict[str, Any]], op: tuple[Any, ...]) -> None:
    """One step of an appendable segment: append, swap-remove, replace, or a query."""
    if op[0] == "add":
        indexes.add(len(rows), op[1])
        rows.append(op[1])
    elif op[0] == "query":
        flt = parse(op[1])
        found = indexes.candidates(flt, len(rows))
        assert found is None or matching(flt, rows) <= set(found)
    elif rows:
        row = op[1] % len(rows)
        indexes.remove(row, rows[row])
        if op[0] == "edit":
            indexes.add(row, op[2])
            rows[row] = op[2]
            return
        last = len(rows) - 1
        if row != last:
            indexes.move(last, row, rows[last])
            rows[row] = rows[last]
        rows.pop()


def test_build_of_one_field_equals_adding_rows() -> None:
    rows: list[dict[str, Any]] = [{"n": [3, 1]}, {"n": "x"}, {}, {"n": [None, 2]}]
    built, added = make_field_index("n", "integer"), make_field_index("n", "integer")
    built.build(rows)
    for row, payload in enumerate(rows):
        added.add(row, payload)
    same_index(added, built)


# --- (2) candidates never lose a matching row ----------------------------------------


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(payloads, max_size=12), raw_filter=random_filters)
def test_candidates_are_a_superset_of_the_matches(
    rows: list[dict[str, Any]], raw_filter: dict[str, Any]
) -> None:
    indexes = PayloadIndexes(SCHEMA)
    indexes.build(rows)
    flt = parse(raw_filter)
    expected = matching(flt, rows)
    found = indexes.bounds(flt, len(rows))
    assert set(found.certain) <= expected
    assert found.possible is None or expected <= set(found.possible)
    assert found.possible == indexes.candidates(flt, len(rows))


exact_rows = st.fixed_dictionaries(
    {},
    optional={
        "k": st.one_of(st.sampled_from(WORDS), st.lists(st.sampled_from(WORDS)), st.none()),
        "n": st.one_of(st.integers(-4, 4), st.lists(st.integers(-4, 4)), st.none()),
    },
)
int_variants = st.lists(st.integers(-4, 4), max_size=3)
str_variants = st.lists(st.sampled_from(WORDS), max_size=3)
exact_conditions = st.one_of(
    st.builds(lambda v: {"key": "k", "match": {"value": v}}, st.sampled_from(WORDS)),
    st.builds(lambda v: {"key": "k", "match": {"any": v}}, str_variants),
    st.builds(lambda v: {"key": "k", "match": {"except": v}}, str_variants),
    st.builds(lambda v: {"key": "n", "match": {"value": v}}, st.integers(-4, 4)),
    st.builds(lambda v: {"key": "n", "match": {"any": v}}, int_variants.filter(bool)),
    st.builds(lambda v: {"key": "n", "match": {"except": v}}, int_variants.filter(bool)),
    st.builds(lambda b: {"key": "n", "range": b}, bounds(st.sampled_from([-2, -0.5, 0, 1.5, 3]))),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(exact_rows, max_size=12), conditions=st.lists(exact_conditions, min_size=1))
def test_keyword_and_integer_must_conditions_are_exact(
    rows: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> None:
    indexes = PayloadIndexes({"k": "keyword", "n": "integer"})
    for row, payload in enumerate(rows):
        indexes.add(row, payload)
    flt = parse({"must": conditions})
    found = indexes.bounds(flt, len(rows))
    assert found.possible is not None
    assert set(found.certain) == set(found.possible) == matching(flt, rows)
