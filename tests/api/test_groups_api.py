"""Grouped search and facets over HTTP: the response shapes (hits, lookup, payload and
vectors, explain), group_by over arrays and nested keys, the legacy search/groups and
recommend/groups endpoints, sharded collections (their explain too), and every refusal
as a Qdrant-shaped 4xx that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api

NAME = "docs"
CHUNKS = 12


@pytest.fixture
def chunks(api: Api) -> str:
    """Twelve chunks of four documents (``doc`` 0-3), tagged, with a nested section;
    and a ``books`` collection holding a record per document id (for with_lookup)."""
    vectors = {"dense": {"size": 2, "distance": "Dot"}}
    api.result("PUT", f"/collections/{NAME}", {"vectors": vectors})
    points = [
        {
            "id": i,
            "vector": {"dense": [float(i), 1.0]},
            "payload": {
                "doc": i % 4,
                "tags": ["x", "y"] if i % 3 == 0 else ["x"],
                "meta": {"section": f"s{i % 2}"},
                "uid": f"00000000-0000-0000-0000-00000000000{i % 2}",
                "odd": bool(i % 2),
            },
        }
        for i in range(CHUNKS)
    ]
    api.result("PUT", f"/collections/{NAME}/points?wait=true", {"points": points})
    api.result("PUT", "/collections/books", {"vectors": {"size": 2, "distance": "Dot"}})
    books = [{"id": d, "vector": [1.0, 0.0], "payload": {"title": f"book {d}"}} for d in (0, 1, 2)]
    api.result("PUT", "/collections/books/points?wait=true", {"points": books})
    return NAME


def _groups(api: Api, body: dict[str, Any], path: str = "query/groups") -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = api.result("POST", f"/collections/{NAME}/points/{path}", body)[
        "groups"
    ]
    return groups


def _ids(groups: list[dict[str, Any]]) -> list[tuple[Any, list[Any]]]:
    return [(g["id"], [h["id"] for h in g["hits"]]) for g in groups]


def test_groups_are_ordered_by_best_hit_with_their_best_hits(api: Api, chunks: str) -> None:
    body = {"query": [1.0, 0.0], "using": "dense", "group_by": "doc", "group_size": 2, "limit": 3}
    assert _ids(_groups(api, body)) == [(3, [11, 7]), (2, [10, 6]), (1, [9, 5])]


def test_an_array_value_puts_a_point_in_each_of_its_groups(api: Api, chunks: str) -> None:
    body = {"query": [1.0, 0.0], "using": "dense", "group_by": "tags", "group_size": 3}
    assert _ids(_groups(api, body)) == [("x", [11, 10, 9]), ("y", [9, 6, 3])]


def test_a_nested_key_groups_and_hits_carry_what_was_asked(api: Api, chunks: str) -> None:
    body = {
        "query": [1.0, 0.0],
        "using": "dense",
        "group_by": "meta.section",
        "group_size": 1,
        "with_payload": ["doc"],
        "with_vector": True,
    }
    groups = _groups(api, body)
    assert _ids(groups) == [("s1", [11]), ("s0", [10])]
    assert groups[0]["hits"][0]["payload"] == {"doc": 3}
    assert groups[0]["hits"][0]["vector"] == {"dense": [11.0, 1.0]}
    assert groups[0]["hits"][0]["score"] == pytest.approx(11.0)


def test_with_lookup_adds_the_record_of_each_group_id(api: Api, chunks: str) -> None:
    body = {"query": [1.0, 0.0], "using": "dense", "group_by": "doc", "group_size": 1}
    groups = _groups(api, body | {"with_lookup": "books"})
    assert [g.get("lookup") for g in groups] == [
        None,  # no book 3
        {"id": 2, "payload": {"title": "book 2"}, "vector": None},
        {"id": 1, "payload": {"title": "book 1"}, "vector": None},
        {"id": 0, "payload": {"title": "book 0"}, "vector": None},
    ]
    lookup = {"collection": "books", "with_payload": False, "with_vectors": True}
    groups = _groups(api, body | {"with_lookup": lookup, "limit": 2})
    assert groups[1]["lookup"] == {"id": 2, "payload": None, "vector": [1.0, 0.0]}


def test_search_groups_is_the_legacy_shape_of_the_same(api: Api, chunks: str) -> None:
    body = {"vector": {"name": "dense", "vector": [1.0, 0.0]}, "group_by": "doc"}
    legacy = _groups(api, body | {"group_size": 2, "limit": 2}, "search/groups")
    query = {"query": [1.0, 0.0], "using": "dense", "group_by": "doc", "group_size": 2}
    assert _ids(legacy) == _ids(_groups(api, query | {"limit": 2}))


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_recommend_groups_is_the_legacy_shape_of_a_recommend_query(
    api: Api, chunks: str, strategy: str
) -> None:
    examples = {"positive": [11, [3.0, 1.0]], "negative": [0], "strategy": strategy}
    common = {"using": "dense", "group_by": "doc", "group_size": 2, "limit": 3}
    legacy = _groups(api, examples | common, "recommend/groups")
    query = _groups(api, {"query": {"recommend": examples}} | common)
    assert _ids(legacy) == _ids(query)
    assert len(legacy) == 3
    hits = [h["id"] for g in legacy for h in g["hits"]]
    assert 11 not in hits and 0 not in hits  # example points are left out, as Qdrant does


def test_recommend_groups_takes_lookup_filter_and_payload(api: Api, chunks: str) -> None:
    body = {
        "positive": [9],
        "using": "dense",
        "group_by": "doc",
        "group_size": 1,
        "limit": 2,
        "filter": {"must": [{"key": "odd", "match": {"value": True}}]},
        "with_payload": ["doc"],
        "with_lookup": "books",
    }
    groups = _groups(api, body, "recommend/groups")
    assert _ids(groups) == [(3, [11]), (1, [5])]  # 9 is the example; 7 is in full group 3
    assert groups[0]["hits"][0]["payload"] == {"doc": 3}
    assert "lookup" not in groups[0]  # no book 3
    assert groups[1]["lookup"]["payload"] == {"title": "book 1"}


def test_recommend_groups_obeys_strict_mode(api: Api, chunks: str) -> None:
    config = {"enabled": True, "max_query_limit": 5}
    api.result("PATCH", f"/collections/{NAME}", {"strict_mode_config": config})
    body = {"positive": [1], "using": "dense", "group_by": "doc", "group_size": 2, "limit": 2}
    assert len(_groups(api, body, "recommend/groups")) == 2
    code, answer = api.post(f"/collections/{NAME}/points/recommend/groups", body | {"limit": 3})
    assert code == 400
    assert answer["status"]["error"].startswith('Bad request: Limit exceeded 6 > 5 for "limit"')


def test_explain_shows_each_grouping_search_of_a_recommend_query(api: Api, chunks: str) -> None:
    recommend = {"positive": [11], "negative": [0], "strategy": "best_score"}
    body = {"query": {"recommend": recommend}, "using": "dense", "group_by": "doc"}
    body |= {"group_size": 3, "explain": True}
    answer = api.result("POST", f"/collections/{NAME}/points/query/groups", body)
    assert [step["stage"] for step in answer["explain"]] == ["find groups", "fill groups"]
    assert "recommend (best_score)" in [p["stage"] for p in answer["explain"][0]["plans"]]


def test_filter_threshold_and_explain_apply_to_grouping(api: Api, chunks: str) -> None:
    body = {
        "query": [1.0, 0.0],
        "using": "dense",
        "group_by": "doc",
        "group_size": 5,
        "filter": {"must": [{"key": "tags", "match": {"value": "y"}}]},
        "score_threshold": 4.0,
        "explain": True,
    }
    answer = api.result("POST", f"/collections/{NAME}/points/query/groups", body)
    assert _ids(answer["groups"]) == [(1, [9]), (2, [6])]
    assert answer["explain"][0]["stage"] == "find groups"
    assert all("plans" in step for step in answer["explain"])


def test_groups_without_a_query_page_points_by_id(api: Api, chunks: str) -> None:
    body = {"group_by": "odd", "group_size": 2}  # bools are no group ids: no groups
    assert _groups(api, body) == []
    assert _ids(_groups(api, {"group_by": "doc", "group_size": 2, "limit": 2})) == [
        (0, [0, 4]),
        (1, [1, 5]),
    ]


def test_sharded_groups_and_facets_equal_single_node(api: Api, chunks: str) -> None:
    api.result(
        "PUT",
        "/collections/sharded",
        {"vectors": {"dense": {"size": 2, "distance": "Dot"}}} | {"shard_number": 3},
    )
    points = api.result(
        "POST",
        f"/collections/{NAME}/points/scroll",
        {"limit": 100, "with_vector": True, "with_payload": True},
    )["points"]
    api.result("PUT", "/collections/sharded/points?wait=true", {"points": points})
    for name in (NAME, "sharded"):
        api.result(
            "PUT",
            f"/collections/{name}/index?wait=true",
            {"field_name": "doc", "field_schema": "integer"},
        )
    body = {"query": [1.0, -0.5], "using": "dense", "group_by": "tags", "group_size": 4}
    single = api.result("POST", f"/collections/{NAME}/points/query/groups", body)
    sharded = api.result("POST", "/collections/sharded/points/query/groups", body)
    assert _ids(sharded["groups"]) == _ids(single["groups"])
    recommend = {"positive": [2, 7], "negative": [5], "strategy": "best_score"}
    recommend |= {"using": "dense", "group_by": "doc", "group_size": 2, "limit": 3}
    single = api.result("POST", f"/collections/{NAME}/points/recommend/groups", recommend)
    sharded = api.result("POST", "/collections/sharded/points/recommend/groups", recommend)
    assert _ids(sharded["groups"]) == _ids(single["groups"])
    assert len(single["groups"]) == 3
    explained = body | {"explain": True, "group_by": "doc", "group_size": 3, "limit": 2}
    steps = api.result("POST", "/collections/sharded/points/query/groups", explained)["explain"]
    assert [step["stage"] for step in steps] == ["find groups", "fill groups"]
    assert all(step["plans"] for step in steps)
    facet = {"key": "doc", "filter": {"must": [{"key": "odd", "match": {"value": True}}]}}
    assert api.result("POST", "/collections/sharded/facet", facet) == api.result(
        "POST", f"/collections/{NAME}/facet", facet
    )


@pytest.mark.parametrize(
    ("field", "kind", "expected"),
    [
        ("doc", "integer", [{"value": v, "count": 3} for v in (0, 1, 2, 3)]),
        ("tags", "keyword", [{"value": "x", "count": 12}, {"value": "y", "count": 4}]),
        ("odd", "bool", [{"value": False, "count": 6}, {"value": True, "count": 6}]),
        (
            "uid",
            "uuid",
            [
                {"value": "00000000-0000-0000-0000-000000000000", "count": 6},
                {"value": "00000000-0000-0000-0000-000000000001", "count": 6},
            ],
        ),
        ("meta.section", "keyword", [{"value": "s0", "count": 6}, {"value": "s1", "count": 6}]),
    ],
)
def test_facet_counts_each_index_type(
    api: Api, chunks: str, field: str, kind: str, expected: list[dict[str, Any]]
) -> None:
    api.result(
        "PUT", f"/collections/{NAME}/index?wait=true", {"field_name": field, "field_schema": kind}
    )
    assert api.result("POST", f"/collections/{NAME}/facet", {"key": field}) == {"hits": expected}


def test_facet_limit_filter_and_deletes(api: Api, chunks: str) -> None:
    api.result(
        "PUT",
        f"/collections/{NAME}/index?wait=true",
        {"field_name": "doc", "field_schema": "integer"},
    )
    api.result("POST", f"/collections/{NAME}/points/delete?wait=true", {"points": [0, 4]})
    body = {
        "key": "doc",
        "limit": 2,
        "filter": {"must": [{"key": "tags", "match": {"value": "x"}}]},
    }
    hits = api.result("POST", f"/collections/{NAME}/facet", body)["hits"]
    assert hits == [{"value": 1, "count": 3}, {"value": 2, "count": 3}]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("points/query/groups", {"query": [1.0, 0.0], "using": "dense"}, 400, "group_by"),
        (
            "points/query/groups",
            {"query": [1, 0], "using": "dense", "group_by": ""},
            422,
            "group_by",
        ),
        ("points/query/groups", {"group_by": "doc", "group_size": 0}, 422, "group_size"),
        ("points/query/groups", {"group_by": "doc", "limit": 0}, 422, "limit"),
        (
            "points/query/groups",
            {"group_by": "doc", "group_size": 10000, "limit": 10000},
            400,
            "limit",
        ),
        ("points/query/groups", {"group_by": "doc", "with_lookup": "missing"}, 404, "missing"),
        (
            "points/query/groups",
            {"group_by": "doc[", "query": [1.0, 0.0], "using": "dense"},
            400,
            "group_by",
        ),
        (
            "points/query/groups",
            {"group_by": "doc", "query": [1.0], "using": "dense"},
            400,
            "dimension",
        ),
        (
            "points/search/groups",
            {"vector": [1.0, 0.0], "group_by": "doc", "limit": 2},
            400,  # a missing field: Qdrant's serde format error
            "group_size",
        ),
        (
            "points/recommend/groups",
            {"positive": [1], "group_by": "doc", "limit": 2},
            400,
            "group_size",
        ),
        (
            "points/recommend/groups",
            {"negative": [1], "group_by": "doc", "group_size": 2, "limit": 2},
            400,
            "No positive examples",
        ),
        (
            "points/recommend/groups",
            {"positive": [1], "strategy": "best", "group_by": "doc", "group_size": 2, "limit": 2},
            400,
            "unknown recommend strategy",
        ),
        (
            "points/recommend/groups",
            {"positive": [99], "using": "dense", "group_by": "doc", "group_size": 2, "limit": 2},
            404,
            "99",
        ),
        ("facet", {"key": "doc"}, 400, "No appropriate index for faceting: `doc`"),
        ("facet", {"key": "doc", "limit": 0}, 422, "limit"),
        ("facet", {}, 400, "missing field `key`"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    api: Api, chunks: str, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    before = api.result("POST", f"/collections/{NAME}/points/scroll", {"limit": 100})
    code, answer = api.post(f"/collections/{NAME}/{path}", body)
    assert code == status, answer
    assert message in answer["status"]["error"]
    assert api.result("POST", f"/collections/{NAME}/points/scroll", {"limit": 100}) == before


def test_a_float_index_cannot_be_faceted(api: Api, chunks: str) -> None:
    api.result(
        "PUT",
        f"/collections/{NAME}/index?wait=true",
        {"field_name": "doc", "field_schema": "float"},
    )
    code, answer = api.post(f"/collections/{NAME}/facet", {"key": "doc"})
    assert code == 400 and "No appropriate index" in answer["status"]["error"]


@pytest.mark.parametrize(
    ("distance", "datatype"),
    [("Dot", "float32"), ("Cosine", "float32"), ("Euclid", "float32"),
     ("Manhattan", "float32"), ("Dot", "float16")],
)  # fmt: skip
def test_a_keyword_index_fills_groups_as_the_payload_scan_does(
    api: Api, distance: str, datatype: str
) -> None:
    """The fill read from a keyword index's postings (``group_fill.py``) answers what the
    ordinary filtered search over unindexed payloads answers: same groups, hits and
    scores, for every metric, with arrays, deleted points, a query filter and a query
    by point id (left out of its own answer), and for vectors kept narrower than float32
    (decoded rows instead of the stored matrix)."""
    rng = __import__("numpy").random.default_rng(7)
    points = [
        {
            "id": i,
            "vector": rng.normal(size=4).round(3).tolist(),
            "payload": {"g": [f"g{i % 9}", f"g{i % 4}"] if i % 5 == 0 else f"g{i % 9}",
                        "n": i % 3},
        }
        for i in range(240)
    ]  # fmt: skip
    answers = []
    for name, indexed in (("plain_keys", False), ("indexed_keys", True)):
        vectors = {"size": 4, "distance": distance, "datatype": datatype}
        api.result("PUT", f"/collections/{name}", {"vectors": vectors})
        if indexed:
            body = {"field_name": "g", "field_schema": "keyword"}
            api.result("PUT", f"/collections/{name}/index?wait=true", body)
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
        deleted = {"points": list(range(0, 240, 7))}
        api.result("POST", f"/collections/{name}/points/delete?wait=true", deleted)
        found = []
        for query in ([0.5, -1.0, 0.25, 2.0], 3):
            for flt in (None, {"must": [{"key": "n", "match": {"value": 1}}]}):
                body = {"query": query, "group_by": "g", "group_size": 4, "limit": 5}
                if flt is not None:
                    body["filter"] = flt
                groups = api.result("POST", f"/collections/{name}/points/query/groups", body)
                found.append([(g["id"], [(h["id"], h["score"]) for h in g["hits"]])
                              for g in groups["groups"]])  # fmt: skip
        answers.append(found)
    for plain, indexed in zip(*answers, strict=True):
        assert len(indexed) == 5
        assert [(g, [i for i, _ in hits]) for g, hits in plain] == [
            (g, [i for i, _ in hits]) for g, hits in indexed
        ]
        scores = [score for _, hits in indexed for _, score in hits]
        assert scores == pytest.approx([score for _, hits in plain for _, score in hits], abs=1e-4)
