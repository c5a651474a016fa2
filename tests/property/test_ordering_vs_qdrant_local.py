"""``order_by``, ``sample``, the distance matrix and the ``slice`` condition must
answer as qdrant-client's local mode does.

One collection lives in Quiver three times (one segment; several sealed segments with
deletes and re-upserts; three shards) and once in ``QdrantClient(":memory:")``. Its
payloads have an integer key with many ties and some arrays (a point then appears
once per distinct value), a float key, a datetime key and a colour. Hypothesis draws
``order_by`` (key, direction, ``start_from``), limits and filters; ids, order and
``order_value`` must agree exactly. Paging by ``start_from`` (the way Qdrant pages an
``order_by`` scroll) must visit every matching point once, whatever the segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api, make_client, sealed_segments, wait_green
from tests.helpers.sharded import SHARDS

NAME = "ordered"
SEGMENTED = "ordered_segments"
SHARDED = "ordered_shards"
COLLECTIONS = (NAME, SEGMENTED, SHARDED)
POINTS = 90
DELETED = list(range(3, POINTS, 7))
DIM = 4
COLORS = ["red", "green", "blue"]
INDEXES = {"n": "integer", "f": "float", "ts": "datetime", "color": "keyword"}
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"must": [{"key": "color", "match": {"value": "red"}}]},
    {"must_not": [{"key": "f", "range": {"lt": 0.3}}]},
    {"must": [{"slice": {"total": 3, "index": 1}}]},
]


def _payload(i: int, rng: np.random.Generator) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "n": int(rng.integers(0, 12)),  # ~8 points per value: ties everywhere
        "f": round(float(rng.uniform(0, 1)), 6),
        "ts": f"2024-0{1 + i % 9}-{10 + i % 17}T0{i % 10}:00:00Z",
        "color": COLORS[i % 3],
    }
    if i % 5 == 0:
        payload["n"] = [payload["n"], int(rng.integers(0, 12)), payload["n"]]
    if i % 11 == 0:
        del payload["f"]
    return payload


def _points() -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [
        {"id": i, "vector": rng.normal(size=DIM).round(4).tolist(), "payload": _payload(i, rng)}
        for i in range(POINTS)
    ]


def _fill(api: Api, name: str, points: list[dict[str, Any]], config: dict[str, Any]) -> None:
    api.result(
        "PUT", f"/collections/{name}", {"vectors": {"size": DIM, "distance": "Dot"}} | config
    )
    for field, schema in INDEXES.items():
        body = {"field_name": field, "field_schema": schema}
        api.result("PUT", f"/collections/{name}/index?wait=true", body)
    for start in range(0, POINTS, 20):  # several requests: several segments where sealed
        batch = {"points": points[start : start + 20]}
        api.result("PUT", f"/collections/{name}/points?wait=true", batch)
    api.result("POST", f"/collections/{name}/points/delete?wait=true", {"points": DELETED})
    again = [point for point in points if point["id"] in DELETED[::2]]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": again})


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, QdrantClient]]:
    points = _points()
    local = QdrantClient(":memory:")
    local.create_collection(NAME, models.VectorParams(size=DIM, distance=models.Distance.DOT))
    local.upsert(NAME, [models.PointStruct(**point) for point in points])
    local.delete(NAME, models.PointIdsList(points=DELETED))
    again = [models.PointStruct(**p) for p in points if p["id"] in DELETED[::2]]
    local.upsert(NAME, again)
    folder: Path = tmp_path_factory.mktemp("ordering")
    with make_client(folder, idle_seal_s=0) as client:
        api = Api(client)
        _fill(api, NAME, points, {})
        _fill(api, SEGMENTED, points, {"optimizers_config": {"indexing_threshold": 20}})
        _fill(api, SHARDED, points, {"shard_number": SHARDS})
        wait_green(api, SEGMENTED)
        segments = api.result("GET", f"/collections/{SEGMENTED}/segments")
        assert sealed_segments(api, SEGMENTED)
        assert len([s for s in segments if s["points"]]) >= 2, segments
        yield api, local


def _local_order(order_by: dict[str, Any]) -> models.OrderBy:
    return models.OrderBy(
        key=order_by["key"],
        direction=models.Direction(order_by["direction"]),
        start_from=order_by.get("start_from"),
    )


def _local_filter(raw: dict[str, Any] | None) -> models.Filter | None:
    return None if raw is None else models.Filter.model_validate(raw)


def _order_bys() -> st.SearchStrategy[dict[str, Any]]:
    starts = {
        "n": st.integers(-1, 13),
        "f": st.floats(0, 1).map(lambda x: round(x, 3)),
        "ts": st.sampled_from(["2024-03-12T00:00:00Z", "2024-06-01T05:00:00Z"]),
    }
    return st.sampled_from(sorted(starts)).flatmap(
        lambda key: st.fixed_dictionaries(
            {"key": st.just(key), "direction": st.sampled_from(["asc", "desc"])},
            optional={"start_from": starts[key]},
        )
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order_by=_order_bys(),
    limit=st.integers(1, 100),
    flt=st.sampled_from(FILTERS),
    name=st.sampled_from(COLLECTIONS),
)
def test_order_by_scroll_equals_local_mode(
    both: tuple[Api, QdrantClient],
    order_by: dict[str, Any],
    limit: int,
    flt: dict[str, Any] | None,
    name: str,
) -> None:
    api, local = both
    body = {"order_by": order_by, "limit": limit, "filter": flt, "with_payload": False}
    page = api.result("POST", f"/collections/{name}/points/scroll", body)
    expected, _ = local.scroll(
        NAME, _local_filter(flt), limit, order_by=_local_order(order_by), with_payload=False
    )
    assert [(p["id"], p["order_value"]) for p in page["points"]] == [
        (r.id, r.order_value) for r in expected
    ]
    assert page["next_page_offset"] is None


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order_by=_order_bys(),
    limit=st.integers(1, 30),
    offset=st.integers(0, 5),
    flt=st.sampled_from(FILTERS),
    name=st.sampled_from(COLLECTIONS),
)
def test_order_by_query_equals_local_mode(
    both: tuple[Api, QdrantClient],
    order_by: dict[str, Any],
    limit: int,
    offset: int,
    flt: dict[str, Any] | None,
    name: str,
) -> None:
    api, local = both
    body = {"query": {"order_by": order_by}, "limit": limit, "offset": offset, "filter": flt}
    found = api.result("POST", f"/collections/{name}/points/query", body)["points"]
    expected = local.query_points(
        NAME,
        query=models.OrderByQuery(order_by=_local_order(order_by)),
        limit=limit,
        offset=offset,
        query_filter=_local_filter(flt),
    ).points
    assert [(p["id"], p["order_value"], p["score"]) for p in found] == [
        (p.id, p.order_value, p.score) for p in expected
    ]


@pytest.mark.parametrize("name", COLLECTIONS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("flt", FILTERS)
def test_paging_by_start_from_visits_every_match_once(
    both: tuple[Api, QdrantClient], name: str, direction: str, flt: dict[str, Any] | None
) -> None:
    """Qdrant's paging: the next page starts from the last value (inclusive), minus
    the ids already seen at that value; the pages join into the one long page."""
    api, _ = both
    url = f"/collections/{name}/points/scroll"
    whole = api.result(
        "POST",
        url,
        {
            "order_by": {"key": "n", "direction": direction},
            "limit": 1000,
            "filter": flt,
            "with_payload": False,
        },
    )
    seen: list[tuple[int, int]] = []
    start: int | None = None
    while True:
        order_by: dict[str, Any] = {"key": "n", "direction": direction, "start_from": start}
        page = api.result(
            "POST", url, {"order_by": order_by, "limit": 25, "filter": flt, "with_payload": False}
        )["points"]
        fresh = [
            (p["id"], p["order_value"]) for p in page if (p["id"], p["order_value"]) not in seen
        ]
        if not fresh:
            break
        seen += fresh
        start = fresh[-1][1]
    assert seen == [(p["id"], p["order_value"]) for p in whole["points"]]


def test_order_by_sees_writes_after_deletes(both: tuple[Api, QdrantClient]) -> None:
    api, _ = both
    body = {"order_by": {"key": "f", "direction": "desc"}, "limit": 500, "with_payload": False}
    for name in COLLECTIONS:
        ids = [
            p["id"]
            for p in api.result("POST", f"/collections/{name}/points/scroll", body)["points"]
        ]
        assert not set(DELETED[1::2]) & set(ids)
        assert set(DELETED[::2]) - {i for i in DELETED if i % 11 == 0} <= set(ids)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    total=st.integers(1, 7),
    data=st.data(),
    name=st.sampled_from(COLLECTIONS),
)
def test_slice_condition_equals_local_mode(
    both: tuple[Api, QdrantClient], total: int, data: st.DataObject, name: str
) -> None:
    api, local = both
    index = data.draw(st.integers(0, total - 1))
    flt = {"must": [{"slice": {"total": total, "index": index}}]}
    body = {"filter": flt, "limit": 1000, "with_payload": False}
    ids = [
        p["id"] for p in api.result("POST", f"/collections/{name}/points/scroll", body)["points"]
    ]
    expected, _ = local.scroll(NAME, _local_filter(flt), limit=1000, with_payload=False)
    assert ids == [r.id for r in expected]


def test_slices_partition_uuid_ids_as_local_mode(tmp_path: Path) -> None:
    ids = [str(__import__("uuid").UUID(int=int(i) * 7919 + 1)) for i in range(40)] + [5, 2**40]
    local = QdrantClient(":memory:")
    local.create_collection("u", models.VectorParams(size=2, distance=models.Distance.DOT))
    points = [{"id": i, "vector": [1.0, 0.5]} for i in ids]
    local.upsert("u", [models.PointStruct(**p) for p in points])
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/u", {"vectors": {"size": 2, "distance": "Dot"}})
        api.result("PUT", "/collections/u/points?wait=true", {"points": points})
        union: list[Any] = []
        for index in range(3):
            flt = {"must": [{"slice": {"total": 3, "index": index}}]}
            body = {"filter": flt, "limit": 100}
            got = [
                p["id"] for p in api.result("POST", "/collections/u/points/scroll", body)["points"]
            ]
            want, _ = local.scroll("u", _local_filter(flt), limit=100)
            assert got == [r.id for r in want]
            union += got
        assert sorted(map(str, union)) == sorted(map(str, ids))


@pytest.mark.parametrize("name", COLLECTIONS)
@pytest.mark.parametrize("flt", FILTERS)
def test_sample_draws_distinct_matching_points(
    both: tuple[Api, QdrantClient], name: str, flt: dict[str, Any] | None
) -> None:
    api, local = both
    matching = {r.id for r in local.scroll(NAME, _local_filter(flt), limit=1000)[0]}
    body = {"query": {"sample": "random"}, "limit": 15, "filter": flt}
    drawn = [
        p["id"] for p in api.result("POST", f"/collections/{name}/points/query", body)["points"]
    ]
    assert len(drawn) == min(15, len(matching)) == len(set(drawn))
    assert set(drawn) <= matching
    everything = api.result("POST", f"/collections/{name}/points/query", body | {"limit": 1000})
    assert {p["id"] for p in everything["points"]} == matching


@pytest.mark.parametrize("name", COLLECTIONS)
@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("limit", [1, 3, 200])
def test_matrix_over_every_match_equals_local_mode(
    both: tuple[Api, QdrantClient], name: str, flt: dict[str, Any] | None, limit: int
) -> None:
    """``sample`` at least the number of matches makes the sample every match, so the
    matrix is deterministic: ids, pairs and scores must equal local mode's."""
    api, local = both
    body = {"sample": 1000, "limit": limit, "filter": flt}
    pairs = api.result("POST", f"/collections/{name}/points/search/matrix/pairs", body)["pairs"]
    offsets = api.result("POST", f"/collections/{name}/points/search/matrix/offsets", body)
    want = local.search_matrix_pairs(
        NAME, query_filter=_local_filter(flt), limit=limit, sample=1000
    )
    assert [(p["a"], p["b"]) for p in pairs] == [(p.a, p.b) for p in want.pairs]
    assert np.allclose([p["score"] for p in pairs], [p.score for p in want.pairs], atol=1e-4)
    want_offsets = local.search_matrix_offsets(
        NAME, query_filter=_local_filter(flt), limit=limit, sample=1000
    )
    assert offsets["ids"] == want_offsets.ids
    assert offsets["offsets_row"] == want_offsets.offsets_row
    assert offsets["offsets_col"] == want_offsets.offsets_col
    assert np.allclose(offsets["scores"], want_offsets.scores, atol=1e-4)


@pytest.mark.parametrize("modifier", [None, "idf"])
@pytest.mark.parametrize("shards", [1, SHARDS])
def test_sparse_matrix_equals_local_mode(tmp_path: Path, modifier: str | None, shards: int) -> None:
    rng = np.random.default_rng(11)
    points = []
    for i in range(30):
        terms = rng.choice(10, size=int(rng.integers(1, 4)), replace=False)
        values = rng.uniform(0.1, 2, size=len(terms)).round(3)
        sparse = {"indices": terms.tolist(), "values": values.tolist()}
        points.append({"id": i, "vector": {"s": sparse}, "payload": {"i": i}})
    local = QdrantClient(":memory:")
    params = models.SparseVectorParams(modifier=models.Modifier.IDF if modifier else None)
    local.create_collection("sp", vectors_config={}, sparse_vectors_config={"s": params})
    local.upsert("sp", [models.PointStruct(**p) for p in points])
    config = {"sparse_vectors": {"s": {"modifier": modifier} if modifier else {}}}
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/sp", config | {"shard_number": shards})
        api.result("PUT", "/collections/sp/points?wait=true", {"points": points})
        body = {"sample": 100, "limit": 4, "using": "s"}
        got = api.result("POST", "/collections/sp/points/search/matrix/pairs", body)["pairs"]
    want = local.search_matrix_pairs("sp", sample=100, limit=4, using="s").pairs
    assert [p["a"] for p in got] == [p.a for p in want]
    assert np.allclose([p["score"] for p in got], [p.score for p in want], atol=1e-4)
    # sparse scores tie often: equal scores may list their points in either order
    assert {(p["a"], p["b"]) for p in got if p["score"] > 0} == {
        (p.a, p.b) for p in want if p.score > 0
    }
