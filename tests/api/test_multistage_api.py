"""Multi-stage queries over HTTP: each shape (prefetch trees, rrf / dbsf fusion, rrf
with k and weights, re-scoring, formula, MMR), offset and explain, the batch endpoint,
and every refusal as a Qdrant-shaped 400 that names the problem."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api

NAME = "hy"


def _vectors(i: int) -> dict[str, Any]:
    return {
        "dense": [1.0, i / 10, (i % 3) / 3, 0.5],
        "fast": [float(i), 1.0],
        "colbert": [[1.0, i / 10], [i / 5, 1.0]],
    }


@pytest.fixture
def hybrid(api: Api) -> str:
    """Twelve points with a dense, a cheap and a multi-vector, and a price payload."""
    vectors = {
        "dense": {"size": 4, "distance": "Cosine"},
        "fast": {"size": 2, "distance": "Dot"},
        "colbert": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
    }
    api.result("PUT", f"/collections/{NAME}", {"vectors": vectors})
    points = [
        {"id": i, "vector": _vectors(i), "payload": {"price": i, "color": ["red", "blue"][i % 2]}}
        for i in range(1, 13)
    ]
    api.result("PUT", f"/collections/{NAME}/points?wait=true", {"points": points})
    return NAME


def query(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = api.result("POST", f"/collections/{NAME}/points/query", body)[
        "points"
    ]
    return points


def refusal(api: Api, body: dict[str, Any]) -> str:
    status, answer = api.post(f"/collections/{NAME}/points/query", body)
    assert status == 400, answer
    assert answer["result"] is None
    message: str = answer["status"]["error"]
    return message


FAST = {"query": [1.0, 0.0], "using": "fast", "limit": 4}  # ids 12, 11, 10, 9
SLOW = {"query": [-1.0, 0.0], "using": "fast", "limit": 4}  # ids 1, 2, 3, 4


def test_rrf_sums_reciprocal_ranks_of_each_prefetch(api: Api, hybrid: str) -> None:
    points = query(api, {"prefetch": [FAST, SLOW], "query": {"fusion": "rrf"}, "limit": 3})
    # rank r (0-based) earns 1 / (r + 2); the two lists share no point
    assert [(p["id"], p["score"]) for p in points] == [(12, 0.5), (1, 0.5), (11, 0.33333334)]


def test_rrf_with_k_and_weights(api: Api, hybrid: str) -> None:
    body = {"prefetch": [FAST, SLOW], "query": {"rrf": {"k": 10, "weights": [1.0, 3.0]}}}
    points = query(api, body | {"limit": 2})
    assert [p["id"] for p in points] == [1, 2]
    assert points[0]["score"] == pytest.approx(1 / (1 / 3 + 9))


def test_dbsf_normalises_each_prefetch_then_sums(api: Api, hybrid: str) -> None:
    points = query(api, {"prefetch": [FAST, FAST], "query": {"fusion": "dbsf"}, "limit": 4})
    scores = [12.0, 11.0, 10.0, 9.0]
    mean = sum(scores) / 4
    sd = (sum((s - mean) ** 2 for s in scores) / 3) ** 0.5
    expected = [2 * (s - (mean - 3 * sd)) / (6 * sd) for s in scores]
    assert [p["id"] for p in points] == [12, 11, 10, 9]
    assert [p["score"] for p in points] == pytest.approx(expected)


def test_rescoring_searches_only_the_prefetched_points(api: Api, hybrid: str) -> None:
    body = {"prefetch": SLOW, "query": [[1.0, 0.0], [0.0, 1.0]], "using": "colbert", "limit": 10}
    points = query(api, body)
    assert sorted(p["id"] for p in points) == [1, 2, 3, 4]
    colbert = {i: _vectors(i)["colbert"] for i in (1, 2, 3, 4)}
    expected = {i: max(v[0] for v in vs) + max(v[1] for v in vs) for i, vs in colbert.items()}
    assert {p["id"]: p["score"] for p in points} == pytest.approx(expected)


def test_nested_prefetch_and_outer_filter_reach_the_leaves(api: Api, hybrid: str) -> None:
    inner = {"prefetch": [FAST, SLOW], "query": {"fusion": "rrf"}, "limit": 8}
    red = {"must": [{"key": "color", "match": {"value": "red"}}]}
    points = query(api, {"prefetch": inner, "query": {"fusion": "rrf"}, "filter": red})
    # the filter is applied inside the leaves, so each still yields 4 (red) points
    assert sorted(p["id"] for p in points) == [2, 4, 6, 8, 10, 12]
    assert points[0]["id"] in (2, 12)


def test_offset_applies_to_the_outer_query_only(api: Api, hybrid: str) -> None:
    body = {"prefetch": [FAST, SLOW], "query": {"fusion": "rrf"}, "limit": 3}
    everything = query(api, body | {"limit": 8})
    assert query(api, body | {"offset": 2}) == everything[2:5]


def test_formula_boosts_by_payload_and_condition(api: Api, hybrid: str) -> None:
    formula = {
        "sum": ["$score", {"mult": [0.5, "price"]}, {"key": "color", "match": {"value": "red"}}]
    }
    body = {"prefetch": SLOW, "query": {"formula": formula}, "with_payload": True}
    points = query(api, body)
    expected = {i: -float(i) + 0.5 * i + (1.0 if i % 2 == 0 else 0.0) for i in (1, 2, 3, 4)}
    assert [p["id"] for p in points] == sorted(expected, key=lambda i: -expected[i])
    assert {p["id"]: p["score"] for p in points} == pytest.approx(expected)
    assert points[0]["payload"] == {"price": 2, "color": "red"}


def test_formula_decay_uses_defaults_for_missing_values(api: Api, hybrid: str) -> None:
    decay = {"exp_decay": {"x": "missing", "target": 0.0, "scale": 2.0, "midpoint": 0.5}}
    body = {"prefetch": SLOW, "query": {"formula": decay, "defaults": {"missing": 2.0}}}
    assert [p["score"] for p in query(api, body)] == pytest.approx([0.5] * 4)


def test_formula_division_by_zero_is_a_400_unless_defaulted(api: Api, hybrid: str) -> None:
    division = {"div": {"left": 1.0, "right": {"mult": ["price", 0.0]}}}
    message = refusal(api, {"prefetch": SLOW, "query": {"formula": division}})
    assert "non-finite" in message
    division["div"]["by_zero_default"] = 3.0  # type: ignore[index]
    assert {p["score"] for p in query(api, {"prefetch": SLOW, "query": {"formula": division}})} == {
        3.0
    }


def test_formula_variable_without_value_or_default_is_a_400(api: Api, hybrid: str) -> None:
    message = refusal(api, {"prefetch": SLOW, "query": {"formula": {"sum": ["$score", "nope"]}}})
    assert "nope" in message


def test_mmr_without_prefetch_picks_diverse_points(api: Api, hybrid: str) -> None:
    plain = query(api, {"query": [1.0, 0.5], "using": "fast", "limit": 3})
    relevance_only = {"nearest": [1.0, 0.5], "mmr": {"diversity": 0.0, "candidates_limit": 12}}
    same = query(api, {"query": relevance_only, "using": "fast", "limit": 3})
    assert [p["id"] for p in same] == [p["id"] for p in plain]
    diverse = {"nearest": [1.0, 0.5], "mmr": {"diversity": 1.0, "candidates_limit": 12}}
    points = query(api, {"query": diverse, "using": "fast", "limit": 3})
    assert points[0]["id"] == 12
    assert [p["id"] for p in points] != [p["id"] for p in plain]


def test_explain_shows_every_stage(api: Api, hybrid: str) -> None:
    inner = {"prefetch": [FAST, SLOW], "query": {"fusion": "dbsf"}, "limit": 6}
    body = {"prefetch": inner, "query": [1.0, 0.0, 0.0, 0.0], "using": "dense", "explain": True}
    answer = api.result("POST", f"/collections/{NAME}/points/query", body)
    stages = [(s["stage"], s.get("depth")) for s in answer["explain"]]
    assert stages == [
        ("leaf searches", None),
        ("search", 2),
        ("search", 2),
        ("dbsf", 1),
        ("rescore", 0),
    ]
    dbsf = answer["explain"][3]
    assert (dbsf["candidates_in"], dbsf["candidates_out"]) == (8, 6)


def test_batch_answers_trees_and_plain_queries_in_order(api: Api, hybrid: str) -> None:
    tree = {"prefetch": [FAST, SLOW], "query": {"fusion": "rrf"}, "limit": 3}
    searches = [tree, FAST, tree | {"offset": 1}]
    answers = api.result("POST", f"/collections/{NAME}/points/query/batch", {"searches": searches})
    assert answers[0]["points"] == query(api, tree)
    assert answers[1]["points"] == query(api, FAST)
    assert answers[2]["points"] == query(api, tree | {"offset": 1})


def _deep(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = FAST
    for _ in range(levels):
        body = {"prefetch": body, "query": {"fusion": "rrf"}}
    return body


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"prefetch": FAST, "query": {"fusion": "borda"}}, "borda"),
        ({"query": {"fusion": "rrf"}}, "without prefetches"),
        ({"prefetch": FAST, "query": {"formula": {}}}, "formula"),
        ({"prefetch": FAST, "query": {"formula": {"frobnicate": 1}}}, "frobnicate"),
        ({"prefetch": FAST, "query": {"formula": "$score[x]"}}, "score pattern"),
        ({"prefetch": FAST, "query": {"formula": {"max": []}}}, "max"),
        (
            {"prefetch": FAST, "query": {"formula": {"gauss_decay": {"x": 1, "midpoint": 1.5}}}},
            "midpoint",
        ),
        ({"prefetch": FAST, "query": {"formula": {"lin_decay": {"x": 1, "scale": 0}}}}, "Scale"),
        ({"prefetch": FAST, "query": {"formula": {"datetime": "yesterday"}}}, "datetime"),
        ({"query": {"nearest": [1, 0], "mmr": {"diversity": 1.5}}, "using": "fast"}, "diversity"),
        ({"prefetch": [FAST, SLOW], "query": {"rrf": {"weights": [1.0]}}}, "weights"),
        ({"prefetch": [FAST, SLOW], "query": {"rrf": {"k": 0}}}, "`k`"),
        ({"prefetch": [FAST, SLOW], "query": {"rrf": {"weights": [1.0, -1.0]}}}, "weights"),
        ({"prefetch": FAST | {"limit": 10**9}, "query": {"fusion": "rrf"}}, "limit"),
        (
            {"prefetch": {"query": [1, 0, 0], "using": "fast"}, "query": {"fusion": "rrf"}},
            "dimension",
        ),
        (_deep(70), "deeper than 64"),
        ({"prefetch": [FAST] * 300, "query": {"fusion": "rrf"}}, "stages"),
        ({"prefetch": FAST, "query": {"fusion": "rrf", "extra": 1}}, "extra"),
    ],
)
def test_bad_multistage_input_is_a_400_naming_the_problem(
    api: Api, hybrid: str, body: dict[str, Any], named: str
) -> None:
    assert named.lower() in refusal(api, body).lower()


def test_an_unknown_query_kind_is_a_bad_request_naming_its_keys(api: Api, hybrid: str) -> None:
    message = refusal(api, {"query": {"telepathy": {}}})
    assert "telepathy" in message


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_dense_and_sparse_hybrid_fuses_both_lists(api: Api, fusion: str) -> None:
    config = {"vectors": {"dense": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"text": {}}}
    api.result("PUT", "/collections/docs", config)
    points = [
        {"id": 1, "vector": {"dense": [1.0, 0.0], "text": {"indices": [7], "values": [0.1]}}},
        {"id": 2, "vector": {"dense": [0.5, 0.0], "text": {"indices": [3], "values": [2.0]}}},
        {
            "id": 3,
            "vector": {"dense": [0.1, 0.0], "text": {"indices": [3, 7], "values": [1.0, 1.0]}},
        },
    ]
    api.result("PUT", "/collections/docs/points?wait=true", {"points": points})
    keyword = {"query": {"indices": [3], "values": [1.0]}, "using": "text", "limit": 2}  # 2, 3
    semantic = {"query": [1.0, 0.0], "using": "dense", "limit": 2}  # 1, 2
    body = {"prefetch": [keyword, semantic], "query": {"fusion": fusion}}
    answer = api.result("POST", "/collections/docs/points/query", body)["points"]
    assert answer[0]["id"] == 2  # the one point both lists hold
    assert sorted(p["id"] for p in answer) == [1, 2, 3]
    nearest = {"nearest": {"indices": [3, 7], "values": [1.0, 1.0]}, "mmr": {"diversity": 0.5}}
    mmr = api.result("POST", "/collections/docs/points/query", {"query": nearest, "using": "text"})
    assert {p["id"] for p in mmr["points"]} == {1, 2, 3}
