"""Queries by example over HTTP: the legacy recommend / discover endpoints (single and
batch) answer as the query objects of ``/points/query`` do, example ids are left out,
``lookup_from`` reads examples in another collection, recommend works inside prefetch,
``explain`` names the path taken, and every bad input is a Qdrant-shaped 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api

ITEMS = "/collections/items"


def _ids(result: list[dict[str, Any]]) -> list[Any]:
    return [point["id"] for point in result]


def _query(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = api.result("POST", f"{ITEMS}/points/query", body)["points"]
    return points


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_legacy_recommend_equals_query_and_leaves_out_examples(
    api: Api, collection: str, strategy: str
) -> None:
    body = {"positive": [3, 7], "negative": [1], "strategy": strategy, "limit": 4}
    legacy = api.result("POST", f"{ITEMS}/points/recommend", body)
    query = _query(
        api,
        {"query": {"recommend": {k: body[k] for k in ("positive", "negative", "strategy")}}}
        | {"limit": 4},
    )
    assert _ids(legacy) == _ids(query)
    assert [p["score"] for p in legacy] == pytest.approx([p["score"] for p in query])
    assert len(legacy) == 4 and not {1, 3, 7} & set(_ids(legacy))


def test_recommend_batch_answers_each_search(api: Api, collection: str) -> None:
    searches = [
        {"positive": [10], "limit": 2},
        {"positive": [[1.0, 1.0, 0.0, -1.0]], "strategy": "best_score", "limit": 3},
    ]
    batch = api.result("POST", f"{ITEMS}/points/recommend/batch", {"searches": searches})
    singles = [api.result("POST", f"{ITEMS}/points/recommend", s) for s in searches]
    assert batch == singles
    assert _ids(batch[0]) == [9, 8]  # Dot with [10, 1, 0, -1]: the next-largest first


def test_discover_and_context(api: Api, collection: str) -> None:
    context = [{"positive": 9, "negative": 2}]
    legacy = api.result(
        "POST", f"{ITEMS}/points/discover", {"target": 5, "context": context, "limit": 3}
    )
    query = _query(api, {"query": {"discover": {"target": 5, "context": context}}, "limit": 3})
    assert _ids(legacy) == _ids(query)
    assert not {2, 5, 9} & set(_ids(legacy))
    assert all(p["score"] >= 1 for p in legacy)  # inside the one pair's zone: rank 1
    batch = api.result(
        "POST", f"{ITEMS}/points/discover/batch", {"searches": [{"target": 5, "limit": 3}]}
    )
    assert len(batch) == 1 and len(batch[0]) == 3
    zone = _query(api, {"query": {"context": context}, "limit": 10})
    assert {p["score"] for p in zone if p["id"] >= 6} == {0.0}  # closer to 9 than to 2


def test_relevance_feedback(api: Api, collection: str) -> None:
    feedback = [{"example": 10, "score": 1.0}, {"example": 1, "score": 0.0}]
    body = {"target": 5, "feedback": feedback, "strategy": {"naive": {"a": 1, "b": 1, "c": 1}}}
    points = _query(api, {"query": {"relevance_feedback": body}, "limit": 3})
    assert _ids(points) == [9, 8, 7]


def test_lookup_from_another_collection(api: Api, collection: str) -> None:
    api.result("PUT", "/collections/other", {"vectors": {"v": {"size": 4, "distance": "Dot"}}})
    point = {"id": 3, "vector": {"v": [2.0, 1.0, 0.0, -1.0]}}
    api.result("PUT", "/collections/other/points?wait=true", {"points": [point]})
    lookup = {"collection": "other", "vector": "v"}
    by_lookup = _query(
        api, {"query": {"recommend": {"positive": [3]}}, "lookup_from": lookup, "limit": 10}
    )
    by_vector = _query(api, {"query": [2.0, 1.0, 0.0, -1.0], "limit": 10})
    assert _ids(by_lookup) == _ids(by_vector)
    assert 3 in _ids(by_lookup)  # an id of another collection is not left out here
    nearest = _query(api, {"query": 3, "lookup_from": lookup, "limit": 10})
    assert _ids(nearest) == _ids(by_vector)
    status, body = api.post(
        f"{ITEMS}/points/recommend",
        {"positive": [3], "limit": 2, "lookup_from": {"collection": "missing"}},
    )
    assert status == 404, body


def test_recommend_inside_prefetch(api: Api, collection: str) -> None:
    prefetch = {
        "query": [0.0, 1.0, 0.0, -1.0],
        "filter": {"must": [{"key": "n", "range": {"lt": 6}}]},
    }
    body = {
        "prefetch": prefetch | {"limit": 4},
        "query": {"recommend": {"positive": [10], "strategy": "best_score"}},
        "limit": 3,
    }
    points = _query(api, body)
    assert set(_ids(points)) <= {1, 2, 3, 4, 5}
    fused = _query(
        api,
        {
            "prefetch": [
                {"query": {"recommend": {"positive": [10], "strategy": "sum_scores"}}, "limit": 3},
                {"query": [0.0, 1.0, 0.0, -1.0], "limit": 3},
            ],
            "query": {"fusion": "rrf"},
            "limit": 6,
        },
    )
    assert {9, 8} <= set(_ids(fused))


def test_explain_names_the_walk_or_the_scan(api: Api, collection: str) -> None:
    reco = {"recommend": {"positive": [10], "negative": [1], "strategy": "best_score"}}
    graph = api.result("POST", f"{ITEMS}/points/query", {"query": reco, "explain": True})
    exact = api.result(
        "POST",
        f"{ITEMS}/points/query",
        {"query": reco, "explain": True, "params": {"exact": True}},
    )
    assert graph["explain"][0]["stage"] == "recommend (best_score)"
    assert graph["explain"][0]["candidates"] == "graph walk with the custom score"
    assert exact["explain"][0]["candidates"] == "exact scan"
    assert graph["explain"][0]["plans"]
    assert _ids(graph["points"]) == _ids(exact["points"])


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("recommend", {"positive": [99], "limit": 2}, 404),
        ("recommend", {"positive": [], "limit": 2}, 400),
        ("recommend", {"negative": [1], "limit": 2}, 400),  # average_vector needs a positive
        ("recommend", {"positive": [], "strategy": "best_score", "limit": 2}, 400),
        ("recommend", {"positive": [1], "strategy": "best", "limit": 2}, 400),
        ("recommend", {"positive": [[1.0, 2.0]], "limit": 2}, 400),
        ("recommend", {"positive": [[1.0, 2.0]], "strategy": "sum_scores", "limit": 2}, 400),
        (
            "recommend",
            {"positive": [1], "negative": [[1.0]], "strategy": "best_score", "limit": 2},
            400,
        ),
        ("recommend", {"positive": [True], "limit": 2}, 400),
        ("discover", {"context": [], "limit": 2}, 400),
        ("discover", {"target": 1, "context": [{"positive": 2}], "limit": 2}, 400),
        ("discover", {"target": 99, "limit": 2}, 404),
    ],
)
def test_bad_input_is_a_qdrant_shaped_error(
    api: Api, collection: str, path: str, body: dict[str, Any], status: int
) -> None:
    before = api.result("POST", f"{ITEMS}/points/scroll", {"limit": 100, "with_vector": True})
    got, answer = api.post(f"{ITEMS}/points/{path}", body)
    assert got == status, answer
    assert answer["status"]["error"]
    after = api.result("POST", f"{ITEMS}/points/scroll", {"limit": 100, "with_vector": True})
    assert after == before


@pytest.mark.parametrize(
    "query",
    [
        {"recommend": {"positive": [1], "extra": 1}},
        {"recommend": {"positive": 1}},
        {"discover": {"context": []}},
        {"context": []},
        {"relevance_feedback": {"target": 1, "feedback": [], "strategy": {"other": {}}}},
        {
            "relevance_feedback": {
                "target": 1,
                "feedback": [{"example": 2}],
                "strategy": {"naive": {"a": 1, "b": 1, "c": 1}},
            }
        },
        {"recommend": {"positive": [1]}, "nearest": [1.0]},
    ],
)
def test_malformed_query_objects_are_400(api: Api, collection: str, query: Any) -> None:
    status, answer = api.post(f"{ITEMS}/points/query", {"query": query})
    assert status == 400, answer
    assert "Wrong input" in answer["status"]["error"]


def test_nan_example_is_refused(api: Api, collection: str) -> None:
    status, answer = api.call(
        "POST",
        f"{ITEMS}/points/recommend",
        content=b'{"positive": [[NaN, 1.0, 0.0, 0.0]], "limit": 2}',
        headers={"content-type": "application/json"},
    )
    assert 400 <= status < 500, answer


def test_sharded_recommend_equals_single_node(api: Api) -> None:
    from tests.helpers.api import create_items

    create_items(api)
    single = api.result(
        "POST",
        f"{ITEMS}/points/recommend",
        {"positive": [4], "negative": [9], "strategy": "best_score", "limit": 5},
    )
    api.result("DELETE", ITEMS)
    create_items(api, shard_number=3)
    sharded = api.result(
        "POST",
        f"{ITEMS}/points/recommend",
        {"positive": [4], "negative": [9], "strategy": "best_score", "limit": 5},
    )
    assert _ids(single) == _ids(sharded)
    assert [p["score"] for p in single] == pytest.approx([p["score"] for p in sharded])


def test_a_flat_example_on_a_multi_vector_name_is_one_row_not_a_walk(api: Api) -> None:
    """As for a nearest query (and in Qdrant), one plain vector given for a multi-vector
    is a multi-vector of one row: the same answer as the one-row form."""
    multi = {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}
    api.result("PUT", "/collections/multi", {"vectors": {"m": multi}})
    points = [
        {"id": 1, "vector": {"m": [[1.0, 0.0], [0.0, 1.0]]}},
        {"id": 2, "vector": {"m": [[0.5, 0.5]]}},
    ]
    api.result("PUT", "/collections/multi/points?wait=true", {"points": points})
    answers = []
    for example in ([1.0, 0.0], [[1.0, 0.0]]):
        reco = {"recommend": {"positive": [example], "strategy": "best_score"}}
        body = {"query": reco, "using": "m"}
        answers.append(api.result("POST", "/collections/multi/points/query", body)["points"])
    assert answers[0] == answers[1] and [p["id"] for p in answers[0]] == [1, 2]
    by_id = {"recommend": {"positive": [1], "strategy": "best_score"}}
    status, _ = api.post("/collections/multi/points/query", {"query": by_id, "using": "m"})
    assert status == 200
