"""``POST /points/batch``: every operation kind, applied in order; a malformed batch
writes nothing, and a failing operation keeps the ones before it (Qdrant's semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_vectors_api import C, create_named, payloads_of, vectors_of
from tests.helpers.api import Api


@pytest.fixture(params=[None, 3], ids=["one-node", "three-shards"])
def named(api: Api, request: pytest.FixtureRequest) -> Api:
    create_named(api, **({} if request.param is None else {"shard_number": request.param}))
    return api


def batch(api: Api, *operations: dict[str, Any]) -> tuple[int, Any]:
    return api.post(f"{C}/points/batch?wait=true", {"operations": list(operations)})


def test_every_operation_kind_applies_in_order(named: Api) -> None:
    status, answer = batch(
        named,
        {"upsert": {"points": [{"id": 10, "vector": {"a": [1.0, 1.0]}, "payload": {"x": 1}}]}},
        {"upsert": {"batch": {"ids": [11], "vectors": {"b": [[3.0, 3.0, 3.0]]}}}},
        {"update_vectors": {"points": [{"id": 10, "vector": {"b": [0.0, 1.0, 0.0]}}]}},
        {"set_payload": {"payload": {"y": 2}, "points": [10, 11]}},
        {"delete_payload": {"keys": ["x"], "points": [10]}},
        {"overwrite_payload": {"payload": {"z": 3}, "points": [1]}},
        {"clear_payload": {"points": [2]}},
        {"delete_vectors": {"points": [10], "vector": ["a"]}},
        {"delete": {"points": [3]}},
        {"delete": {"filter": {"must": [{"key": "k", "match": {"value": 4}}]}}},
    )
    assert status == 200, answer
    assert len(answer["result"]) == 10  # one result per operation (ids are per shard)
    assert {result["status"] for result in answer["result"]} == {"completed"}
    assert payloads_of(named, 1, 2, 3, 4, 10, 11) == {
        1: {"z": 3},
        2: {},
        10: {"y": 2},
        11: {"y": 2},
    }
    assert vectors_of(named, 10, 11) == {10: {"b": [0.0, 1.0, 0.0]}, 11: {"b": [3.0, 3.0, 3.0]}}


def test_a_failing_operation_keeps_the_ones_before_it_and_answers_its_error(named: Api) -> None:
    status, answer = batch(
        named,
        {"set_payload": {"payload": {"seen": True}, "points": [1]}},
        {"update_vectors": {"points": [{"id": 77, "vector": {"a": [1.0, 1.0]}}]}},
        {"set_payload": {"payload": {"after": True}, "points": [2]}},
    )
    assert status == 404
    assert answer["status"]["error"] == "Not found: No point with id 77 found"
    assert payloads_of(named, 1, 2) == {1: {"k": 1, "seen": True}, 2: {"k": 2}}


def test_an_unknown_vector_name_to_delete_fails_when_its_turn_comes(named: Api) -> None:
    status, _ = batch(
        named,
        {"clear_payload": {"points": [1]}},
        {"delete_vectors": {"points": [2], "vector": ["nope"]}},
    )
    assert status == 400
    assert payloads_of(named, 1) == {1: {}}


@pytest.mark.parametrize(
    "bad",
    [
        {"upsert": {"points": [{"id": 20, "vector": {"a": [1.0]}}]}},  # wrong dimension
        {"update_vectors": {"points": [{"id": 1, "vector": {"zz": [1.0, 1.0]}}]}},
        {"update_vectors": {"points": []}},
        {"delete_vectors": {"points": [1], "vector": []}},
        {"set_payload": {"payload": {"a": 1}}},  # neither points nor filter
        {"overwrite_payload": {"payload": {"a": 1}, "points": [1], "key": "x"}},
        {"delete": {"points": [1.5]}},  # not a point id
        {"delete": {"filter": {"must": [{"nonsense": 1}]}}},
        {"upsert": {"points": [{"id": 21, "vector": {"a": [1.0, 1.0]}}]}, "delete": {}},
        {"teleport": {"points": [1]}},
    ],
)
def test_a_malformed_operation_writes_nothing(named: Api, bad: dict[str, Any]) -> None:
    status, answer = batch(
        named,
        {"upsert": {"points": [{"id": 30, "vector": {"a": [1.0, 1.0]}}]}},
        {"set_payload": {"payload": {"touched": True}, "points": [1]}},
        bad,
    )
    assert status in (400, 422), answer
    assert "error" in answer["status"]
    assert payloads_of(named, 1, 30) == {1: {"k": 1}}


def test_an_empty_batch_is_an_empty_answer(named: Api) -> None:
    status, answer = batch(named)
    assert (status, answer["result"]) == (200, [])


def test_strict_mode_holds_for_vector_updates_and_each_batch_operation(api: Api) -> None:
    create_named(api)
    strict = {"enabled": True, "upsert_max_batchsize": 1, "unindexed_filtering_update": False}
    api.result("PATCH", C, {"strict_mode_config": strict})
    two = {
        "points": [{"id": 1, "vector": {"a": [5.0, 5.0]}}, {"id": 2, "vector": {"a": [5.0, 5.0]}}]
    }
    status, answer = api.put(f"{C}/points/vectors", two)
    assert status == 400 and "update limit" in answer["status"]["error"]
    by_filter = {"filter": {"must": [{"key": "k", "match": {"value": 1}}]}, "vector": ["a"]}
    assert api.post(f"{C}/points/vectors/delete", by_filter)[0] == 400
    status, _ = batch(
        api,
        {"set_payload": {"payload": {"seen": True}, "points": [1]}},
        {"update_vectors": two},
    )
    assert status == 400
    assert payloads_of(api, 1) == {1: {"k": 1}}
    assert vectors_of(api, 1, 2) == {
        1: {"a": [1.0, 0.0], "b": [1.0, 1.0, 1.0]},
        2: {"a": [0.0, 1.0]},
    }
