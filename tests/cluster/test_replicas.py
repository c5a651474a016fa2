"""Replicated shards with the replicas in this process on simulated nodes
(``LocalReplicaFactory``): writes reach every active replica in order, a killed node's
replicas are marked dead and replaced while writes go on, a lagging replica catches up
from a snapshot when the log no longer reaches back, a reopened group tells the
lagging replicas from the current ones, and reads honour ``consistency``. The same
paths over a real multi-node Ray are in ``test_ray_replicas.py``."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.metrics import Distance
from server.cluster.oplog import OpLog
from server.cluster.ray_replicas import ReplicaActor
from server.cluster.replica_server import ReplicaServer, SequenceGap
from server.cluster.replica_set import ReplicaState, merge_answers, peer_id
from server.cluster.replica_transport import LocalReplica, LocalReplicaFactory
from server.cluster.replicated import ReplicatedShardGroup
from server.cluster.shards import (
    ShardCall,
    ShardedCollection,
    ShardServer,
    on_collection,
    on_server,
)
from server.engine.collection import Collection
from server.engine.config import CollectionConfig, VectorParams
from server.engine.consistency import READ_CONSISTENCY, parse_consistency
from server.engine.engine import Engine
from server.engine.payload import PayloadSelector
from server.engine.requests import PointsSelection, SearchSpec
from server.engine.results import Record
from server.errors import BadRequest, InvalidSnapshot, ServiceUnavailable

DIM = 4
NONE = PayloadSelector.of("none")


def make_config(write_factor: int = 1) -> CollectionConfig:
    return CollectionConfig(
        vectors={"": VectorParams(size=DIM, distance=Distance.COSINE)},
        named_vectors=False,
        shard_number=2,
        replication_factor=2,
        write_consistency_factor=write_factor,
    )


def vectors(ids: list[int]) -> list[list[float]]:
    return [np.random.default_rng(i).normal(size=DIM).tolist() for i in ids]


def upsert(collection: ShardedCollection, ids: list[int]) -> None:
    collection.upsert(ids, vectors(ids), [{"n": i} for i in ids])


def replica_ids(group: ReplicatedShardGroup) -> list[list[set[Any]]]:
    """Every replica's point ids, per shard (asked of each replica directly)."""
    scroll = on_collection(Collection.scroll, None, 100_000, None, NONE, False)
    return [
        [{r.id for r in rep.handle.read(scroll).result().records} for rep in s.replicas]
        for s in group.sets
    ]


def wait_replicated(group: ReplicatedShardGroup, timeout: float = 20.0) -> None:
    """Until every shard has its wanted number of active replicas."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [[r.state for r in s.replicas] for s in group.sets]
        full = all(
            len(st) == group.wanted[i] and set(st) == {ReplicaState.ACTIVE}
            for i, st in enumerate(states)
        )
        if full and not group.transfers:
            return
        time.sleep(0.05)
    raise AssertionError(f"not replicated in time: {states}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ShardedCollection, LocalReplicaFactory]]:
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=3)
    group = ReplicatedShardGroup(tmp_path / "shards", config, factory, heal_interval_s=0.1)
    collection = ShardedCollection("c", config, group)
    yield collection, factory
    collection.close()


def shard_nodes(group: ReplicatedShardGroup, factory: LocalReplicaFactory) -> tuple[set[str], str]:
    """The nodes holding shard 0, and the one node that does not."""
    held = {r.node for r in group.sets[0].replicas}
    [spare] = [node for node in factory.nodes() if node not in held]
    return held, spare


def group_of(collection: ShardedCollection) -> ReplicatedShardGroup:
    assert isinstance(collection.group, ReplicatedShardGroup)
    return collection.group


def test_replicas_of_a_shard_are_spread_and_all_get_every_write(
    cluster: tuple[ShardedCollection, LocalReplicaFactory],
) -> None:
    collection, _ = cluster
    upsert(collection, list(range(100)))
    group = group_of(collection)
    for replica_set in group.sets:
        assert len({r.node for r in replica_set.replicas}) == 2
    held = replica_ids(group)
    assert [len(set.union(*shard)) for shard in held] == [len(shard[0]) for shard in held]
    assert all(shard[0] == shard[1] for shard in held)
    assert set.union(*(shard[0] for shard in held)) == set(range(100))
    assert collection.count(None) == 100


def test_a_killed_node_is_replaced_while_writes_go_on(
    cluster: tuple[ShardedCollection, LocalReplicaFactory], tmp_path: Path
) -> None:
    collection, factory = cluster
    group = group_of(collection)
    acked: list[int] = []
    errors: list[BaseException] = []

    def write(start: int) -> None:
        for first in range(start, start + 300, 10):
            try:
                upsert(collection, list(range(first, first + 10)))
                acked.extend(range(first, first + 10))
            except BaseException as error:
                errors.append(error)

    writers = [threading.Thread(target=write, args=(k * 1000,)) for k in range(3)]
    for writer in writers:
        writer.start()
    while len(acked) < 100:
        time.sleep(0.005)
    victim = group.sets[0].replicas[0].node
    factory.kill_node(victim)
    for writer in writers:
        writer.join()
    assert errors == []
    wait_replicated(group)
    assert all(r.node != victim for s in group.sets for r in s.replicas)
    replaced = [t for t in group.finished if t.fresh]
    assert replaced and all(t.target.node != victim for t in replaced)
    assert all({"start", "install", "replay", "tail"} <= set(t.phases) for t in replaced)
    held = replica_ids(group)
    assert all(shard[0] == shard[1] for shard in held)
    assert set.union(*(shard[0] for shard in held)) == set(acked)
    (tmp_path / "single").mkdir()
    single_config = CollectionConfig(vectors=make_config().vectors, named_vectors=False)
    single = Collection.create("c", tmp_path / "single", single_config)
    single.upsert(acked, vectors(acked), [{"n": i} for i in acked])
    spec = SearchSpec(vector=np.ones(DIM, dtype=np.float32), using="", limit=10)
    expected = [(h.id, round(h.score, 5)) for h in single.search([spec])[0]]
    assert [(h.id, round(h.score, 5)) for h in collection.search([spec])[0]] == expected
    single.close()


def test_a_lost_replica_is_not_replaced_on_the_node_it_was_lost_on(tmp_path: Path) -> None:
    """Ray reports a replica dead before it drops the node: a replacement pinned to
    that node could never start. Here node-0 would otherwise win the tie."""
    config = make_config().model_copy(update={"shard_number": 1})
    factory = LocalReplicaFactory("c", config, nodes=3)
    group = ReplicatedShardGroup(tmp_path, config, factory, heal_interval_s=0.05)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(10)))
    [lost] = [r for r in group.sets[0].replicas if r.node == "node-0"]
    lost.handle.kill()  # type: ignore[attr-defined]  # the process dies, the node stays listed
    group.sets[0].mark_dead(lost, "test")
    wait_replicated(group)
    assert sorted(r.node for r in group.sets[0].replicas) == ["node-1", "node-2"]
    collection.close()


def test_a_lagging_replica_catches_up_from_a_snapshot_past_the_log(tmp_path: Path) -> None:
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=2)
    group = ReplicatedShardGroup(tmp_path, config, factory, log_capacity=3, heal=False)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(20)))
    lagging = group.sets[1].replicas[1]
    group.sets[1].mark_dead(lagging, "test")
    for first in range(20, 100, 10):
        upsert(collection, list(range(first, first + 10)))
    assert group.sets[1].log.since(0) is None  # the log no longer reaches back
    lagging.state = ReplicaState.PARTIAL
    group.sets[1].catch_up(lagging)
    assert lagging.state is ReplicaState.ACTIVE
    upsert(collection, [500])
    held = replica_ids(group)
    assert held[1][0] == held[1][1]
    assert sum(len(shard[0]) for shard in held) == 101
    collection.close()


@pytest.mark.parametrize("log", ["reaches back", "overtaken", "lost"])
def test_a_reopened_group_marks_the_replicas_that_lag_dead(tmp_path: Path, log: str) -> None:
    """The lagging replica catches up after the restart from the log alone, from a
    snapshot plus the log, or (the log's folder gone) from a snapshot."""
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=2)
    capacity = 3 if log == "overtaken" else 10_000
    group = ReplicatedShardGroup(tmp_path, config, factory, heal=False, log_capacity=capacity)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(20)))
    lagging = group.sets[0].replicas[0]
    group.sets[0].mark_dead(lagging, "test")
    for first in range(20, 40, 5):
        upsert(collection, list(range(first, first + 5)))
    membership = group.membership()
    collection.close()
    if log == "lost":
        shutil.rmtree(tmp_path / "oplog")
    reopened = ReplicatedShardGroup(
        tmp_path, config, factory, membership, heal_interval_s=0.1, log_capacity=capacity
    )
    states = [[r.state for r in s.replicas] for s in reopened.sets]
    assert states[0].count(ReplicaState.ACTIVE) == 1
    assert set(states[1]) == {ReplicaState.ACTIVE}
    wait_replicated(reopened)
    held = replica_ids(reopened)
    assert all(shard[0] == shard[1] for shard in held)
    assert sum(len(shard[0]) for shard in held) == 40
    reopened.close()


def test_writes_fail_when_fewer_replicas_are_active_than_the_write_factor(
    tmp_path: Path,
) -> None:
    config = make_config(write_factor=2)
    factory = LocalReplicaFactory("c", config, nodes=2)
    group = ReplicatedShardGroup(tmp_path, config, factory, heal=False)
    collection = ShardedCollection("c", config, group)
    upsert(collection, [1, 2, 3])
    for replica_set in group.sets:
        replica_set.mark_dead(replica_set.replicas[0], "test")
    with pytest.raises(ServiceUnavailable):
        upsert(collection, [4])
    assert collection.count(None) == 3  # reads still answered by the active replicas
    collection.close()


def test_read_consistency_asks_that_many_replicas_and_keeps_what_they_agree_on(
    cluster: tuple[ShardedCollection, LocalReplicaFactory],
) -> None:
    collection, _ = cluster
    upsert(collection, list(range(10)))
    token = READ_CONSISTENCY.set(parse_consistency("all"))
    try:
        assert len(collection.retrieve(list(range(12)), NONE, False)) == 10
        READ_CONSISTENCY.set(parse_consistency(3))
        with pytest.raises(ServiceUnavailable):  # only 2 replicas per shard
            collection.retrieve([1], NONE, False)
    finally:
        READ_CONSISTENCY.reset(token)
    a, b, c = (Record(i, None, None) for i in (1, 2, 3))
    assert [r.id for r in merge_answers([[a, b], [b, c], [b]], 3)] == [2]
    assert [r.id for r in merge_answers([[a, b], [b, c], [a]], 2)] == [1, 2]
    assert merge_answers([[[a, b]], [[b]]], 2) == [[b]]


def test_reads_skip_a_replica_still_applying_a_write_backlog(
    cluster: tuple[ShardedCollection, LocalReplicaFactory],
) -> None:
    collection, _ = cluster
    replica_set = group_of(collection).sets[0]
    slow, fast = replica_set.replicas
    gate = threading.Event()
    slow.handle._pool.submit(gate.wait)  # type: ignore[attr-defined]  # its thread is busy
    upsert(collection, list(range(10)))  # acknowledged by ``fast``; queued on ``slow``
    assert slow.pending > 0
    count = on_collection(Collection.count, None)
    for _ in range(3):
        [(chosen, reply)] = replica_set.start_read(count, None)
        assert chosen is fast
        assert reply.result(timeout=5) > 0
    gate.set()
    deadline = time.monotonic() + 5
    while slow.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    chosen_ones = {replica_set.start_read(count, None)[0][0] for _ in range(2)}
    assert chosen_ones == {slow, fast}  # equally idle: in turn again


def test_consistency_values_follow_qdrant() -> None:
    assert parse_consistency(None) is None
    assert parse_consistency("majority").replicas_to_ask(3) == 2  # type: ignore[union-attr]
    assert parse_consistency("quorum").votes_needed(3) == 2  # type: ignore[union-attr]
    assert parse_consistency("2").replicas_to_ask(5) == 2  # type: ignore[union-attr]
    for bad in ("0", "most", -1):
        with pytest.raises(BadRequest):
            parse_consistency(bad)


def test_the_operation_log_keeps_the_newest_writes(tmp_path: Path) -> None:
    oplog = OpLog(tmp_path, capacity=2)
    call = on_collection(Collection.count, None)
    for _ in range(3):
        oplog.append(call)
    assert oplog.since(3) == []
    assert [seq for seq, _ in oplog.since(1) or []] == [2, 3]
    assert oplog.since(0) is None


def test_the_operation_log_is_read_back_bounded_and_cut_at_a_torn_record(
    tmp_path: Path,
) -> None:
    oplog = OpLog(tmp_path, capacity=16)  # segments of 2 operations
    for first in range(0, 40, 2):
        oplog.append(on_collection(Collection.upsert, [first], vectors([first]), [{}]))
    oplog.sync()
    assert len(list(tmp_path.glob("*.log"))) <= 16 // 2 + 1  # old segments are removed
    reopened = OpLog(tmp_path, capacity=16)
    assert reopened.last_seq == 20 and len(reopened) == 16
    assert [seq for seq, _ in reopened.since(4) or []] == list(range(5, 21))
    [(seq, call)] = reopened.since(19) or []
    assert (seq, call.method, call.args[0]) == (20, Collection.upsert, [38])
    oplog.close()
    newest = max(tmp_path.glob("*.log"))
    newest.write_bytes(newest.read_bytes()[:-3])  # a crash cut the last append short
    cut = OpLog(tmp_path, capacity=16)
    assert cut.last_seq == 19
    assert cut.append(on_collection(Collection.count, None)) == 20
    cut.close()
    assert OpLog(tmp_path, capacity=16).last_seq == 20


def test_a_restarted_front_replays_a_write_only_a_lost_replica_applied(tmp_path: Path) -> None:
    """The durable log: a write acknowledged by one replica whose node is then lost
    together with the front still reaches the other replica when the front reopens."""
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=2)
    group = ReplicatedShardGroup(tmp_path, config, factory, heal=False)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(20)))
    behind, ahead = group.sets[0].replicas
    group.sets[0].mark_dead(behind, "test")
    upsert(collection, list(range(20, 40)))  # shard 0's part reaches only ``ahead``
    membership = group.membership()
    collection.close()
    factory.kill_node(ahead.node)
    reopened = ReplicatedShardGroup(tmp_path, config, factory, membership, heal=False)
    assert [[r.state for r in s.replicas] for s in reopened.sets] == [[ReplicaState.ACTIVE]] * 2
    assert set.union(*(shard[0] for shard in replica_ids(reopened))) == set(range(40))
    reopened.close()


def test_after_a_front_restart_a_lagging_replica_catches_up_from_the_log_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=2)
    group = ReplicatedShardGroup(tmp_path, config, factory, heal=False)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(20)))
    lagging = group.sets[0].replicas[0]
    group.sets[0].mark_dead(lagging, "test")
    upsert(collection, list(range(20, 40)))
    membership = group.membership()
    collection.close()
    reopened = ReplicatedShardGroup(tmp_path, config, factory, membership, heal=False)
    [again, _] = reopened.sets[0].replicas
    assert again.state is ReplicaState.DEAD
    again.state = ReplicaState.PARTIAL
    snapshots: list[LocalReplica] = []
    take = LocalReplica.snapshot

    def counted(replica: LocalReplica) -> Any:
        snapshots.append(replica)
        return take(replica)

    monkeypatch.setattr(LocalReplica, "snapshot", counted)
    reopened.sets[0].catch_up(again)
    assert again.state is ReplicaState.ACTIVE and snapshots == []
    held = replica_ids(reopened)[0]
    assert held[0] == held[1] and len(held[0]) > 0
    reopened.close()


def test_move_shard_fills_the_new_replica_then_drops_the_old_one(
    cluster: tuple[ShardedCollection, LocalReplicaFactory],
) -> None:
    collection, factory = cluster
    upsert(collection, list(range(30)))
    group = group_of(collection)
    held, spare = shard_nodes(group, factory)
    source = sorted(held)[0]
    move = {"shard_id": 0, "from_peer_id": peer_id(source), "to_peer_id": peer_id(spare)}
    group.cluster_operation("move_shard", move)
    wait_replicated(group)
    assert {r.node for r in group.sets[0].replicas} == held - {source} | {spare}
    copies = replica_ids(group)[0]
    assert copies[0] == copies[1] and len(copies[0]) > 0
    with pytest.raises(BadRequest):  # no transfer is running
        group.cluster_operation("abort_transfer", {"shard_id": 0, "to_peer_id": peer_id(spare)})
    with pytest.raises(BadRequest):
        group.cluster_operation("move_shard", move | {"shard_id": 7})


def test_a_node_killed_during_a_transfer_is_replaced_by_another_transfer(
    cluster: tuple[ShardedCollection, LocalReplicaFactory],
) -> None:
    collection, factory = cluster
    upsert(collection, list(range(30)))
    group = group_of(collection)
    _, spare = shard_nodes(group, factory)
    group.cluster_operation("replicate_shard", {"shard_id": 0, "to_peer_id": peer_id(spare)})
    assert 0 in group.transfers  # registered before the call returns
    factory.kill_node(spare)
    upsert(collection, list(range(30, 40)))
    wait_replicated(group)
    assert len(group.sets[0].replicas) == 3
    assert spare not in {r.node for s in group.sets for r in s.replicas}
    copies = replica_ids(group)[0]
    assert copies[0] == copies[1] == copies[2]


def test_a_collection_drops_while_a_replica_is_down(tmp_path: Path) -> None:
    config = make_config()
    factory = LocalReplicaFactory("c", config, nodes=3)
    group = ReplicatedShardGroup(tmp_path, config, factory, heal=False)
    collection = ShardedCollection("c", config, group)
    upsert(collection, list(range(20)))
    down = group.sets[0].replicas[0]
    factory.kill_node(down.node)
    collection.drop()
    folders = {(s.shard, r.replica_id, r.node) for s in group.sets for r in s.replicas}
    for shard, replica_id, node in folders:
        # each live replica removed its own folder; the one on the dead node is left there
        assert (tmp_path / str(shard) / replica_id).exists() == (node == down.node)


def bulk(ids: list[int]) -> ShardCall[Any]:
    rows = np.asarray(vectors(ids), dtype=np.float32)
    return on_collection(Collection.bulk_upsert, ids, {"": rows}, [{"n": i} for i in ids])


def stored(server: ReplicaServer) -> dict[Any, Any]:
    """Every point of a replica: id -> (vector, payload)."""
    scroll = on_collection(Collection.scroll, None, 100_000, None, PayloadSelector.of("all"), True)
    return {r.id: (np.round(r.vector, 5).tolist(), r.payload) for r in server.call(scroll).records}


SEALING = {
    "vectors": {"": {"size": DIM, "distance": "Cosine"}},
    "named_vectors": False,
    "optimizers_config": {"indexing_threshold": 100},
}
"""A replica's config whose segments seal (and get built) every 100 points."""


def test_a_snapshot_is_the_shards_files_and_install_opens_them_without_upserting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ReplicaServer(str(tmp_path / "a"), "c", SEALING)
    for seq, start in enumerate(range(0, 300, 50), start=1):
        source.apply(seq, bulk(list(range(start, start + 50))))
    assert source.call(on_server(ShardServer.wait_idle, 30.0))  # sealed segments built
    seq, files = source.snapshot()
    assert seq == 6 and "points.sqlite" in files
    assert any(name.endswith(".index") for name in files)  # the built indexes travel
    with closing(sqlite3.connect(":memory:")) as copy:  # the store's data, not its job history
        copy.deserialize(files["points.sqlite"])
        assert copy.execute("SELECT count(*), count(DISTINCT pid) FROM points").fetchone() == (
            300,
            300,
        )
        assert copy.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    assert source.call(on_server(ShardServer.jobs))  # the source has some
    target = ReplicaServer(str(tmp_path / "b"), "c", SEALING)
    upserts: list[str] = []
    for method in ("upsert", "bulk_upsert", "_upsert"):
        monkeypatch.setattr(Collection, method, lambda *a, m=method, **k: upserts.append(m))

    def no_archive(*args: Any) -> None:
        raise AssertionError("the files are opened, no archive is unpacked")

    monkeypatch.setattr(Engine, "recover", no_archive)
    assert target.install((seq, files)) == 6 and target.applied_seq() == 6
    assert upserts == []
    assert stored(target) == stored(source) and len(stored(target)) == 300
    with pytest.raises(InvalidSnapshot):  # a name outside a collection's layout
        target.install((9, files | {"../escape": b""}))
    assert target.applied_seq() == 6 and len(stored(target)) == 300  # nothing changed
    fresh = ReplicaActor()  # a new replica: its engine opens once, on the installed files
    fresh.open(str(tmp_path / "d"), "c", SEALING, 0.0, to_install=True)
    assert fresh.applied_seq() == 0 and not (tmp_path / "d").exists()
    with pytest.raises(InvalidSnapshot):
        fresh.install((9, files | {"../escape": b""}))
    assert fresh.applied_seq() == 0  # still waiting for an install
    assert fresh.install((seq, files)) == 6 and fresh.applied_seq() == 6
    assert upserts == [] and stored(fresh.server()) == stored(source)
    placed = ReplicaServer(str(tmp_path / "e"), "c", SEALING, snapshot=(seq, files))
    assert placed.applied_seq() == 6 and stored(placed) == stored(source)
    for server in (source, target, fresh, placed):
        server.close()


def test_a_replayed_batch_is_one_engine_write_per_run_of_upserts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config().model_dump(mode="json")
    one_by_one = ReplicaServer(str(tmp_path / "a"), "c", config)
    batched = ReplicaServer(str(tmp_path / "b"), "c", config)
    writes: list[int] = []
    real = Collection.bulk_upsert

    def counted(self: Collection, ids: Any, *args: Any) -> int:
        writes.append(len(ids))
        return real(self, ids, *args)

    monkeypatch.setattr(Collection, "bulk_upsert", counted)
    payload = on_collection(Collection.overwrite_payload, {"x": 1}, PointsSelection(ids=[3]))
    ops: list[tuple[int, ShardCall[Any]]] = [(1, bulk([1, 2, 3])), (2, bulk([3, 4]))]
    ops += [(3, payload), (4, bulk([5])), (5, bulk([1, 6])), (6, bulk([7]))]
    for seq, call in ops:
        one_by_one.apply(seq, call)
    writes.clear()
    assert batched.apply_batch(ops[:1]) == 1
    assert batched.apply_batch(ops) == 6  # the first one again: skipped
    assert writes == [3, 2, 4]  # 1; then 2 alone before the payload write; then 4-6 as one
    assert stored(batched) == stored(one_by_one)  # point 1's later row won, 3 kept its payload
    with pytest.raises(SequenceGap):
        batched.apply_batch([(8, bulk([9]))])
    one_by_one.close()
    batched.close()
