"""Sparse vectors over HTTP: config shapes, points, every search form, bad input (400,
nothing written), sealing, restart and snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import models

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.snapshots import download, state, take_snapshot, upload

SPARSE = {"text": {"modifier": "idf"}, "plain": {"index": {"full_scan_threshold": 500}}}


def create(api: Api, name: str = "hy", dense: bool = True, **extra: Any) -> None:
    body: dict[str, Any] = {"sparse_vectors": SPARSE} | extra
    if dense:
        body["vectors"] = {"d": {"size": 2, "distance": "Dot"}}
    api.result("PUT", f"/collections/{name}", body)


def sv(indices: list[int], values: list[float]) -> dict[str, Any]:
    return {"indices": indices, "values": values}


VECTORS: list[dict[str, Any]] = [
    {"d": [1.0, 0.0], "plain": sv([3, 1], [2.0, 1.0])},
    {"plain": sv([1, 7], [0.5, 4.0]), "text": sv([1], [1.0])},
    {"d": [0.0, 1.0], "plain": sv([7], [1.0])},
    {"text": sv([1, 2], [1.0, 1.0])},
]
POINTS = [{"id": i, "vector": v, "payload": {"k": i}} for i, v in enumerate(VECTORS, 1)]


def upsert(api: Api, name: str = "hy", points: list[dict[str, Any]] = POINTS) -> None:
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def ids(hits: list[dict[str, Any]]) -> list[Any]:
    return [h["id"] for h in hits]


def test_config_is_rendered_as_qdrant_does(api: Api) -> None:
    create(api)
    params = api.result("GET", "/collections/hy")["config"]["params"]
    assert params["sparse_vectors"] == {
        "text": {"modifier": "idf"},
        "plain": {"index": {"full_scan_threshold": 500}},
    }
    assert params["vectors"] == {"d": {"size": 2, "distance": "Dot"}}
    patch = {"sparse_vectors": {"plain": {"modifier": "idf", "index": {"on_disk": True}}}}
    api.result("PATCH", "/collections/hy", patch)
    params = api.result("GET", "/collections/hy")["config"]["params"]
    assert params["sparse_vectors"]["plain"] == {
        "index": {"full_scan_threshold": 500, "on_disk": True},
        "modifier": "idf",
    }
    status, _ = api.call("PATCH", "/collections/hy", {"sparse_vectors": {"nope": {}}})
    assert status == 400
    info = models.CollectionInfo.model_validate(api.result("GET", "/collections/hy"))
    assert info.config.params.sparse_vectors is not None
    assert info.config.params.sparse_vectors["plain"].modifier == models.Modifier.IDF


def test_sparse_only_collection(api: Api) -> None:
    create(api, "so", dense=False)
    params = api.result("GET", "/collections/so")["config"]["params"]
    assert params["vectors"] == {}
    upsert(api, "so", [{"id": 1, "vector": {"plain": sv([5, 2], [1.0, 2.0])}}])
    hits = api.result(
        "POST", "/collections/so/points/query", {"query": sv([2], [3.0]), "using": "plain"}
    )
    assert hits["points"][0]["id"] == 1 and hits["points"][0]["score"] == pytest.approx(6.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"d": [1.0, 0.0], "plain": sv([1, 1], [1.0, 2.0])},
        {"plain": sv([-1], [1.0])},
        {"plain": sv([2**32], [1.0])},
        {"plain": sv([1, 2], [1.0])},
        {"plain": {"indices": [1], "values": ["x"]}},
        {"plain": sv([1], [1e39])},
        {"plain": [1.0, 2.0]},
        {"d": sv([1], [1.0])},
        {"nope": sv([1], [1.0])},
        {"plain": {"indices": [1], "values": [1.0], "extra": 1}},
    ],
)
def test_bad_sparse_vectors_are_400_and_write_nothing(api: Api, bad: dict[str, Any]) -> None:
    create(api)
    good = {"id": 10, "vector": {"plain": sv([1], [1.0])}}
    status, answer = api.call(
        "PUT", "/collections/hy/points?wait=true", {"points": [good, {"id": 11, "vector": bad}]}
    )
    assert status == 400, answer
    assert "Wrong input" in answer["status"]["error"]
    assert api.result("POST", "/collections/hy/points/count", {})["count"] == 0


def test_nan_is_400(api: Api) -> None:
    create(api)
    body = '{"points": [{"id": 1, "vector": {"plain": {"indices": [1], "values": [NaN]}}}]}'
    response = api.client.put(
        "/collections/hy/points", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert api.result("POST", "/collections/hy/points/count", {})["count"] == 0


def test_points_and_vectors_round_trip(api: Api) -> None:
    create(api)
    upsert(api)
    got = api.result("POST", "/collections/hy/points", {"ids": [1, 2], "with_vector": True})
    assert got[0]["vector"] == {"d": [1.0, 0.0], "plain": sv([1, 3], [1.0, 2.0])}
    assert got[1]["vector"] == {"plain": sv([1, 7], [0.5, 4.0]), "text": sv([1], [1.0])}
    picked = api.result("POST", "/collections/hy/points", {"ids": [2], "with_vector": ["text"]})
    assert picked[0]["vector"] == {"text": sv([1], [1.0])}
    page = api.result("POST", "/collections/hy/points/scroll", {"with_vector": ["plain"]})
    assert [p["vector"].get("plain") for p in page["points"]][:3] == [
        sv([1, 3], [1.0, 2.0]),
        sv([1, 7], [0.5, 4.0]),
        sv([7], [1.0]),
    ]


def test_batch_form_upsert(api: Api) -> None:
    create(api)
    batch = {
        "ids": [1, 2],
        "vectors": {"plain": [sv([1], [1.0]), sv([1, 2], [2.0, 1.0])], "d": [[1, 0], [0, 1]]},
    }
    api.result("PUT", "/collections/hy/points?wait=true", {"batch": batch})
    hits = api.result(
        "POST", "/collections/hy/points/query", {"query": sv([1], [1.0]), "using": "plain"}
    )
    assert ids(hits["points"]) == [2, 1]
    bad = {"ids": [3], "vectors": {"plain": [sv([1, 1], [1.0, 1.0])]}}
    status, _ = api.call("PUT", "/collections/hy/points?wait=true", {"batch": bad})
    assert status == 400
    assert api.result("POST", "/collections/hy/points/count", {})["count"] == 2


def test_every_query_form(api: Api) -> None:
    create(api)
    upsert(api)
    query = sv([1, 7], [1.0, 1.0])
    want = [2, 1, 3]  # 0.5 + 4, then 1 and 1 (a tie: lower id first)
    forms = [
        ("query", {"query": query, "using": "plain"}),
        ("query", {"query": {"nearest": query}, "using": "plain"}),
        ("search", {"vector": {"name": "plain", "vector": query}, "limit": 10}),
    ]
    for endpoint, body in forms:
        answer = api.result("POST", f"/collections/hy/points/{endpoint}", body)
        hits = answer if endpoint == "search" else answer["points"]
        assert ids(hits) == want
        assert hits[0]["score"] == pytest.approx(4.5)
    batch = api.result(
        "POST", "/collections/hy/points/query/batch", {"searches": [forms[0][1], forms[1][1]]}
    )
    assert [ids(b["points"]) for b in batch] == [want, want]
    filtered = {
        "query": query,
        "using": "plain",
        "filter": {"must": [{"key": "k", "match": {"any": [1, 3]}}]},
    }
    assert ids(api.result("POST", "/collections/hy/points/query", filtered)["points"]) == [1, 3]
    paged = {"query": query, "using": "plain", "offset": 1, "limit": 1, "with_vector": ["plain"]}
    hit = api.result("POST", "/collections/hy/points/query", paged)["points"][0]
    assert hit["id"] == 1 and hit["vector"] == {"plain": sv([1, 3], [1.0, 2.0])}
    above = {"query": query, "using": "plain", "score_threshold": 2.0}
    assert ids(api.result("POST", "/collections/hy/points/query", above)["points"]) == [2]
    explained = api.result(
        "POST", "/collections/hy/points/query", {"query": query, "using": "plain", "explain": True}
    )
    assert ids(explained["points"]) == want
    assert [plan["strategy"] for plan in explained["explain"]] == ["exact"]
    by_id = {"query": 3, "using": "plain"}
    assert ids(api.result("POST", "/collections/hy/points/query", by_id)["points"]) == [2]


def test_bad_queries(api: Api) -> None:
    create(api)
    upsert(api)
    for body in [
        {"query": sv([1], [1.0])},
        {"query": sv([1], [1.0]), "using": "d"},
        {"query": sv([1], [1.0]), "using": "nope"},
        {"query": sv([1, 1], [1.0, 1.0]), "using": "plain"},
        {"query": [1.0, 0.0], "using": "plain"},
    ]:
        status, answer = api.call("POST", "/collections/hy/points/query", body)
        assert status == 400, (body, answer)


def test_idf_follows_deletes(api: Api) -> None:
    create(api)
    upsert(api)
    query = {"query": sv([1, 2], [1.0, 1.0]), "using": "text"}
    # N = 2 holders of "text"; df(1) = 2, df(2) = 1
    hits = api.result("POST", "/collections/hy/points/query", query)["points"]
    idf1 = __import__("math").log((2 - 2 + 0.5) / (2 + 0.5) + 1)
    idf2 = __import__("math").log((2 - 1 + 0.5) / (1 + 0.5) + 1)
    assert ids(hits) == [4, 2]
    assert hits[0]["score"] == pytest.approx(idf1 + idf2, rel=1e-5)
    api.result("POST", "/collections/hy/points/delete?wait=true", {"points": [2]})
    hits = api.result("POST", "/collections/hy/points/query", query)["points"]
    idf1 = __import__("math").log((1 - 1 + 0.5) / (1 + 0.5) + 1)
    assert hits[0]["score"] == pytest.approx(idf1 + idf1, rel=1e-5)


def test_survives_seal_restart_and_snapshot(tmp_path: Path) -> None:
    query = {"query": sv([1, 7], [1.0, 1.0]), "using": "plain", "with_vector": ["plain"]}
    idf_query = {"query": sv([1, 2], [1.0, 1.0]), "using": "text"}
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, optimizers_config={"indexing_threshold": 2})
        upsert(api)
        wait_green(api, "hy")
        api.result("POST", "/collections/hy/points/delete?wait=true", {"points": [3]})
        segments = api.result("GET", "/collections/hy/segments")
        assert any(s["kind"] == "sealed" for s in segments), segments
        memory = api.result("GET", "/collections/hy")["vectors_memory"]
        assert memory["plain"]["points"] > 0 and memory["plain"]["bytes"]["rows"] > 0
        before = api.result("POST", "/collections/hy/points/query", query)["points"]
        idf_before = api.result("POST", "/collections/hy/points/query", idf_query)["points"]
        assert ids(before) == [2, 1]
        saved = state(api, "hy")
        snapshot = take_snapshot(api, "hy")["name"]
        data = download(api, "hy", snapshot)
    with make_client(tmp_path) as client:
        api = Api(client)
        assert api.result("POST", "/collections/hy/points/query", query)["points"] == before
        assert api.result("POST", "/collections/hy/points/query", idf_query)["points"] == idf_before
        status, answer = upload(api, "copy", data)
        assert status == 200, answer
        assert state(api, "copy") == saved
        assert api.result("POST", "/collections/copy/points/query", query)["points"] == before


@pytest.mark.parametrize("strategy", ["exact", "graph", "post_filter"])
def test_forced_strategies_answer_sparse_queries_exactly(api: Api, strategy: str) -> None:
    """Sparse segments have no graph; a forced strategy still answers exactly (point 3
    passes the filter but shares no term: fewer hits than candidates)."""
    create(api)
    upsert(api)
    body = {
        "query": sv([1], [1.0]),
        "using": "plain",
        "strategy": strategy,
        "filter": {"must": [{"key": "k", "range": {"lte": 3}}]},
    }
    assert ids(api.result("POST", "/collections/hy/points/query", body)["points"]) == [1, 2]
