"""Replicated shards on a real two-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head and a worker, each its own raylet).

- The front as a real server process (``server.cli serve``) joined to the cluster is
  killed with SIGKILL while clients write, and started again on its folder: every
  acknowledged write is on both replicas, each back on its node and ``Active``.
- A ``shard_number: 2, replication_factor: 2, write_consistency_factor: 1`` collection
  (the group in this process) keeps answering reads and writes from several threads
  while one worker's raylet is killed with SIGKILL; the lost replicas are re-created on
  the node left, and then every acknowledged write is on every replica and searches
  answer as a single node does, and a drop removes every live replica's folder, each on
  its own node. Each replica's actor runs on the node the front chose for it, and a
  replacement starts on the surviving node's warm spare actor.

The two tests share one cluster (the front test first: the other kills the worker),
since each raylet costs seconds to start on the shared 2-core machine (spreading over
three nodes is checked in-process); the same paths run in-process, fast, in
``test_replicas.py``."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.cluster.replica_set import ReplicaState
from server.cluster.replicated import ReplicatedShardGroup
from server.cluster.shards import ShardedCollection, shard_of
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.payload import PayloadSelector
from server.engine.requests import SearchSpec
from tests.cluster.test_replicas import DIM, make_config, replica_ids, upsert, vectors
from tests.helpers.process import QuiverProcess, result, server_env

pytestmark = pytest.mark.cluster

FAST_DEATH = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_initial_delay_ms": 0,
}
"""The GCS declares a silent node dead after ~1.5 s (Ray's default is ~15 s)."""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[Any, list[Any]]]:
    ray = pytest.importorskip("ray", reason="cluster mode needs Ray: pip install '.[cluster]'")
    from ray.cluster_utils import Cluster

    loopback = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(
        initialize_head=True,
        head_node_args=loopback | {"include_dashboard": False, "_system_config": FAST_DEATH},
    )
    workers = [cluster.add_node(**loopback)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def kill_raylet(node: Any) -> None:
    from ray._private import ray_constants

    os.kill(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid, signal.SIGKILL)


def wait_full(group: ReplicatedShardGroup, timeout: float, gone: str | None = None) -> None:
    """Until every shard has two active replicas again, none of them on node ``gone``
    (the cluster may take a while to see that a killed node is dead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [[r.state for r in s.replicas] for s in group.sets]
        moved = all(r.node != gone for s in group.sets for r in s.replicas)
        full = all(st == [ReplicaState.ACTIVE] * 2 for st in states)
        if not group.transfers and full and moved:
            return
        time.sleep(0.2)
    raise AssertionError(f"not replicated again in time: {states}")


def test_a_killed_front_restarts_on_its_folder_with_every_acknowledged_write(
    ray_cluster: tuple[Any, list[Any]], tmp_path: Path
) -> None:
    """The front as a real server process on the cluster: SIGKILL it while clients
    write, start it again on the same folder, and every acknowledged write is on every
    replica (``consistency=all``), each replica back on its node and ``Active``."""
    cluster, _ = ray_cluster
    env = server_env() | {"QUIVER_RAY_ADDRESS": cluster.address, "QUIVER_RAY_SHARD_CPUS": "0.25"}
    front = QuiverProcess(tmp_path / "data", tmp_path / "logs", env)
    front.start(timeout=FRONT_START_S)
    try:
        with httpx.Client(base_url=front.url, timeout=60.0) as http:
            result(http.put("/collections/r", json=HTTP_BODY))
            placed = wait_active(http)
        assert len({peer for _, peer, _ in placed}) == 2  # one replica on each node
        acked = write_until_killed(front)
        front.start(timeout=FRONT_START_S)
        with httpx.Client(base_url=front.url, timeout=60.0) as http:
            assert wait_active(http) == placed  # the same replicas, on the same nodes
            found = result(http.post("/collections/r/points?consistency=all", json={"ids": acked}))
            assert sorted(p["id"] for p in found) == sorted(acked)
            result(http.put("/collections/r/points?wait=true", json=http_points([10_000])))
    finally:
        front.stop()


HTTP_BODY = {
    "vectors": {"size": DIM, "distance": "Dot"},
    "shard_number": 1,
    "replication_factor": 2,
    "write_consistency_factor": 1,
}
FRONT_START_S = 120.0
"""Joining Ray and starting the replica actors on the shared 2-core machine."""


def http_points(ids: list[int]) -> dict[str, Any]:
    return {"points": [{"id": i, "vector": v} for i, v in zip(ids, vectors(ids), strict=True)]}


def wait_active(http: httpx.Client, timeout: float = 90.0) -> list[tuple[int, int, str]]:
    """The replicas, once both are ``Active``, as sorted (shard, peer, state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remote = result(http.get("/collections/r/cluster"))["remote_shards"]
        found = sorted((r["shard_id"], r["peer_id"], r["state"]) for r in remote)
        if [state for _, _, state in found] == ["Active"] * 2:
            return found
        time.sleep(0.2)
    raise AssertionError(f"replicas not active in time: {found}")


def write_until_killed(front: QuiverProcess) -> list[int]:
    """Batches written by two clients until the front is SIGKILLed mid-write; returns
    the ids of the batches that were acknowledged."""
    acked: list[int] = []
    url = front.url

    def write(start: int) -> None:
        with httpx.Client(base_url=url, timeout=60.0) as http:
            for first in range(start, start + 5_000, 10):
                batch = list(range(first, first + 10))
                try:
                    answer = http.put("/collections/r/points?wait=true", json=http_points(batch))
                except httpx.TransportError:
                    return
                assert answer.status_code == 200, answer.text
                acked.extend(batch)

    writers = [threading.Thread(target=write, args=(k * 5_000,)) for k in range(2)]
    for writer in writers:
        writer.start()
    while len(acked) < 100 and all(w.is_alive() for w in writers):
        time.sleep(0.01)
    front.kill()
    for writer in writers:
        writer.join()
    assert 100 <= len(acked) < 10_000
    return acked


def test_a_killed_node_loses_no_acknowledged_write(
    ray_cluster: tuple[Any, list[Any]], tmp_path: Path
) -> None:
    from server.cluster.ray_replicas import RayReplicaFactory

    cluster, workers = ray_cluster
    config = make_config(write_factor=1)
    factory = RayReplicaFactory("c", config, cpus=0.25)
    group = ReplicatedShardGroup(tmp_path / "shards", config, factory, heal_interval_s=0.5)
    collection = ShardedCollection("c", config, group)
    assert all(len({r.node for r in s.replicas}) == 2 for s in group.sets)
    assert all(running_node(r) == r.node for s in group.sets for r in s.replicas)

    acked: list[int] = []
    failures: list[BaseException] = []
    reads = 0

    def write(start: int) -> None:
        for first in range(start, start + 150, 5):
            try:
                upsert(collection, list(range(first, first + 5)))
                acked.extend(range(first, first + 5))
            except BaseException as error:
                failures.append(error)

    def read() -> None:
        nonlocal reads
        spec = SearchSpec(vector=np.ones(DIM, dtype=np.float32), using="", limit=5)
        while any(w.is_alive() for w in writers):
            try:
                collection.search([spec])
                collection.retrieve(acked[:20], PayloadSelector.of("none"), False)
                reads += 1
            except BaseException as error:
                failures.append(error)

    writers = [threading.Thread(target=write, args=(k * 1000,)) for k in range(3)]
    reader = threading.Thread(target=read)
    for thread in [*writers, reader]:
        thread.start()
    while len(acked) < 60:
        time.sleep(0.01)
    held = [r.node for s in group.sets for r in s.replicas]
    victim = max(workers, key=lambda w: held.count(w.node_id))
    kill_raylet(victim)
    for thread in [*writers, reader]:
        thread.join()
    assert failures == []
    assert reads > 0 and len(acked) == 450

    wait_full(group, timeout=90, gone=victim.node_id)
    assert factory.spares_used >= 1  # a replacement started on the survivor's warm spare
    replaced = [t.target for t in group.finished if t.fresh]
    assert replaced and all(install_seconds(r) > 0 for r in replaced)  # filled by an install
    for shard, copies in enumerate(replica_ids(group)):
        owned = {i for i in acked if shard_of(i, 2) == shard}
        assert copies == [owned, owned]
    assert search_ids(collection) == single_node_ids(tmp_path, acked)

    collection.drop()
    assert not any((tmp_path / "shards" / str(s.shard) / r.replica_id).exists()
                   for s in group.sets for r in s.replicas)  # fmt: skip
    cluster.remove_node(victim, allow_graceful=False)


def running_node(replica: Any) -> str:
    """The node Ray actually runs the replica's actor on (not the front's record)."""
    import ray

    node: str = ray.get(
        replica.handle.actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())
    )
    return node


def install_seconds(replica: Any) -> float:
    """How long the replica's last snapshot install took (0: it had none)."""
    import ray

    seconds: float = ray.get(replica.handle.actor.install_seconds.remote())
    return seconds


def search_ids(collection: Any) -> list[list[Any]]:
    specs = [
        SearchSpec(vector=np.asarray(v, dtype=np.float32), using="", limit=10)
        for v in vectors([7, 8, 9])
    ]
    return [[hit.id for hit in hits] for hits in collection.search(specs)]


def single_node_ids(root: Path, ids: list[int]) -> list[list[Any]]:
    (root / "single").mkdir()
    config = CollectionConfig(vectors=make_config().vectors, named_vectors=False)
    single = Collection.create("c", root / "single", config)
    single.upsert(ids, vectors(ids), [{"n": i} for i in ids])
    try:
        return search_ids(single)
    finally:
        single.close()
