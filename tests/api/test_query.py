"""Search: universal query and legacy search, single and batch, with every option."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api


def hits(api: Api, collection: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = api.result(
        "POST", f"/collections/{collection}/points/query", body
    )["points"]
    return points


def test_query_returns_nearest_by_dot_product(api: Api, collection: str) -> None:
    points = hits(api, collection, {"query": [1, 0, 0, 0], "limit": 3})
    assert [p["id"] for p in points] == [10, 9, 8]
    assert [p["score"] for p in points] == [10.0, 9.0, 8.0]
    assert points[0]["payload"] is None and points[0]["vector"] is None


def test_nearest_object_form_equals_plain_vector(api: Api, collection: str) -> None:
    plain = hits(api, collection, {"query": [1, 0, 0, 0], "limit": 4})
    wrapped = hits(api, collection, {"query": {"nearest": [1, 0, 0, 0]}, "limit": 4})
    assert plain == wrapped


def test_query_with_filter_offset_and_payload(api: Api, collection: str) -> None:
    body = {
        "query": [1, 0, 0, 0],
        "filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]},
        "limit": 2,
        "offset": 1,
        "with_payload": {"include": ["n"]},
    }
    points = hits(api, collection, body)
    assert [(p["id"], p["payload"]) for p in points] == [(7, {"n": 7}), (5, {"n": 5})]


def test_score_threshold_cuts_results(api: Api, collection: str) -> None:
    points = hits(api, collection, {"query": [1, 0, 0, 0], "limit": 10, "score_threshold": 7.5})
    assert [p["id"] for p in points] == [10, 9, 8]


def test_query_by_point_id_excludes_that_point(api: Api, collection: str) -> None:
    points = hits(api, collection, {"query": 10, "limit": 2})
    assert [p["id"] for p in points] == [9, 8]


def test_query_without_vector_pages_in_id_order(api: Api, collection: str) -> None:
    points = hits(api, collection, {"limit": 3, "offset": 1})
    assert [p["id"] for p in points] == [2, 3, 4]


def test_filter_matching_nothing_returns_nothing(api: Api, collection: str) -> None:
    flt = {"must": [{"key": "city", "match": {"value": "Paris"}}]}
    assert hits(api, collection, {"query": [1, 0, 0, 0], "filter": flt}) == []


def test_filter_matching_fewer_than_limit_returns_all_of_them(api: Api, collection: str) -> None:
    flt = {"must": [{"key": "n", "range": {"lte": 2}}]}
    points = hits(api, collection, {"query": [1, 0, 0, 0], "filter": flt, "limit": 10})
    assert [p["id"] for p in points] == [2, 1]


def test_deleted_points_are_never_returned(api: Api, collection: str) -> None:
    api.result("POST", f"/collections/{collection}/points/delete", {"points": [10, 9]})
    points = hits(api, collection, {"query": [1, 0, 0, 0], "limit": 10})
    assert [p["id"] for p in points] == [8, 7, 6, 5, 4, 3, 2, 1]


def test_query_batch_answers_each_search(api: Api, collection: str) -> None:
    body = {
        "searches": [
            {"query": [1, 0, 0, 0], "limit": 1},
            {"query": [-1, 0, 0, 0], "limit": 1},
            {
                "query": [1, 0, 0, 0],
                "limit": 1,
                "filter": {"must": [{"key": "n", "range": {"lt": 5}}]},
            },
        ]
    }
    answers = api.result("POST", f"/collections/{collection}/points/query/batch", body)
    assert [[p["id"] for p in a["points"]] for a in answers] == [[10], [1], [4]]


@pytest.mark.parametrize("payload_in_one", [False, True])
def test_a_batch_pages_each_search_as_it_would_be_answered_alone(
    api: Api, collection: str, payload_in_one: bool
) -> None:
    """Pages of different lengths (limit, offset, a threshold cutting one short, none
    found) cut from one batch's hits; with a payload asked by one item, hit by hit."""
    searches: list[dict[str, Any]] = [
        {"query": [1, 0, 0, 0], "limit": 3},
        {"query": [-1, 0, 0, 0], "limit": 2, "offset": 1},
        {"query": [1, 0, 0, 0], "limit": 5, "score_threshold": 7.5},
        {"query": [1, 0, 0, 0], "limit": 4, "score_threshold": 100},
        {"query": [0.5, 0, 0, 0], "limit": 1, "offset": 2},
    ]
    if payload_in_one:
        searches[1]["with_payload"] = True
    answers = api.result(
        "POST", f"/collections/{collection}/points/query/batch", {"searches": searches}
    )
    assert [a["points"] for a in answers] == [hits(api, collection, s) for s in searches]
    assert [[p["id"] for p in a["points"]] for a in answers] == [
        [10, 9, 8], [2, 3], [10, 9, 8], [], [8],
    ]  # fmt: skip


ALIKE_VECTORS = [[1, 0, 0, 0], [-1, 0, 0, 0], [0.5, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
ALIKE_COMMON: list[dict[str, Any]] = [
    {"limit": 3},
    {"limit": 2, "offset": 1, "filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]}},
    {"limit": 4, "score_threshold": 1.5, "params": {"hnsw_ef": 4}},
    {"limit": 2, "offset": 9},
    {"limit": 3, "params": {"exact": True}, "with_payload": False, "with_vector": False},
    {"limit": 2, "with_vector": True},
    {"limit": 2, "with_payload": ["n"]},
]  # fmt: skip


@pytest.mark.parametrize("common", ALIKE_COMMON)
@pytest.mark.parametrize(("route", "key"), [("query", "query"), ("search", "vector")])
def test_a_batch_alike_but_for_its_vectors_answers_each_as_alone(
    api: Api, collection: str, common: dict[str, Any], route: str, key: str
) -> None:
    """Items that differ only in their vector are searched together on their matrix
    (``AlikeQueries``); each answer is the item's own, pages cut short or empty included."""
    items = [common | {key: vector} for vector in ALIKE_VECTORS]
    url = f"/collections/{collection}/points/{route}"
    answers = api.result("POST", url + "/batch", {"searches": items})
    alone = [api.result("POST", url, item) for item in items]
    assert answers == alone
    found = [a if route == "search" else a["points"] for a in answers]
    if common.get("offset") != 9:  # past every point: each page is empty
        assert len({tuple(p["id"] for p in points) for points in found}) > 1


def test_an_alike_batch_with_a_vector_of_the_wrong_size_is_refused_as_the_full_route(
    api: Api, collection: str
) -> None:
    items = [{"query": [1, 0, 0, 0]}, {"query": [1, 0, 0]}, {"query": [0, 1, 0, 0]}]
    url = f"/collections/{collection}/points/query/batch"
    status, body = api.post(url, {"searches": items})
    full_status, full = api.post(url, {"searches": items, "shard_key": None})
    assert status == full_status == 400
    assert body["status"] == full["status"]
    assert "expected dim: 4, got 3" in body["status"]["error"]


def test_legacy_search_and_search_batch(api: Api, collection: str) -> None:
    single = api.result(
        "POST", f"/collections/{collection}/points/search", {"vector": [1, 0, 0, 0], "limit": 2}
    )
    assert [p["id"] for p in single] == [10, 9]
    batch = api.result(
        "POST",
        f"/collections/{collection}/points/search/batch",
        {"searches": [{"vector": [1, 0, 0, 0], "limit": 1}, {"vector": [-1, 0, 0, 0], "limit": 1}]},
    )
    assert [[p["id"] for p in a] for a in batch] == [[10], [1]]


@pytest.mark.parametrize(
    ("distance", "query", "expected_ids", "expected_scores"),
    [
        ("Euclid", [0.0, 1.5], [1, 2], [0.5, 2.5]),
        ("Manhattan", [1.0, 1.5], [1, 2], [1.5, 3.5]),
        ("Cosine", [1.0, 0.0], [3, 2], [1.0, 0.0]),
        ("Dot", [0.0, 1.0], [2, 1], [4.0, 2.0]),
    ],
)
def test_each_distance_scores_like_qdrant(
    api: Api,
    distance: str,
    query: list[float],
    expected_ids: list[int],
    expected_scores: list[float],
) -> None:
    api.result("PUT", "/collections/m", {"vectors": {"size": 2, "distance": distance}})
    points = [{"id": 1, "vector": [0, 2]}, {"id": 2, "vector": [0, 4]}, {"id": 3, "vector": [5, 0]}]
    api.result("PUT", "/collections/m/points?wait=true", {"points": points})
    found = hits(api, "m", {"query": query, "limit": 2})
    assert [p["id"] for p in found] == expected_ids
    assert [p["score"] for p in found] == pytest.approx(expected_scores, abs=1e-6)


def test_named_vector_query_with_using(api: Api) -> None:
    body = {"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}}
    api.result("PUT", "/collections/n", body)
    points = [
        {"id": 1, "vector": {"a": [1, 0], "b": [0, 1]}},
        {"id": 2, "vector": {"a": [0, 1], "b": [1, 0]}},
    ]
    api.result("PUT", "/collections/n/points?wait=true", {"points": points})
    assert [p["id"] for p in hits(api, "n", {"query": [1, 0], "using": "a", "limit": 1})] == [1]
    assert [p["id"] for p in hits(api, "n", {"query": [1, 0], "using": "b", "limit": 1})] == [2]
    legacy = api.result(
        "POST",
        "/collections/n/points/search",
        {"vector": {"name": "b", "vector": [1, 0]}, "limit": 1},
    )
    assert [p["id"] for p in legacy] == [2]


def test_cosine_vectors_are_stored_normalised(api: Api) -> None:
    api.result("PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Cosine"}})
    api.result("PUT", "/collections/c/points?wait=true", {"points": [{"id": 1, "vector": [3, 4]}]})
    assert api.result("GET", "/collections/c/points/1")["vector"] == pytest.approx([0.6, 0.8])
