"""Replicated shards on a real two-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head and a worker, each its own raylet): a
``shard_number: 2, replication_factor: 2, write_consistency_factor: 1`` collection keeps
answering reads and writes from several threads while one worker's raylet is killed
with SIGKILL; the lost replicas are re-created on the node left, and then every
acknowledged write is on every replica and searches answer as a single node does, and
a drop removes every live replica's folder, each on its own node.

One test on two nodes, since each raylet costs seconds to start on the shared 2-core
machine (spreading over three nodes is checked in-process); the same paths run
in-process, fast, in ``test_replicas.py`` (with the front's restart: a reopened group
starts one actor per replica again, ~20 s more here)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    for shard, copies in enumerate(replica_ids(group)):
        owned = {i for i in acked if shard_of(i, 2) == shard}
        assert copies == [owned, owned]
    assert search_ids(collection) == single_node_ids(tmp_path, acked)

    collection.drop()
    assert not any((tmp_path / "shards" / str(s.shard) / r.replica_id).exists()
                   for s in group.sets for r in s.replicas)  # fmt: skip
    cluster.remove_node(victim, allow_graceful=False)


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
