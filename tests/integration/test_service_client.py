"""qdrant-client (REST) against a real Quiver process for the service, cluster,
optimization and snapshot calls: each method parses Quiver's answer with its own models
and the contents are true for the collection made here."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.integration

NAME = "svc"


@pytest.fixture(scope="module")
def client(module_server_url: str) -> Iterator[QdrantClient]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a version-compatibility warning fails the test
        remote = QdrantClient(url=module_server_url, prefer_grpc=False, timeout=30)
    params = models.VectorParams(size=4, distance=models.Distance.DOT)
    remote.create_collection(NAME, vectors_config=params, shard_number=2)
    points = [models.PointStruct(id=i, vector=[float(i), 1, 0, 0]) for i in range(50)]
    remote.upsert(NAME, points, wait=True)
    yield remote
    remote.close()


def test_info_cluster_and_telemetry(client: QdrantClient) -> None:
    assert client.info().version.startswith("1.")
    assert client.http.distributed_api.cluster_status().result.status == "disabled"
    info = client.http.distributed_api.collection_cluster_info(NAME).result
    assert info.shard_count == 2
    assert sum(s.points_count for s in info.local_shards) == 50
    telemetry = client.http.service_api.telemetry(details_level=2).result
    [collection] = [c for c in telemetry.collections.collections if c.id == NAME]
    assert sum(s.local.num_points for s in collection.shards) == 50


def test_optimizations_and_issues(client: QdrantClient) -> None:
    answer = client.http.collections_api.get_optimizations(NAME, _with="idle_segments").result
    assert sum(s.points_count for s in answer.idle_segments) == 50
    assert client.http.beta_api.get_issues() == {
        "result": {"issues": []},
        "status": "ok",
        "time": pytest.approx(0, abs=5),
    }
    assert client.http.beta_api.clear_issues().result is True


def test_snapshot_methods_round_trip(client: QdrantClient) -> None:
    full = client.create_full_snapshot()
    assert full is not None and full in client.list_full_snapshots()
    assert client.delete_full_snapshot(full.name)
    shard = client.create_shard_snapshot(NAME, 1)
    assert shard is not None and client.list_shard_snapshots(NAME, 1) == [shard]
    assert client.delete_shard_snapshot(NAME, 1, shard.name)
    assert client.create_snapshot(NAME, wait=False) is None
    deadline = time.monotonic() + 30
    while not client.list_snapshots(NAME) and time.monotonic() < deadline:
        time.sleep(0.1)
    [snapshot] = client.list_snapshots(NAME)
    client.delete_collection(NAME)
    assert client.recover_snapshot(NAME, snapshot.name, wait=True)
    assert client.count(NAME).count == 50
