"""Named vectors of existing points (``PUT /points/vectors``, ``POST /points/vectors/delete``)
and points holding a subset of their named vectors, on one node and on three shards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.api import Api, make_client, wait_green

C = "/collections/nv"


def create_named(api: Api, **options: Any) -> None:
    """Dense ``a`` (Dot, 2-d), dense ``b`` (Euclid, 3-d) and sparse ``s``; points 1-6
    hold different subsets of them."""
    body = {
        "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 3, "distance": "Euclid"}},
        "sparse_vectors": {"s": {}},
    } | options
    api.result("PUT", C, body)
    points = [
        {"id": 1, "vector": {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]}, "payload": {"k": 1}},
        {"id": 2, "vector": {"a": [0.0, 1.0]}, "payload": {"k": 2}},
        {"id": 3, "vector": {"b": [2.0, 2.0, 2.0]}, "payload": {"k": 3}},
        {"id": 4, "vector": {"s": {"indices": [7], "values": [1.5]}}, "payload": {"k": 4}},
        {"id": 5, "vector": {}, "payload": {"k": 5}},
        {"id": 6, "vector": {"a": [2.0, 2.0], "s": {"indices": [1], "values": [0.5]}}},
    ]
    api.result("PUT", f"{C}/points?wait=true", {"points": points})


@pytest.fixture(params=[None, 3], ids=["one-node", "three-shards"])
def named(api: Api, request: pytest.FixtureRequest) -> Api:
    create_named(api, **({} if request.param is None else {"shard_number": request.param}))
    return api


def vectors_of(api: Api, *ids: int) -> dict[int, Any]:
    records = api.result("POST", f"{C}/points", {"ids": list(ids), "with_vector": True})
    return {r["id"]: r["vector"] for r in records}


def payloads_of(api: Api, *ids: int) -> dict[int, Any]:
    records = api.result("POST", f"{C}/points", {"ids": list(ids), "with_payload": True})
    return {r["id"]: r["payload"] for r in records}


def query_ids(api: Api, query: Any, using: str) -> list[int]:
    answer = api.result("POST", f"{C}/points/query", {"query": query, "using": using, "limit": 10})
    return [hit["id"] for hit in answer["points"]]


def test_points_render_only_the_vectors_they_hold(named: Api) -> None:
    assert vectors_of(named, 1, 2, 3, 4, 5) == {
        1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]},
        2: {"a": [0.0, 1.0]},
        3: {"b": [2.0, 2.0, 2.0]},
        4: {"s": {"indices": [7], "values": [1.5]}},
        5: {},
    }


def test_a_search_over_a_vector_skips_points_without_it(named: Api) -> None:
    assert sorted(query_ids(named, [1.0, 1.0], "a")) == [1, 2, 6]
    assert sorted(query_ids(named, [0.0, 0.0, 0.0], "b")) == [1, 3]
    assert sorted(query_ids(named, {"indices": [1, 7], "values": [1.0, 1.0]}, "s")) == [4, 6]


def test_update_vectors_sets_the_named_vectors_and_keeps_the_rest(named: Api) -> None:
    body = {
        "points": [
            {"id": 1, "vector": {"b": [5.0, 5.0, 5.0]}},
            {"id": 2, "vector": {"s": {"indices": [3], "values": [2.0]}}},
            {"id": 5, "vector": {"a": [3.0, 4.0]}},
        ]
    }
    assert named.result("PUT", f"{C}/points/vectors?wait=true", body)["status"] == "completed"
    assert vectors_of(named, 1, 2, 5) == {
        1: {"a": [1.0, 0.0], "b": [5.0, 5.0, 5.0]},
        2: {"a": [0.0, 1.0], "s": {"indices": [3], "values": [2.0]}},
        5: {"a": [3.0, 4.0]},
    }
    assert payloads_of(named, 1, 2, 5) == {1: {"k": 1}, 2: {"k": 2}, 5: {"k": 5}}
    assert sorted(query_ids(named, [1.0, 1.0], "a")) == [1, 2, 5, 6]
    assert query_ids(named, [5.0, 5.0, 5.0], "b")[0] == 1


def test_update_vectors_of_one_id_twice_applies_both_in_order(named: Api) -> None:
    body = {
        "points": [
            {"id": 3, "vector": {"a": [1.0, 1.0], "b": [0.0, 0.0, 0.0]}},
            {"id": 3, "vector": {"a": [9.0, 9.0]}},
        ]
    }
    named.result("PUT", f"{C}/points/vectors", body)
    assert vectors_of(named, 3) == {3: {"a": [9.0, 9.0], "b": [0.0, 0.0, 0.0]}}


def test_update_vectors_with_update_filter_changes_only_matching_points(named: Api) -> None:
    body = {
        "points": [{"id": 1, "vector": {"a": [7.0, 7.0]}}, {"id": 2, "vector": {"a": [7.0, 7.0]}}],
        "update_filter": {"must": [{"key": "k", "match": {"value": 2}}]},
    }
    named.result("PUT", f"{C}/points/vectors", body)
    assert vectors_of(named, 1, 2) == {
        1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]},
        2: {"a": [7.0, 7.0]},
    }


def test_update_vectors_of_a_missing_point_writes_the_others_then_answers_404(
    named: Api,
) -> None:
    body = {
        "points": [{"id": 99, "vector": {"a": [1.0, 1.0]}}, {"id": 2, "vector": {"a": [8.0, 8.0]}}]
    }
    status, answer = named.put(f"{C}/points/vectors", body)
    assert status == 404
    assert answer["status"]["error"] == "Not found: No point with id 99 found"
    assert vectors_of(named, 2, 99) == {2: {"a": [8.0, 8.0]}}


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({"a": [1.0, 2.0, 3.0]}, "Vector dimension error: expected dim: 2, got 3"),
        ({"zz": [1.0, 2.0]}, "Not existing vector name error: zz"),
        ({"a": {"indices": [1], "values": [1.0]}}, "Conversion between sparse and regular"),
    ],
)
def test_a_bad_vector_in_an_update_writes_nothing(
    named: Api, vector: dict[str, Any], message: str
) -> None:
    body = {"points": [{"id": 2, "vector": {"a": [8.0, 8.0]}}, {"id": 1, "vector": vector}]}
    status, answer = named.put(f"{C}/points/vectors", body)
    assert status == 400
    assert message in answer["status"]["error"]
    assert vectors_of(named, 2) == {2: {"a": [0.0, 1.0]}}


def test_update_vectors_needs_points(named: Api) -> None:
    status, answer = named.put(f"{C}/points/vectors", {"points": []})
    assert status == 400
    assert "must specify points to update" in answer["status"]["error"]


def test_delete_vectors_removes_only_the_named_vectors(named: Api) -> None:
    body = {"points": [1, 6], "vector": ["a", "s"]}
    named.result("POST", f"{C}/points/vectors/delete?wait=true", body)
    assert vectors_of(named, 1, 6) == {1: {"b": [1.0, 1.0, 1.0]}, 6: {}}
    assert payloads_of(named, 1, 6) == {1: {"k": 1}, 6: {}}
    assert sorted(query_ids(named, [1.0, 1.0], "a")) == [2]
    assert sorted(query_ids(named, {"indices": [1, 7], "values": [1.0, 1.0]}, "s")) == [4]
    assert named.result("POST", f"{C}/points/count", {})["count"] == 6


def test_delete_vectors_by_filter(named: Api) -> None:
    body = {"filter": {"must": [{"key": "k", "range": {"lte": 2}}]}, "vector": ["a"]}
    named.result("POST", f"{C}/points/vectors/delete", body)
    assert vectors_of(named, 1, 2, 6) == {
        1: {"b": [1.0, 1.0, 1.0]},
        2: {},
        6: {"a": [2.0, 2.0], "s": {"indices": [1], "values": [0.5]}},
    }


def test_delete_vectors_of_a_missing_point_deletes_the_others_then_answers_404(
    named: Api,
) -> None:
    status, _ = named.post(f"{C}/points/vectors/delete", {"points": [42, 2], "vector": ["a"]})
    assert status == 404
    assert vectors_of(named, 2) == {2: {}}


@pytest.mark.parametrize(
    ("names", "message"),
    [(["a", "nope"], "Not existing vector name error: nope"), ([], "must specify vector names")],
)
def test_delete_vectors_with_bad_names_changes_nothing(
    named: Api, names: list[str], message: str
) -> None:
    status, answer = named.post(f"{C}/points/vectors/delete", {"points": [1], "vector": names})
    assert status == 400
    assert message in answer["status"]["error"]
    assert vectors_of(named, 1) == {1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]}}


def test_vector_updates_in_sealed_segments_survive_a_restart(tmp_path: Path) -> None:
    optimizers = {"indexing_threshold": 4, "default_segment_number": 1}
    with make_client(tmp_path) as client:
        api = Api(client)
        create_named(api, optimizers_config=optimizers)
        assert [s["kind"] for s in api.result("GET", f"{C}/segments")].count("sealed") >= 1
        wait_green(api, "nv")
        api.result(
            "PUT", f"{C}/points/vectors", {"points": [{"id": 3, "vector": {"a": [4.0, 4.0]}}]}
        )
        api.result("POST", f"{C}/points/vectors/delete", {"points": [1], "vector": ["b"]})
        expected = vectors_of(api, 1, 3)
        assert expected == {1: {"a": [1.0, 0.0]}, 3: {"a": [4.0, 4.0], "b": [2.0, 2.0, 2.0]}}
        assert query_ids(api, [1.0, 1.0], "a")[0] == 3
    with make_client(tmp_path) as client:
        api = Api(client)
        assert vectors_of(api, 1, 3) == expected
        assert sorted(query_ids(api, [0.0, 0.0, 0.0], "b")) == [3]


@pytest.fixture
def unnamed(api: Api) -> Iterator[Api]:
    api.result("PUT", "/collections/nv", {"vectors": {"size": 2, "distance": "Cosine"}})
    points = [{"id": i, "vector": [1.0, float(i)], "payload": {"i": i}} for i in range(3)]
    api.result("PUT", f"{C}/points", {"points": points})
    yield api


def test_update_vectors_of_an_unnamed_vector_takes_a_plain_list(unnamed: Api) -> None:
    unnamed.result("PUT", f"{C}/points/vectors", {"points": [{"id": 1, "vector": [0.0, 2.0]}]})
    assert vectors_of(unnamed, 1) == {1: [0.0, 1.0]}  # Cosine: stored normalised
    assert payloads_of(unnamed, 1) == {1: {"i": 1}}


def test_a_named_vector_added_to_a_collection_takes_updates_and_searches(named: Api) -> None:
    answer = named.result("PUT", f"{C}/vectors/c", {"dense": {"size": 2, "distance": "Euclid"}})
    assert answer["status"] == "acknowledged"
    assert vectors_of(named, 1) == {1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]}}
    named.result("PUT", f"{C}/points/vectors", {"points": [{"id": 2, "vector": {"c": [5.0, 5.0]}}]})
    named.result("PUT", f"{C}/points", {"points": [{"id": 8, "vector": {"c": [0.0, 0.0]}}]})
    assert query_ids(named, [4.0, 4.0], "c") == [2, 8]
    info = named.result("GET", C)
    assert info["config"]["params"]["vectors"]["c"] == {"size": 2, "distance": "Euclid"}


def test_a_named_sparse_vector_added_to_a_collection(named: Api) -> None:
    named.result("PUT", f"{C}/vectors/t", {"sparse": {"modifier": "idf"}})
    body = {"points": [{"id": 3, "vector": {"t": {"indices": [2], "values": [1.0]}}}]}
    named.result("PUT", f"{C}/points/vectors", body)
    assert query_ids(named, {"indices": [2], "values": [1.0]}, "t") == [3]
    sparse = named.result("GET", C)["config"]["params"]["sparse_vectors"]
    assert sparse["t"] == {"modifier": "idf"}


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("a", {"dense": {"size": 3, "distance": "Dot"}}, "already exists with a different"),
        ("s", {"dense": {"size": 2, "distance": "Dot"}}, "already exists as a sparse vector"),
        ("a", {"sparse": {}}, "already exists as a dense vector"),
    ],
)
def test_a_vector_name_in_use_is_refused(
    named: Api, name: str, body: dict[str, Any], message: str
) -> None:
    status, answer = named.put(f"{C}/vectors/{name}", body)
    assert status == 400
    assert message in answer["status"]["error"]


def test_creating_a_vector_name_again_with_its_schema_changes_nothing(named: Api) -> None:
    named.result("PUT", f"{C}/vectors/a", {"dense": {"size": 2, "distance": "Dot"}})
    assert vectors_of(named, 1, 2) == {
        1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]},
        2: {"a": [0.0, 1.0]},
    }


def test_a_deleted_vector_name_is_gone_from_every_point(named: Api) -> None:
    assert named.call("DELETE", f"{C}/vectors/a")[0] == 200
    assert named.call("DELETE", f"{C}/vectors/s")[0] == 200
    assert vectors_of(named, 1, 2, 4, 6) == {1: {"b": [1.0, 1.0, 1.0]}, 2: {}, 4: {}, 6: {}}
    assert named.result("POST", f"{C}/points/count", {})["count"] == 6
    status, answer = named.post(f"{C}/points/query", {"query": [1.0, 1.0], "using": "a"})
    assert status == 400
    assert "Not existing vector name" in answer["status"]["error"]
    assert set(named.result("GET", C)["config"]["params"]["vectors"]) == {"b"}
    assert named.call("DELETE", f"{C}/vectors/never")[0] == 200  # as Qdrant: nothing to do


def test_vector_names_added_and_removed_survive_a_restart(tmp_path: Path) -> None:
    optimizers = {"indexing_threshold": 4, "default_segment_number": 1}
    with make_client(tmp_path) as client:
        api = Api(client)
        create_named(api, optimizers_config=optimizers)
        wait_green(api, "nv")
        api.result("PUT", f"{C}/vectors/c", {"dense": {"size": 2, "distance": "Dot"}})
        api.result(
            "PUT", f"{C}/points/vectors", {"points": [{"id": 5, "vector": {"c": [1.0, 2.0]}}]}
        )
        api.call("DELETE", f"{C}/vectors/b")
        wait_green(api, "nv")
        expected = vectors_of(api, 1, 3, 5)
        assert expected == {1: {"a": [1.0, 0.0]}, 3: {}, 5: {"c": [1.0, 2.0]}}
    with make_client(tmp_path) as client:
        api = Api(client)
        assert vectors_of(api, 1, 3, 5) == expected
        assert query_ids(api, [1.0, 1.0], "c") == [5]


def test_a_multi_vector_updates_alone_in_a_sealed_segment(api: Api) -> None:
    multi = {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    body = {
        "vectors": {"m": multi, "d": {"size": 2, "distance": "Dot"}},
        "optimizers_config": {"indexing_threshold": 4},
    }
    api.result("PUT", C, body)
    points = [{"id": i, "vector": {"m": [[1.0, i], [0.0, 1.0]], "d": [i, 1.0]}} for i in range(8)]
    api.result("PUT", f"{C}/points?wait=true", {"points": points})
    wait_green(api, "nv")
    body = {
        "points": [{"id": 3, "vector": {"d": [9.0, 9.0]}}, {"id": 4, "vector": {"m": [[5.0, 5.0]]}}]
    }
    api.result("PUT", f"{C}/points/vectors", body)
    assert vectors_of(api, 3, 4) == {
        3: {"d": [9.0, 9.0], "m": [[1.0, 3.0], [0.0, 1.0]]},
        4: {"d": [4.0, 1.0], "m": [[5.0, 5.0]]},
    }
    assert query_ids(api, [[1.0, 1.0]], "m")[0] == 4
