"""The lean path for plain writes (``api/fast_write.py``): upserts, deletes by id and
payload sets answer as the full routes do, and every other body still reaches them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from server.api.fast_write import LEAN_MAX_POINTS, FastWrite, Target
from server.storage.group_commit import GroupSync
from server.workers.generation import Generation
from server.workers.supervisor import owner_app
from tests.helpers.api import Api, create_items, make_client
from tests.helpers.wire import Client, answers, count_asgi, request, wire

POINTS = "/collections/items/points"


@pytest.fixture
def lean_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the lean path answered, in order."""
    calls: list[str] = []
    prepare = FastWrite.prepare

    def counting(self: FastWrite, scope: Any, target: Target, shape: Any) -> Any:
        calls.append(scope["path"])
        return prepare(self, scope, target, shape)

    monkeypatch.setattr(FastWrite, "prepare", counting)
    return calls


def point(api: Api, point_id: int) -> Any:
    code, answer = api.get(f"{POINTS}/{point_id}")
    return answer["result"] if code == 200 else None


def test_a_plain_upsert_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, lean_calls: list[str]
) -> None:
    lean = {"points": [{"id": 50, "vector": [1, 2.5, 0, 0], "payload": {"a": 1}}]}
    full = {
        "points": [{"id": 51, "vector": [1, 2.5, 0, 0], "payload": {"a": 1}}],
        "shard_key": None,
    }
    answers = [api.result("PUT", f"{POINTS}?wait=true", body) for body in (lean, full)]
    assert [a["status"] for a in answers] == ["completed", "completed"]
    assert answers[1]["operation_id"] == answers[0]["operation_id"] + 1
    assert {**point(api, 50), "id": 51} == point(api, 51)
    assert lean_calls == [POINTS]
    assert api.result("PUT", POINTS, lean)["status"] == "acknowledged"  # no wait


def test_delete_and_payload_set_by_id_take_the_lean_path(
    api: Api, collection: str, lean_calls: list[str]
) -> None:
    api.result("POST", f"{POINTS}/payload?wait=true", {"payload": {"n": 99}, "points": [3]})
    api.result("POST", f"{POINTS}/payload", {"payload": {"x": 1}, "points": [3], "key": "sub"})
    api.result("POST", f"{POINTS}/delete?wait=false", {"points": [4, 12345]})
    assert point(api, 3)["payload"] == {"n": 99, "city": "Berlin", "tags": ["t0"], "sub": {"x": 1}}
    assert point(api, 4) is None
    assert lean_calls == [f"{POINTS}/payload", f"{POINTS}/payload", f"{POINTS}/delete"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", POINTS, {"points": [{"id": 60, "vector": [1, 0, 0, 0]}], "update_mode": "upsert"}),
        ("PUT", POINTS, {"points": [{"id": True, "vector": [1, 0, 0, 0]}]}),
        ("PUT", POINTS, {"points": [{"id": 60, "vectors": [1, 0, 0, 0]}]}),
        ("PUT", POINTS, {"points": [{"id": 60, "vector": ["1", 0, 0, 0]}]}),
        ("PUT", f"{POINTS}?wait=1", {"points": [{"id": 60, "vector": [1, 0, 0, 0]}]}),
        ("PUT", f"{POINTS}?ordering=weak", {"points": [{"id": 60, "vector": [1, 0, 0, 0]}]}),
        ("POST", f"{POINTS}/delete", {"filter": {"must": [{"key": "n", "match": {"value": 2}}]}}),
        ("POST", f"{POINTS}/payload", {"payload": {"n": 1}, "points": [1], "filter": None}),
        ("PUT", f"{POINTS}/payload", {"payload": {"n": 1}, "points": [1]}),
        (
            "PUT",
            POINTS,
            {"points": [{"id": i, "vector": [1, 0, 0, 0]} for i in range(LEAN_MAX_POINTS + 1)]},
        ),
    ],
)
def test_other_writes_take_the_full_route(
    api: Api, collection: str, lean_calls: list[str], method: str, path: str, body: Any
) -> None:
    api.call(method, path, body)
    assert lean_calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"points": [{"id": 70, "vector": [1.0, 0.0, 0.0]}]},  # wrong dimension
        {"points": [{"id": -1, "vector": [1.0, 0.0, 0.0, 0.0]}]},  # not an id
        {"points": [{"id": "not-a-uuid", "vector": [1.0, 0.0, 0.0, 0.0]}]},
    ],
)
def test_bad_plain_upserts_get_the_full_routes_errors_and_change_nothing(
    api: Api, collection: str, lean_calls: list[str], body: dict[str, Any]
) -> None:
    code, lean = api.put(POINTS, body)
    full = api.put(POINTS, body | {"shard_key": None})[1]
    assert code == 400 and lean["status"] == full["status"]
    assert api.result("POST", "/collections/items/points/count", {})["count"] == 10


def test_a_missing_collection_is_a_qdrant_shaped_404(api: Api, lean_calls: list[str]) -> None:
    code, answer = api.post("/collections/nothing/points/delete", {"points": [1]})
    assert code == 404 and "nothing" in answer["status"]["error"]
    assert lean_calls == ["/collections/nothing/points/delete"]


def test_a_lean_write_is_answered_after_its_fsync(
    api: Api, collection: str, lean_calls: list[str]
) -> None:
    sync = api.client.app.state.engine.get("items").store._sync  # type: ignore[attr-defined]
    before = sync.fsyncs
    api.result("POST", f"{POINTS}/delete?wait=true", {"points": [5]})
    assert sync.fsyncs > before and lean_calls


def test_lean_writes_can_be_switched_off(tmp_path: Path, lean_calls: list[str]) -> None:
    with make_client(tmp_path, lean_writes=False) as client:
        create_items(Api(client))
    assert lean_calls == []


def test_the_direct_lane_applies_pipelined_writes_in_order_under_the_same_access_rules(
    tmp_path: Path, lean_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = {"api-key": "admin-key"}
    with wire(tmp_path, api_key="admin-key", read_only_api_key="reader-key") as served:
        connection = served.connect()
        api = Api(Client(connection, admin))  # type: ignore[arg-type]
        create_items(api)
        lean_calls.clear()
        asgi_paths = count_asgi(monkeypatch)
        upsert = {"points": [{"id": 70, "vector": [1, 0, 0, 0], "payload": {"a": 1}}]}
        answers = connection.send(
            request("PUT", f"{POINTS}?wait=true", upsert, admin),
            request("POST", f"{POINTS}/payload", {"payload": {"b": 2}, "points": [70]}, admin),
            request("POST", f"{POINTS}/delete", {"points": [70]}, {"api-key": "reader-key"}),
            request("POST", f"{POINTS}/delete", {"points": [70]}),
            request("PUT", POINTS, {"points": [{"id": 71, "vector": [1, 0, 0]}]}, admin),
        )
        assert [a.status for a in answers] == [200, 200, 403, 401, 400]
        first, second = (a.body["result"]["operation_id"] for a in answers[:2])
        assert second == first + 1
        assert asgi_paths == [f"{POINTS}/delete", f"{POINTS}/delete"]  # refused there
        assert lean_calls == [POINTS, f"{POINTS}/payload", POINTS]
        assert point(api, 70)["payload"] == {"a": 1, "b": 2}
        assert point(api, 71) is None


def test_the_owner_workers_lane_bumps_the_generation_before_each_write_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADR 0013's read-your-writes rule: a reader that still sees the old generation
    forwards the client's next read; the lane's answers pass the owner's gate too."""
    generation = Generation()
    with wire(tmp_path, serve=lambda app: owner_app(app, generation)) as served:
        connection = served.connect()
        create_items(Api(Client(connection)))  # type: ignore[arg-type]
        asgi = count_asgi(monkeypatch)
        good = {"points": [{"id": 20, "vector": [1.0, 0.0, 0.0, 0.0]}]}
        bad = {"points": [{"id": 21, "vector": [1.0]}]}  # wrong size: 400, as the route's
        for body, status in ((good, 200), (bad, 400)):
            before = generation.read()
            answer = connection.send(request("PUT", f"{POINTS}?wait=true", body))[0]
            assert answer.status == status and answer.headers[b"x-quiver-worker"] == b"0"
            assert int(answer.headers[b"x-quiver-generation"]) == before + 1
            assert generation.read() == before + 2  # and once more as its answer ended
        assert asgi == []  # both answered by the lane
        answered = connection.send(request("GET", f"{POINTS}/20"))[0]
        assert answered.body["result"]["id"] == 20


def test_a_direct_lane_write_waits_for_its_fsync_without_holding_a_cpu_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one CPU token, a query is answered while a write waits for a slow disk, and
    the write is answered only once its fsync is done. A write used to keep its token
    (and its thread) through the fsync: under the mixed benchmark a 53-125 ms fsync had
    every token held by waiting writers, and no request of any kind finished meanwhile."""
    with wire(tmp_path, search_threads=1) as served:
        writes, reads = served.connect(), served.connect()
        create_items(Api(Client(writes)))  # type: ignore[arg-type]
        disk = threading.Event()
        entered = threading.Event()
        fsync = GroupSync._fsync

        def slow_disk(self: GroupSync) -> Any:
            entered.set()
            assert disk.wait(10)
            return fsync(self)

        monkeypatch.setattr(GroupSync, "_fsync", slow_disk)
        upsert = {"points": [{"id": 80, "vector": [1, 0, 0, 0], "payload": {"a": 1}}]}
        served.loop.call_soon(
            writes.protocol.data_received, request("PUT", f"{POINTS}?wait=true", upsert)
        )
        served.run_until(entered.is_set, [writes.transport], timeout_s=5)
        query = {"query": [1, 0, 0, 0], "limit": 1}
        [found] = reads.send(request("POST", f"{POINTS}/query", query))
        assert found.status == 200  # the one token was free
        assert writes.transport.data == b""  # the write is not answered before its fsync
        disk.set()
        served.run_until(lambda: bool(answers(writes.transport.data)), [writes.transport])
        [written] = answers(writes.transport.data)
        assert written.status == 200 and written.body["result"]["status"] == "completed"
        writes.transport.data.clear()
        monkeypatch.undo()
        assert point(Api(Client(reads)), 80)["payload"] == {"a": 1}  # type: ignore[arg-type]
