"""Replicated collections through the HTTP API, replicas inside the server: the
replication fields are echoed, ``GET /collections/{c}/cluster`` lists every replica
with Qdrant's state, ``POST`` drops and adds replicas, the ``consistency`` query
parameter is checked and honoured, and the replicas come back from the marker after
a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.api import Api, make_client

DIM = 4
BODY = {
    "vectors": {"size": DIM, "distance": "Dot"},
    "shard_number": 2,
    "replication_factor": 2,
    "write_consistency_factor": 1,
}


def points(ids: range) -> dict[str, Any]:
    return {"points": [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in ids]}


def replicas(api: Api) -> list[dict[str, Any]]:
    remote: list[dict[str, Any]] = api.result("GET", "/collections/r/cluster")["remote_shards"]
    return remote


def wait_states(api: Api, expected: list[str], timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = replicas(api)
        if sorted(r["state"] for r in found) == expected:
            return found
        time.sleep(0.05)
    raise AssertionError(f"replica states never became {expected}: {replicas(api)}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_replicas_are_listed_dropped_added_and_reopened(data_dir: Path) -> None:
    with make_client(data_dir) as client:
        api = Api(client)
        api.result("PUT", "/collections/r", BODY)
        api.result("PUT", "/collections/r/points?wait=true", points(range(40)))
        params = api.result("GET", "/collections/r")["config"]["params"]
        assert (params["replication_factor"], params["write_consistency_factor"]) == (2, 1)
        listed = wait_states(api, ["Active"] * 4)
        assert sorted(r["shard_id"] for r in listed) == [0, 0, 1, 1]
        peer = listed[0]["peer_id"]
        drop = {"drop_replica": {"shard_id": 0, "peer_id": peer}}
        assert api.post("/collections/r/cluster", drop)[0] == 200
        assert len(replicas(api)) == 3
        assert api.post("/collections/r/cluster", drop)[0] == 400  # the last one of shard 0
        add = {"replicate_shard": {"shard_id": 0, "from_peer_id": peer, "to_peer_id": peer}}
        assert api.post("/collections/r/cluster", add)[0] == 200
        wait_states(api, ["Active"] * 4)
        api.result("PUT", "/collections/r/points?wait=true", points(range(40, 50)))
    with make_client(data_dir) as client:
        api = Api(client)
        wait_states(api, ["Active"] * 4)
        assert api.result("POST", "/collections/r/points/count", {"exact": True})["count"] == 50


def test_consistency_is_checked_and_honoured(data_dir: Path) -> None:
    with make_client(data_dir) as client:
        api = Api(client)
        api.result("PUT", "/collections/r", BODY)
        api.result("PUT", "/collections/r/points?wait=true", points(range(10)))
        query = {"vector": [1.0, 0.0, 0.0, 0.0], "limit": 3}
        for value in ("all", "majority", "quorum", "2"):
            hits = api.result("POST", f"/collections/r/points/search?consistency={value}", query)
            assert [h["id"] for h in hits] == [9, 8, 7]
        retrieve = {"ids": [1, 2, 99]}
        found = api.result("POST", "/collections/r/points?consistency=all", retrieve)
        assert sorted(p["id"] for p in found) == [1, 2]
        assert api.post("/collections/r/points/search?consistency=3", query)[0] == 503
        assert api.post("/collections/r/points/search?consistency=most", query)[0] == 400


def test_cluster_operations_are_refused_on_a_collection_without_replicas(
    data_dir: Path,
) -> None:
    with make_client(data_dir) as client:
        api = Api(client)
        api.result("PUT", "/collections/plain", {"vectors": {"size": DIM, "distance": "Dot"}})
        drop = {"drop_replica": {"shard_id": 0, "peer_id": 0}}
        assert api.post("/collections/plain/cluster", drop)[0] == 400
        assert api.post("/collections/plain/cluster", {})[0] == 400


def test_a_patched_write_consistency_factor_applies_to_the_next_write(data_dir: Path) -> None:
    with make_client(data_dir) as client:
        api = Api(client)
        api.result("PUT", "/collections/r", BODY)
        api.result("PATCH", "/collections/r", {"params": {"write_consistency_factor": 3}})
        status, _ = api.put("/collections/r/points?wait=true", points(range(3)))
        assert status == 503  # two replicas per shard cannot reach 3
        api.result("PATCH", "/collections/r", {"params": {"write_consistency_factor": 2}})
        api.result("PUT", "/collections/r/points?wait=true", points(range(3)))
        assert api.result("POST", "/collections/r/points/count", {"exact": True})["count"] == 3
