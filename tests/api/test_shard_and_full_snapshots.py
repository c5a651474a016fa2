"""Shard snapshots, snapshots of sharded collections, full-storage snapshots and
``wait=false``: each round-trips (create, download, delete the data, recover, the same
points) and answers in qdrant-client's models."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from qdrant_client.http import models

from server.cluster.shards import shard_of
from server.storage_restore import main as restore_main
from tests.helpers.api import Api, create_items, make_client
from tests.helpers.snapshots import member_offset, state

SHARDED = 3


def points(api: Api, name: str) -> list[dict[str, Any]]:
    return state(api, name)["points"]


def upload(api: Api, path: str, data: bytes, query: str = "") -> tuple[int, Any]:
    response = api.client.post(
        f"{path}/upload{query}",
        files={"snapshot": ("upload.snapshot", data, "application/octet-stream")},
    )
    return response.status_code, response.json()


def download(api: Api, path: str, description: dict[str, Any]) -> bytes:
    response = api.client.get(f"{path}/{description['name']}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == description["checksum"]
    return response.content


def created(api: Api, path: str) -> dict[str, Any]:
    answer = api.client.post(path).json()
    models.InlineResponse20015.model_validate(answer)
    result: dict[str, Any] = answer["result"]
    return result


# -- shard snapshots -------------------------------------------------------------


def test_shard_zero_of_a_single_node_collection_round_trips(api: Api, collection: str) -> None:
    before = state(api, collection)
    path = f"/collections/{collection}/shards/0/snapshots"
    description = created(api, path)
    assert api.result("GET", path) == [description]
    assert api.result("GET", f"/collections/{collection}/snapshots") == []  # kept apart
    data = download(api, path, description)
    api.result("POST", f"/collections/{collection}/points/delete?wait=true", {"filter": {}})
    assert points(api, collection) == []
    status, answer = upload(api, path, data)
    assert (status, answer["result"]) == (200, True)
    assert state(api, collection) == before
    assert api.result("DELETE", f"{path}/{description['name']}") is True
    assert api.result("GET", path) == []


def test_a_streamed_shard_snapshot_recovers_and_is_not_kept(api: Api, collection: str) -> None:
    before = state(api, collection)
    response = api.client.get(f"/collections/{collection}/shards/0/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert api.result("GET", f"/collections/{collection}/shards/0/snapshots") == []
    api.result("POST", f"/collections/{collection}/points/delete?wait=true", {"filter": {}})
    status, answer = upload(api, f"/collections/{collection}/shards/0/snapshots", response.content)
    assert (status, answer["result"]) == (200, True)
    assert state(api, collection) == before


def test_an_unknown_shard_is_404(api: Api, collection: str) -> None:
    for method, path in [
        ("GET", f"/collections/{collection}/shards/1/snapshots"),
        ("POST", f"/collections/{collection}/shards/1/snapshots"),
        ("GET", "/collections/missing/shards/0/snapshots"),
        ("GET", f"/collections/{collection}/shards/2/snapshot"),
    ]:
        status, answer = api.call(method, path)
        assert status == 404, answer


def test_one_shard_of_a_sharded_collection_round_trips(api: Api) -> None:
    name = create_items(api, shard_number=SHARDED)
    owned = sorted(i for i in range(1, 11) if shard_of(i, SHARDED) == 1)
    path = f"/collections/{name}/shards/1/snapshots"
    description = created(api, path)
    api.result("POST", f"/collections/{name}/points/delete?wait=true", {"filter": {}})
    recover = {"location": description["name"]}
    assert api.result("PUT", f"{path}/recover", recover) is True
    assert sorted(p["id"] for p in points(api, name)) == owned
    cluster = api.result("GET", f"/collections/{name}/cluster")
    assert [s["points_count"] for s in cluster["local_shards"]] == [0, len(owned), 0]


# -- sharded collection snapshots ----------------------------------------------------


def test_a_sharded_collection_snapshot_recovers_every_shard_and_the_config(api: Api) -> None:
    name = create_items(api, shard_number=SHARDED)
    api.result(
        "PUT",
        f"/collections/{name}/index?wait=true",
        {"field_name": "city", "field_schema": "keyword"},
    )
    before = state(api, name)
    path = f"/collections/{name}/snapshots"
    data = download(api, path, created(api, path))
    api.result("DELETE", f"/collections/{name}")
    status, answer = upload(api, path, data)
    assert (status, answer["result"]) == (200, True), answer
    assert state(api, name) == before
    assert api.result("GET", f"/collections/{name}/cluster")["shard_count"] == SHARDED


def test_a_sharded_snapshot_replaces_a_single_node_collection_of_that_name(api: Api) -> None:
    name = create_items(api, shard_number=SHARDED)
    before = state(api, name)
    snapshot = created(api, f"/collections/{name}/snapshots")
    api.result("DELETE", f"/collections/{name}")
    api.result("PUT", f"/collections/{name}", {"vectors": {"size": 2, "distance": "Cosine"}})
    location = {"location": f"{name}/{snapshot['name']}"}
    assert api.result("PUT", f"/collections/{name}/snapshots/recover", location) is True
    assert state(api, name) == before


# -- full-storage snapshots ----------------------------------------------------------


def test_a_full_snapshot_restores_every_collection_before_start(tmp_path: Path) -> None:
    with make_client(tmp_path / "a") as client:
        api = Api(client)
        create_items(api)
        api.result(
            "PUT",
            "/collections/sharded",
            {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2},
        )
        batch = [{"id": i, "vector": [float(i), 1.0]} for i in range(20)]
        api.result("PUT", "/collections/sharded/points?wait=true", {"points": batch})
        before = {name: state(api, name) for name in ("items", "sharded")}
        description = created(api, "/snapshots")
        listed = api.client.get("/snapshots").json()
        models.InlineResponse20014.model_validate(listed)
        assert listed["result"] == [description]
        data = download(api, "/snapshots", description)
    archive = tmp_path / "full.snapshot"
    archive.write_bytes(data)
    assert restore_main([str(archive), "--data-dir", str(tmp_path / "b")]) == 0
    with make_client(tmp_path / "b") as client:
        api = Api(client)
        assert {name: state(api, name) for name in ("items", "sharded")} == before
        assert api.result("GET", "/snapshots") == []


def test_a_full_snapshot_is_not_recovered_into_one_collection(api: Api, collection: str) -> None:
    description = created(api, "/snapshots")
    status, answer = api.put(
        f"/collections/{collection}/snapshots/recover", {"location": description["name"]}
    )
    assert status == 400, answer
    assert "storage_restore" in answer["status"]["error"]
    assert api.result("DELETE", f"/snapshots/{description['name']}") is True
    assert api.get(f"/snapshots/{description['name']}")[0] == 404


# -- wait=false --------------------------------------------------------------------


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met")


@pytest.mark.parametrize(
    "path",
    ["/collections/items/snapshots", "/collections/items/shards/0/snapshots", "/snapshots"],
)
def test_wait_false_answers_accepted_at_once_and_creates_afterwards(api: Api, path: str) -> None:
    create_items(api)
    response = api.client.post(f"{path}?wait=false")
    assert response.status_code == 202
    answer = response.json()
    assert (answer["result"], answer["status"]) == (None, "accepted")
    models.InlineResponse20015.model_validate(answer)
    [description] = eventually(lambda: api.result("GET", path))
    response = api.client.delete(f"{path}/{description['name']}?wait=false")
    assert (response.status_code, response.json()["status"]) == (202, "accepted")
    eventually(lambda: api.result("GET", path) == [])


def test_wait_false_still_refuses_a_missing_collection_first(api: Api) -> None:
    assert api.client.post("/collections/missing/snapshots?wait=false").status_code == 404


def test_wait_false_recovery_happens_after_the_answer(api: Api, collection: str) -> None:
    before = state(api, collection)
    description = created(api, f"/collections/{collection}/snapshots")
    api.result("POST", f"/collections/{collection}/points/delete?wait=true", {"filter": {}})
    response = api.client.put(
        f"/collections/{collection}/snapshots/recover?wait=false",
        json={"location": description["name"]},
    )
    assert (response.status_code, response.json()["status"]) == (202, "accepted")
    eventually(lambda: state(api, collection) == before)


def test_a_corrupted_sharded_bundle_is_refused_and_changes_nothing(api: Api) -> None:
    name = create_items(api, shard_number=SHARDED)
    before = state(api, name)
    path = f"/collections/{name}/snapshots"
    data = bytearray(download(api, path, created(api, path)))
    start, size = member_offset(bytes(data), "shards/1.snapshot")
    data[start + size // 2] ^= 0xFF
    status, answer = upload(api, path, bytes(data))
    assert status == 400, answer
    assert "shards/1.snapshot" in answer["status"]["error"]
    assert state(api, name) == before
