"""Quiver's filters must select exactly the points qdrant-client's local mode selects.

Hypothesis draws random payloads (nested objects, arrays, ints, floats, strings,
bools, nulls, missing keys) and random filters from the whole grammar; the oracle is
``QdrantClient(":memory:")``, the executable reference for Qdrant's semantics.

Cases deliberately not generated, because the two sides disagree on purpose:

* a field condition with two tests (``match`` and ``range`` together): local mode
  silently uses the first one, Quiver rejects the filter as ambiguous;
* open or too-short polygons: local mode accepts them, Quiver (like the Qdrant
  server) rejects them;
* datetime spellings where pydantic's parser (used by local mode for range bounds)
  and Qdrant's disagree; bounds are drawn from spellings both accept.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from server.engine.filters import parse_filter
from server.engine.point_ids import PointId, parse_point_id
from tests.helpers.strategies import filter_clauses
from tests.helpers.strategies import range_bounds as bounds

# the recursive filter strategy's repr is large; Hypothesis warns when it validates it
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

COLLECTION = "filters"
VECTOR_NAMES = ("v1", "v2")
UUID_ID = str(uuid.UUID(int=0xABCDEF))

WORDS = ["Red fox", "the quick brown fox", "red", "fox_jumps over", "", "1", "blue"]
DATES = ["2024-01-01T00:00:00Z", "2024-06-15 12:30:00", "2023-12-31", "2024-03-01T10:00:00+02:00"]
# bound spellings that pydantic (local mode) and Qdrant both read the same way
DATE_BOUNDS = [
    "2024-01-01T00:00:00Z",
    "2024-03-01T08:30:00Z",
    "2024-03-01T10:00:00+02:00",
    "2024-01-01",
    "2024-06-15T12:30:00",
]
KEYS = ["a", "b", "c", "a.a", "a.b", "a[].a", "a[]", "a[0]", "a[1].b", "b[].x", "c.a[]", '"b"']
NESTED_KEYS = ["a", "a[]", "b", "c.a"]


# --- payloads ------------------------------------------------------------------------

geo_points = st.fixed_dictionaries(
    {"lat": st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2]), "lon": st.sampled_from([-1, 0.0, 0.5, 1.5])}
)
strings = st.sampled_from(WORDS + DATES + ["not a date"])
# interesting values first: Hypothesis leans towards the first alternatives
scalars = st.one_of(
    strings,
    st.integers(-3, 3),
    geo_points,
    st.sampled_from([-2.5, 0.5, 1.0, 2.0, 3.5]),
    st.booleans(),
    st.none(),
)
deep_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "x"]), inner, max_size=3),
    ),
    max_leaves=8,
)
# mostly shallow values, so that conditions on simple keys often have something to test
json_values = st.one_of(scalars, scalars, st.lists(scalars, max_size=3), deep_values)
payloads = st.fixed_dictionaries({}, optional=dict.fromkeys(["a", "b", "c"], json_values))


@dataclass(frozen=True)
class PointSpec:
    point_id: PointId
    payload: dict[str, Any]
    vectors: tuple[str, ...]


@st.composite
def point_sets(draw: st.DrawFn) -> list[PointSpec]:
    count = draw(st.integers(1, 10))
    ids: list[PointId] = [*range(count - 1), UUID_ID]
    vector_sets = st.sets(st.sampled_from(VECTOR_NAMES)).map(lambda s: tuple(sorted(s)))
    return [PointSpec(i, draw(payloads), draw(vector_sets)) for i in ids]


def value_zoo() -> list[PointSpec]:
    """One point per kind of value under key "a", so every condition meets all of them.

    Hypothesis favours simple draws, so random payloads rarely hold, say, a datetime
    string where a datetime range looks; this fixed zoo makes each value test meet
    every payload type, in arrays and nested arrays too.
    """
    geo = [{"lat": lat, "lon": lon} for lat in (-1.0, 0.0, 0.5, 2) for lon in (-1, 0.0, 0.5, 1.5)]
    scalar_values: list[Any] = [
        *WORDS,
        *DATES,
        "not a date",
        *range(-3, 4),
        -2.5,
        0.5,
        1.0,
        2.0,
        3.5,
        True,
        False,
        None,
        *geo,
    ]
    values = [
        *scalar_values,
        [],
        [None],
        [None, 2],
        [1, "red"],
        ["the quick brown fox", 3],
        [geo[5], "x"],
        [[1, 2]],
        [True],
        [DATES[0], 7],
        {"x": 1},
        {"lat": 0.1},
        [{"a": 1}, {"a": "red"}],
    ]
    zoo = [PointSpec(i, {"a": value}, VECTOR_NAMES[: i % 3]) for i, value in enumerate(values)]
    return [*zoo, PointSpec(UUID_ID, {"b": 1}, ())]


# --- filters -------------------------------------------------------------------------

match_values = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["red", "1", "blue"]))
variants: st.SearchStrategy[list[Any]] = st.one_of(
    st.lists(st.sampled_from(["red", "1", "Red fox", "x"]), min_size=1, max_size=3),
    st.lists(st.integers(-3, 3), min_size=1, max_size=3),
    st.just([]),
)
matches = st.one_of(
    st.builds(lambda v: {"value": v}, match_values),
    st.builds(lambda v: {"any": v}, variants),
    st.builds(lambda v: {"except": v}, variants),
    st.builds(
        lambda k, v: {k: v},
        st.sampled_from(["text", "text_any", "phrase"]),
        st.sampled_from(["fox", "quick fox", "Red", "brown fox", "", "the", "fox jumps"]),
    ),
    st.builds(
        lambda k, v: {k: v},
        st.sampled_from(["prefix", "substring"]),
        st.sampled_from(["re", "R", "fox", "", "2024"]),
    ),
)


polygons = st.sampled_from(
    [
        {
            "exterior": {
                "points": [
                    {"lon": -0.5, "lat": -0.5},
                    {"lon": 1.2, "lat": -0.5},
                    {"lon": 1.2, "lat": 1.7},
                    {"lon": -0.5, "lat": -0.5},
                ]
            }
        },
        {
            "exterior": {
                "points": [
                    {"lon": -2, "lat": -2},
                    {"lon": 2, "lat": -2},
                    {"lon": 2, "lat": 2.5},
                    {"lon": -2, "lat": 2.5},
                    {"lon": -2, "lat": -2},
                ]
            },
            "interiors": [
                {
                    "points": [
                        {"lon": -0.2, "lat": -0.2},
                        {"lon": 0.7, "lat": -0.2},
                        {"lon": 0.7, "lat": 0.7},
                        {"lon": -0.2, "lat": -0.2},
                    ]
                }
            ],
        },
    ]
)
field_tests = st.one_of(
    st.builds(lambda m: {"match": m}, matches),
    st.builds(lambda b: {"range": b}, bounds(st.sampled_from([-3, -0.5, 0, 1, 1.5, 3]))),
    st.builds(lambda b: {"range": b}, bounds(st.sampled_from(DATE_BOUNDS))),
    st.builds(lambda b: {"values_count": b}, bounds(st.integers(0, 3))),
    st.builds(
        lambda r: {"geo_radius": {"center": {"lon": 0.0, "lat": 0.0}, "radius": r}},
        st.sampled_from([1.0, 60_000.0, 120_000.0, 300_000.0]),
    ),
    st.builds(
        lambda tl, br: {"geo_bounding_box": {"top_left": tl, "bottom_right": br}},
        st.sampled_from([{"lon": -0.7, "lat": 1.2}, {"lon": 1.2, "lat": 2.2}]),
        st.sampled_from([{"lon": 1.2, "lat": -0.2}, {"lon": -0.7, "lat": -1.5}]),
    ),
    st.builds(lambda p: {"geo_polygon": p}, polygons),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["is_empty", "is_null"]), st.booleans()),
)
id_pool = st.sampled_from([0, 1, 2, 5, 40, UUID_ID, UUID_ID.upper()])


def with_client_nulls(condition: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Spell absent fields as explicit nulls, the way qdrant-client serialises models."""
    return {**{key: None for key in keys}, **condition}


def leaf_conditions(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    key_names = st.sampled_from(keys[:3]) | st.sampled_from(keys)  # favour top-level keys
    field_condition = st.builds(lambda k, t: {"key": k, **t}, key_names, field_tests)
    return st.one_of(
        field_condition,
        field_condition.map(lambda c: with_client_nulls(c, ["match", "range", "geo_radius"])),
        st.builds(
            lambda k, kind: {kind: {"key": k}},
            st.sampled_from(keys),
            st.sampled_from(["is_empty", "is_null"]),
        ),
        st.builds(lambda ids: {"has_id": ids}, st.lists(id_pool, max_size=3)),
        st.builds(lambda n: {"has_vector": n}, st.sampled_from([*VECTOR_NAMES, "missing"])),
    )


def filters(conditions: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Qdrant's skeleton, with the nulls qdrant-client writes for a lone clause."""
    parts = filter_clauses(conditions)
    return parts.map(lambda f: with_client_nulls(f, ["must", "should"]) if len(f) == 1 else f)


def conditions_for(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    nested = st.builds(
        lambda k, f: {"nested": {"key": k, "filter": f}},
        st.sampled_from(NESTED_KEYS),
        filters(leaf_conditions(["a", "b", "x", "a[]", "x.a"])),
    )
    return st.recursive(leaf_conditions(keys) | nested, filters, max_leaves=6)


random_filters = filters(conditions_for(KEYS))


# --- the two sides -------------------------------------------------------------------


@dataclass
class Rows:
    """Quiver's FilterSource over the generated points."""

    points: list[PointSpec]

    @property
    def ids(self) -> Sequence[PointId]:
        return [parse_point_id(point.point_id) for point in self.points]

    @property
    def payloads(self) -> Sequence[dict[str, Any]]:
        return [point.payload for point in self.points]

    def vector_present(self, name: str) -> npt.NDArray[np.bool_]:
        return np.array([name in point.vectors for point in self.points], dtype=bool)


@pytest.fixture(scope="module")
def client() -> Iterator[QdrantClient]:
    local = QdrantClient(":memory:")
    yield local
    local.close()


def load(client: QdrantClient, points: list[PointSpec]) -> None:
    if client.collection_exists(COLLECTION):
        client.delete_collection(COLLECTION)
    params = models.VectorParams(size=2, distance=models.Distance.COSINE)
    client.create_collection(COLLECTION, vectors_config=dict.fromkeys(VECTOR_NAMES, params))
    structs = [
        models.PointStruct(
            id=p.point_id, payload=p.payload, vector={n: [1.0, 0.5] for n in p.vectors}
        )
        for p in points
    ]
    client.upsert(COLLECTION, points=structs)


def local_ids(client: QdrantClient, raw_filter: dict[str, Any]) -> tuple[set[PointId], int]:
    qdrant_filter = models.Filter.model_validate(raw_filter)
    records, _ = client.scroll(COLLECTION, scroll_filter=qdrant_filter, limit=1000)
    count = client.count(COLLECTION, count_filter=qdrant_filter, exact=True).count
    return {parse_point_id(record.id) for record in records}, count


def quiver_ids(points: list[PointSpec], raw_filter: dict[str, Any]) -> set[PointId]:
    rows = Rows(points)
    parsed = parse_filter(raw_filter)
    if parsed is None:
        return set(rows.ids)
    mask = parsed.mask(rows)
    by_row = [
        parsed.matches(pid, payload, point.vectors.__contains__)
        for pid, payload, point in zip(rows.ids, rows.payloads, points, strict=True)
    ]
    assert mask.tolist() == by_row, "mask and matches disagree"
    return {pid for pid, hit in zip(rows.ids, mask.tolist(), strict=True) if hit}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=point_sets(), raw_filter=random_filters)
def test_filter_selects_what_qdrant_local_selects(
    client: QdrantClient, points: list[PointSpec], raw_filter: dict[str, Any]
) -> None:
    load(client, points)
    expected, count = local_ids(client, raw_filter)
    assert expected == quiver_ids(points, raw_filter)
    assert count == len(expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=leaf_conditions(["a", "a[]", "a[1]"]))
def test_single_condition_selects_what_qdrant_local_selects(
    client: QdrantClient, condition: dict[str, Any]
) -> None:
    """One condition against the value zoo: every test meets every kind of value."""
    points = value_zoo()
    raw_filter = {"must": [condition]}
    load(client, points)
    expected, _ = local_ids(client, raw_filter)
    assert expected == quiver_ids(points, raw_filter)
