"""``order_by`` (scroll and query), ``{"sample": "random"}``, the distance matrix and
the ``slice`` condition over HTTP: Qdrant's response shapes, ``explain``, order_by
inside a prefetch tree, and every refusal as a Qdrant-shaped 400 that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api

NAME = "ord"
SCROLL = f"/collections/{NAME}/points/scroll"
QUERY = f"/collections/{NAME}/points/query"
PAIRS = f"/collections/{NAME}/points/search/matrix/pairs"
OFFSETS = f"/collections/{NAME}/points/search/matrix/offsets"


@pytest.fixture
def ordered(api: Api) -> str:
    """Eight 2-d points with an integer ``n`` (indexed), a float ``f`` (not indexed)."""
    api.result("PUT", f"/collections/{NAME}", {"vectors": {"size": 2, "distance": "Dot"}})
    api.result(
        "PUT",
        f"/collections/{NAME}/index?wait=true",
        {"field_name": "n", "field_schema": "integer"},
    )
    points = [
        {"id": i, "vector": [1.0, i / 10], "payload": {"n": 10 - i, "f": i / 2}}
        for i in range(1, 9)
    ]
    api.result("PUT", f"/collections/{NAME}/points?wait=true", {"points": points})
    return NAME


def refused(api: Api, path: str, body: dict[str, Any]) -> str:
    """The error of a refused request (400), after checking it changed nothing."""
    before = api.result("POST", SCROLL, {"limit": 100})
    status, answer = api.post(path, body)
    assert status == 400, answer
    assert answer["result"] is None
    assert api.result("POST", SCROLL, {"limit": 100}) == before
    message: str = answer["status"]["error"]
    return message


def test_scroll_order_by_gives_order_values_and_no_next_offset(api: Api, ordered: str) -> None:
    body = {"order_by": {"key": "n", "direction": "desc", "start_from": 7}, "limit": 3}
    page = api.result("POST", SCROLL, body)
    assert [(p["id"], p["order_value"]) for p in page["points"]] == [(3, 7), (4, 6), (5, 5)]
    assert page["points"][0]["payload"] == {"n": 7, "f": 1.5}
    assert page["next_page_offset"] is None


def test_scroll_order_by_a_bare_key_is_ascending(api: Api, ordered: str) -> None:
    page = api.result("POST", SCROLL, {"order_by": "n", "limit": 2, "with_payload": False})
    assert page["points"] == [
        {"id": 8, "payload": None, "vector": None, "order_value": 2},
        {"id": 7, "payload": None, "vector": None, "order_value": 3},
    ]


def test_query_order_by_scores_one_and_carries_order_value(api: Api, ordered: str) -> None:
    found = api.result("POST", QUERY, {"query": {"order_by": "n"}, "limit": 2, "offset": 1})
    assert [(p["id"], p["score"], p["order_value"]) for p in found["points"]] == [
        (7, 1.0, 3),
        (6, 1.0, 4),
    ]


def test_order_by_reranks_prefetched_candidates(api: Api, ordered: str) -> None:
    body = {
        "prefetch": {"query": [0.0, 1.0], "limit": 3},  # ids 8, 7, 6
        "query": {"order_by": {"key": "n", "direction": "desc"}},
    }
    found = api.result("POST", QUERY, body)["points"]
    assert [p["id"] for p in found] == [6, 7, 8]


def test_order_by_query_is_explained(api: Api, ordered: str) -> None:
    body = {"query": {"order_by": "n"}, "limit": 2, "explain": True}
    explain = api.result("POST", QUERY, body)["explain"]
    assert explain[0]["stage"].startswith("order_by") and explain[0]["key"] == "n"
    assert explain[0]["points"] == 2


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"order_by": "f"}, "No range index for `order_by` key: `f`"),
        ({"order_by": "missing"}, "No range index"),
        ({"order_by": {"key": "n", "direction": "up"}}, "direction"),
        ({"order_by": {"key": "n", "start_from": "soon"}}, "start_from"),
        ({"order_by": {"key": "n", "start": 1}}, "unknown field"),
        ({"order_by": 5}, "order_by"),
        ({"order_by": "n", "offset": 3}, "offset"),
    ],
)
def test_bad_scroll_order_by_is_a_400(
    api: Api, ordered: str, body: dict[str, Any], named: str
) -> None:
    assert named in refused(api, SCROLL, body)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"sample": "first"}, "sample"),
        ({"order_by": "n", "sample": "random"}, "unexpected"),
        ({"order_by": "f"}, "No range index"),
    ],
)
def test_bad_vectorless_query_is_a_400(
    api: Api, ordered: str, query: dict[str, Any], named: str
) -> None:
    assert named in refused(api, QUERY, {"query": query})


def test_sample_respects_filter_and_limit(api: Api, ordered: str) -> None:
    body = {
        "query": {"sample": "random"},
        "limit": 3,
        "filter": {"must": [{"key": "n", "range": {"gte": 5}}]},
    }
    drawn = [p["id"] for p in api.result("POST", QUERY, body)["points"]]
    assert len(set(drawn)) == 3 and set(drawn) <= {1, 2, 3, 4, 5}


def test_matrix_pairs_and_offsets_shapes(api: Api, ordered: str) -> None:
    body = {"sample": 3, "limit": 1, "filter": {"must": [{"has_id": [1, 2, 8]}]}}
    pairs = api.result("POST", PAIRS, body)["pairs"]
    # Dot with [1, i/10]: each sample's best other is the one with the largest i.
    assert [(p["a"], p["b"]) for p in pairs] == [(1, 8), (2, 8), (8, 2)]
    assert pairs[0]["score"] == pytest.approx(1.08)
    offsets = api.result("POST", OFFSETS, body)
    assert offsets["ids"] == [1, 2, 8]
    assert offsets["offsets_row"] == [0, 1, 2] and offsets["offsets_col"] == [2, 2, 1]
    assert offsets["scores"] == pytest.approx([1.08, 1.16, 1.16])


def test_matrix_of_fewer_than_two_points_is_empty(api: Api, ordered: str) -> None:
    body = {"sample": 5, "filter": {"must": [{"has_id": [4]}]}}
    assert api.result("POST", PAIRS, body) == {"pairs": []}
    assert api.result("POST", OFFSETS, body) == {
        "offsets_row": [], "offsets_col": [], "scores": [], "ids": []
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"sample": -1}, "sample"),
        ({"sample": 10**6}, "sample"),
        ({"limit": -2}, "limit"),
        ({"using": "nope"}, "nope"),
        ({"filter": {"must": {"slice": {"total": 2, "index": 2}}}}, "Slice index"),
    ],
)
def test_bad_matrix_request_is_a_400(
    api: Api, ordered: str, body: dict[str, Any], named: str
) -> None:
    assert named in refused(api, PAIRS, body)
    assert named in refused(api, OFFSETS, body)


def test_slice_filter_partitions_points(api: Api, ordered: str) -> None:
    parts = []
    for index in range(3):
        flt = {"must": [{"slice": {"total": 3, "index": index}}]}
        parts.append({p["id"] for p in api.result("POST", SCROLL, {"filter": flt})["points"]})
        assert api.result("POST", f"/collections/{NAME}/points/count", {"filter": flt})[
            "count"
        ] == len(parts[-1])
    assert set().union(*parts) == set(range(1, 9)) and sum(map(len, parts)) == 8
