"""Replicated shards: a ``ShardGroup`` whose every shard is a ``ReplicaSet``.

A collection created with ``replication_factor`` R > 1 keeps R replicas of each shard,
each in its own folder on its own node (``ReplicaServer``), spread over the nodes: each
replica goes to the node holding fewest replicas of its shard, then fewest of the
collection. ``ShardedCollection`` calls this group as any other: writes (the methods in
``WRITES``) go through the shard's ordered write path, everything else is a read.

**Healing** (docs/adr/0014-replicated-shards.md). A background thread wakes when a
replica is marked dead and every ``heal_interval_s``. A dead replica whose process or
node is gone is forgotten; one that is alive catches up in place. A shard with fewer
replicas than it should have gets a new one on the best node left, which catches up
from an active replica (``ReplicaSet.catch_up``). One transfer per shard at a time.

**Membership** (which replica lives on which node, and how many each shard wants) is
what the front persists beside the config (``server/catalog.py``); ``on_membership`` is
called after every change. Each shard's operation log is durable too, in
``<base>/oplog/<shard>`` on the front's disk (``oplog.py``). Reopened, each recorded
replica on a node that is still alive is started there again; those at the shard's
highest sequence number replay what the log holds after it (writes logged before the
front stopped) and are active, the others are dead and catch up (from the log alone
when it still reaches back to them), and those on nodes that are gone are replaced.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from server.cluster.oplog import DEFAULT_CAPACITY, OpLog
from server.cluster.replica_set import (
    PhaseClock,
    Replica,
    ReplicaSet,
    ReplicaState,
    peer_id,
    replay,
)
from server.cluster.replica_transport import ReplicaFactory
from server.cluster.shards import ShardCall, ShardServer
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.consistency import READ_CONSISTENCY
from server.errors import BadRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

HEAL_INTERVAL_S = 2.0
LOG_FOLDER = "oplog"
"""Under the group's folder, on the front's disk: ``oplog/<shard>/`` (replica folders
are ``<shard>/<replica id>``, on each replica's node)."""
FINISHED_KEPT = 32
"""Ended transfers kept with their phases (``ReplicatedShardGroup.finished``)."""
OPEN_TIMEOUT_S = 120.0
"""Longest a replica may take to start and open its engine."""

WRITES: frozenset[Callable[..., Any]] = frozenset(
    {
        Collection.upsert,
        Collection.bulk_upsert,
        Collection.delete,
        Collection.set_payload,
        Collection.overwrite_payload,
        Collection.delete_payload,
        Collection.clear_payload,
        Collection.update_vectors,
        Collection.delete_vectors,
        Collection.replace_vectors,
        Collection.add_training_queries,
        ShardServer.update_config,
        ShardServer.recover_snapshot,
    }
)
"""Shard calls that change a shard: sent to every replica in sequence order."""

Membership = list[dict[str, Any]]
"""Per shard: ``{"wanted": n, "replicas": [{"id": ..., "node": ...}, ...]}``."""


@dataclass
class Transfer:
    """A replica being filled (Qdrant's shard transfer); ``drop`` is moved away after."""

    shard: int
    target: Replica
    source_node: str | None = None
    drop: Replica | None = None
    adds: bool = False
    """Asked by ``replicate_shard``: an abort takes the shard's wanted count back down."""
    aborted: bool = False
    fresh: bool = False
    """The target is a new, empty replica: its snapshot is asked for while it starts."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per step: ``start`` (the target opening), ``install`` (waiting for the
    snapshot, carrying it, installing it), ``replay`` and ``tail`` (the logged writes)."""


class ReplicatedShardGroup:
    """R replicas per shard through ``factory``; folders ``<base>/<shard>/<replica id>``."""

    def __init__(
        self,
        base: Path,
        config: CollectionConfig,
        factory: ReplicaFactory,
        membership: Membership | None = None,
        *,
        log_capacity: int = DEFAULT_CAPACITY,
        heal_interval_s: float = HEAL_INTERVAL_S,
        heal: bool = True,
    ) -> None:
        """``heal=False`` (tests) leaves dead and missing replicas as they are."""
        self.base, self.factory = base, factory
        self.write_factor = config.write_consistency_factor
        self.log_capacity = log_capacity
        self.heal_interval_s = heal_interval_s
        self.on_membership: Callable[[], None] = lambda: None
        self.transfers: dict[int, Transfer] = {}
        self.finished: deque[Transfer] = deque(maxlen=FINISHED_KEPT)
        """The latest transfers that ended, with their phases (bench/bench_replicas.py)."""
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        if membership is None:
            self.sets = self._create(config)
            self.wanted = [config.replication_factor] * config.shard_number
        else:
            self.sets = [self._reopen(shard, entry) for shard, entry in enumerate(membership)]
            self.wanted = [int(entry["wanted"]) for entry in membership]
        for replica_set in self.sets:
            replica_set.on_dead = self._wake.set
        self._healer = threading.Thread(target=self._heal_forever, daemon=True, name="healer")
        if heal:
            self._healer.start()
        self._wake.set()  # a reopened group may start with replicas to replace

    @property
    def shard_count(self) -> int:
        return len(self.sets)

    # -- the ShardGroup interface ------------------------------------------

    def call(self, calls: Mapping[int, ShardCall[T]]) -> dict[int, T]:
        """Writes through each shard's ordered path, reads to its replicas; every
        shard's call is sent before any answer is awaited."""
        if any(c.method is ShardServer.destroy for c in calls.values()):
            self._destroy()
            return cast(dict[int, T], dict.fromkeys(calls))  # destroy answers None
        consistency = READ_CONSISTENCY.get()
        writes: dict[int, Future[T]] = {}
        reads: dict[int, list[tuple[Replica, Future[T]]]] = {}
        for shard, call in calls.items():
            if call.method is ShardServer.update_config:  # also when the factor is unreachable
                writes[shard] = self.sets[shard].write(call, needed=1)
            elif call.method in WRITES:
                writes[shard] = self.sets[shard].write(call)
            else:
                reads[shard] = self.sets[shard].start_read(call, consistency)
        for shard in writes:
            self.sets[shard].log.sync()  # durable on the front before any acknowledgement
        out = {shard: reply.result() for shard, reply in writes.items()}
        self._follow_config(calls)
        for shard, asked in reads.items():
            out[shard] = self.sets[shard].finish_read(calls[shard], asked, consistency)
        return out

    def _follow_config(self, calls: Mapping[int, ShardCall[Any]]) -> None:
        """A patched ``write_consistency_factor`` applies from the next write on (a patched
        ``replication_factor`` adds no replica by itself, as in Qdrant: ``replicate_shard``)."""
        for call in calls.values():
            if call.method is ShardServer.update_config:
                config: CollectionConfig = call.args[0]
                self.write_factor = config.write_consistency_factor
                for replica_set in self.sets:
                    replica_set.write_factor = config.write_consistency_factor

    def close(self) -> None:
        """Stop healing and let every replica go (their folders stay)."""
        self._stop_healing()
        _quietly(self.factory.close)
        for replica_set in self.sets:
            for replica in list(replica_set.replicas):
                _quietly(replica.handle.release)
            replica_set.log.close()

    def _destroy(self) -> None:
        """Every reachable replica removes its folder; a replica on a node that is down
        keeps its folder there (docs/adr/0014-replicated-shards.md: orphans)."""
        self._stop_healing()
        _quietly(self.factory.close)
        replies = [r.handle.destroy() for s in self.sets for r in s.replicas]
        for reply in replies:
            _quietly(partial(reply.result, timeout=OPEN_TIMEOUT_S))
        for replica_set in self.sets:
            replica_set.log.close()
        shutil.rmtree(self.base / LOG_FOLDER, ignore_errors=True)

    def _stop_healing(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            for transfer in self.transfers.values():
                transfer.aborted = True
        if self._healer.is_alive() and self._healer is not threading.current_thread():
            self._healer.join()

    # -- membership ------------------------------------------------------

    def membership(self) -> Membership:
        return [
            {
                "wanted": self.wanted[s.shard],
                "replicas": [{"id": r.replica_id, "node": r.node} for r in s.replicas],
            }
            for s in self.sets
        ]

    def _changed(self) -> None:
        try:
            self.on_membership()
        except Exception:  # the next change writes it again
            log.exception("could not persist the replica membership")

    def _create(self, config: CollectionConfig) -> list[ReplicaSet]:
        load: Counter[str] = Counter()
        sets = []
        for shard in range(config.shard_number):
            replicas: list[Replica] = []
            for _ in range(config.replication_factor):
                node = _best_node(self.factory.nodes(), replicas, load)
                replicas.append(self._spawn(shard, node))
                load[node] += 1
            sets.append(ReplicaSet(shard, replicas, self.write_factor, self._log(shard)))
        for replica in (r for s in sets for r in s.replicas):
            replica.handle.applied_seq().result(timeout=OPEN_TIMEOUT_S)
            replica.state = ReplicaState.ACTIVE
        return sets

    def _reopen(self, shard: int, entry: dict[str, Any]) -> ReplicaSet:
        """Recorded replicas on live nodes, active at the highest sequence, else dead."""
        alive = set(self.factory.nodes())
        replicas = [
            Replica(raw["id"], self.factory.spawn(self._folder(shard, raw["id"]), raw["node"]),
                    ReplicaState.INITIALIZING)
            for raw in entry["replicas"] if raw["node"] in alive
        ]  # fmt: skip
        seqs: dict[Replica, int] = {}
        for replica in replicas:
            try:
                seqs[replica] = replica.handle.applied_seq().result(timeout=OPEN_TIMEOUT_S)
            except Exception as error:
                log.warning("replica did not reopen", extra={"reason": str(error)})
        oplog = self._log(shard)
        if seqs:
            self._finish_logged_writes(shard, oplog, seqs)
        for replica in replicas:
            at_end = seqs.get(replica) == oplog.last_seq
            replica.state = ReplicaState.ACTIVE if at_end else ReplicaState.DEAD
        return ReplicaSet(shard, replicas, self.write_factor, oplog)

    def _finish_logged_writes(self, shard: int, oplog: OpLog, seqs: dict[Replica, int]) -> None:
        """Bring the replicas at the shard's highest sequence to the end of the log: a
        write the front logged before it stopped (and maybe acknowledged, with only a
        replica that is gone now applying it) reaches the replicas left. A log that
        does not reach back to them (it lost its tail with its machine, or predates the
        durable log) starts over at their sequence."""
        top = max(seqs.values())
        ops = oplog.since(top)
        if top > oplog.last_seq or ops is None:
            log.warning(
                "operation log behind the replicas, restarted",
                extra={"shard": shard, "log": oplog.last_seq, "replicas": top},
            )
            oplog.reset(top)
            return
        for replica in [r for r, seq in seqs.items() if seq == top and ops]:
            try:
                seqs[replica] = replay(replica, ops)
            except Exception as error:
                log.warning("replica did not replay the log", extra={"reason": str(error)})

    def _log(self, shard: int) -> OpLog:
        return OpLog(self.base / LOG_FOLDER / str(shard), capacity=self.log_capacity)

    def _folder(self, shard: int, replica_id: str) -> Path:
        return self.base / str(shard) / replica_id

    def _spawn(self, shard: int, node: str, to_install: bool = False) -> Replica:
        replica_id = uuid.uuid4().hex[:16]
        handle = self.factory.spawn(self._folder(shard, replica_id), node, to_install)
        return Replica(replica_id, handle, ReplicaState.INITIALIZING)

    # -- healing ---------------------------------------------------------

    def _heal_forever(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.heal_interval_s)
            self._wake.clear()
            self._mark_replicas_of_gone_nodes()
            for replica_set in self.sets:
                if self._stop.is_set():
                    return
                try:
                    self._heal(replica_set)
                except Exception:
                    log.exception("healing failed", extra={"shard": replica_set.shard})
            if not self.transfers and not self._stop.is_set():
                _quietly(self.factory.refill)  # spares start once no recovery needs the cores

    def _mark_replicas_of_gone_nodes(self) -> None:
        """An active replica whose node the cluster no longer lists is dead, even if no
        call has failed on it yet: a shard that is only read now and then (or written
        before its node's death was noticed) would otherwise keep a lost replica."""
        try:
            alive = set(self.factory.nodes())
        except Exception:
            log.warning("cluster nodes not listed; liveness check skipped", exc_info=True)
            return
        if not alive:  # no answer is not "every node is gone"
            return
        for replica_set in self.sets:
            for replica in replica_set.active():
                if replica.node not in alive:
                    replica_set.mark_dead(replica, "its node left the cluster")

    def _heal(self, replica_set: ReplicaSet) -> None:
        if replica_set.shard in self.transfers:
            return
        dead = [r for r in replica_set.replicas if r.state is ReplicaState.DEAD]
        lost = [r for r in dead if r.handle.is_lost()]
        for replica in lost:
            self._forget(replica_set, replica)
        if lost:
            self._changed()
        alive_dead = [r for r in dead if r not in lost]
        if alive_dead:
            self._start(Transfer(replica_set.shard, alive_dead[0]))
        elif len(replica_set.replicas) < self.wanted[replica_set.shard]:
            self._add_replica(replica_set, None, avoid={r.node for r in lost})

    def _add_replica(
        self,
        replica_set: ReplicaSet,
        node: str | None,
        transfer: Transfer | None = None,
        avoid: frozenset[str] | set[str] = frozenset(),
    ) -> Transfer | None:
        """A new replica on ``node`` (else the best node not in ``avoid``: those of
        replicas just lost, whose node may be dying while Ray still lists it), filled
        by a transfer."""
        if node is None:
            every = self.factory.nodes()
            nodes = [n for n in every if n not in avoid] or every
            if not nodes:
                return None
            load = Counter(r.node for s in self.sets for r in s.replicas)
            node = _best_node(nodes, replica_set.replicas, load)
        target = self._spawn(replica_set.shard, node, to_install=True)
        with replica_set.lock:
            replica_set.replicas.append(target)
        self._changed()
        transfer = transfer or Transfer(replica_set.shard, target)
        transfer.target, transfer.fresh = target, True
        self._start(transfer)
        return transfer

    def _forget(self, replica_set: ReplicaSet, replica: Replica) -> None:
        with replica_set.lock:
            if replica in replica_set.replicas:
                replica_set.replicas.remove(replica)
        _quietly(replica.handle.release)
        log.warning("replica forgotten", extra={"shard": replica_set.shard, "node": replica.node})

    def _start(self, transfer: Transfer) -> None:
        replica_set = self.sets[transfer.shard]
        with self._lock:
            self.transfers[transfer.shard] = transfer
        with replica_set.lock:
            if transfer.target.state is ReplicaState.DEAD:
                transfer.target.state = ReplicaState.PARTIAL
        threading.Thread(target=self._transfer, args=(transfer,), daemon=True).start()

    def _transfer(self, transfer: Transfer) -> None:
        replica_set, target = self.sets[transfer.shard], transfer.target
        clock = PhaseClock(transfer.phases)
        try:
            snapshot = None
            if transfer.fresh:  # the source builds it while the target starts
                source, snapshot = replica_set.request_snapshot(target)
                transfer.source_node = source.node
            target.handle.applied_seq().result(timeout=OPEN_TIMEOUT_S)  # opened
            clock("start")
            with replica_set.lock:
                if transfer.aborted:
                    raise BadRequest("transfer aborted")
                target.state = ReplicaState.PARTIAL
            if transfer.source_node is None:
                transfer.source_node = replica_set.source_for(target).node
            replica_set.catch_up(target, snapshot, transfer.phases)
            if transfer.drop is not None:
                self._remove(replica_set, transfer.drop)
        except Exception as error:
            log.warning("transfer failed", extra={"shard": transfer.shard, "reason": str(error)})
            if transfer.aborted and not self._stop.is_set():
                self._remove(replica_set, target)
                self.wanted[transfer.shard] -= int(transfer.adds)
            else:
                replica_set.mark_dead(target, error)
        finally:
            with self._lock:
                self.transfers.pop(transfer.shard, None)
                self.finished.append(transfer)
            phases = {name: round(s, 3) for name, s in transfer.phases.items()}
            log.info("transfer ended", extra={"shard": transfer.shard, "phases": phases})
            self._changed()
            self._wake.set()

    def _remove(self, replica_set: ReplicaSet, replica: Replica) -> None:
        """Take ``replica`` out of the shard and delete its folder (on its node)."""
        with replica_set.lock:
            if replica in replica_set.replicas:
                replica_set.replicas.remove(replica)
            replica.state = ReplicaState.DEAD
        _quietly(lambda: replica.handle.destroy().result(timeout=OPEN_TIMEOUT_S))
        _quietly(replica.handle.release)
        self._changed()

    # -- Qdrant's cluster operations and status ------------------------------

    def cluster_info(self) -> dict[str, Any]:
        """Qdrant's ``remote_shards`` (every replica: the front holds none itself) and
        ``shard_transfers``."""
        remote = [
            {"shard_id": s.shard, "peer_id": peer_id(r.node), "state": str(r.state)}
            for s in self.sets
            for r in s.replicas
        ]
        with self._lock:
            transfers = [
                {
                    "shard_id": t.shard,
                    "from": peer_id(t.source_node),
                    "to": peer_id(t.target.node),
                    "sync": True,
                    "method": "snapshot",
                }
                for t in self.transfers.values()
                if t.source_node is not None  # listed once its source is chosen
            ]
        return {"remote_shards": remote, "shard_transfers": transfers}

    def cluster_operation(self, kind: str, args: dict[str, Any]) -> None:
        """``replicate_shard``, ``move_shard``, ``abort_transfer`` or ``drop_replica``
        (Qdrant's bodies); bad input is a 400 and changes nothing."""
        replica_set = self._shard(args.get("shard_id"))
        if kind == "drop_replica":
            self._drop_replica(replica_set, self._node_of(args.get("peer_id")))
        elif kind == "abort_transfer":
            self._abort(replica_set, self._node_of(args.get("to_peer_id")))
        elif kind in ("replicate_shard", "move_shard"):
            self._copy(replica_set, kind, args)
        else:
            raise BadRequest(f"Bad request: unknown cluster operation {kind!r}")

    def _copy(self, replica_set: ReplicaSet, kind: str, args: dict[str, Any]) -> None:
        target_node = self._node_of(args.get("to_peer_id"))
        if target_node not in self.factory.nodes():
            raise BadRequest(f"Bad request: peer {args.get('to_peer_id')} is not alive")
        if replica_set.shard in self.transfers:
            raise BadRequest(f"Bad request: shard {replica_set.shard} already has a transfer")
        transfer = Transfer(replica_set.shard, replica_set.replicas[0])
        if kind == "move_shard":
            transfer.drop = self._replica_on(replica_set, self._node_of(args.get("from_peer_id")))
        else:
            transfer.adds = True
            self.wanted[replica_set.shard] += 1
        self._add_replica(replica_set, target_node, transfer)

    def _drop_replica(self, replica_set: ReplicaSet, node: str) -> None:
        replica = self._replica_on(replica_set, node)
        others = [r for r in replica_set.active() if r is not replica]
        if not others:
            raise BadRequest(
                f"Bad request: the replica on peer {peer_id(node)} is the last active one "
                f"of shard {replica_set.shard}"
            )
        transfer = self.transfers.get(replica_set.shard)
        if transfer is not None and transfer.target is replica:
            transfer.aborted = True
        self.wanted[replica_set.shard] -= 1
        self._remove(replica_set, replica)

    def _abort(self, replica_set: ReplicaSet, node: str) -> None:
        transfer = self.transfers.get(replica_set.shard)
        if transfer is None or transfer.target.node != node:
            raise BadRequest(f"Bad request: no transfer of shard {replica_set.shard} to that peer")
        with replica_set.lock:
            transfer.aborted = True
            transfer.target.state = ReplicaState.DEAD  # the catch-up stops at its next step

    def _shard(self, raw: Any) -> ReplicaSet:
        if not isinstance(raw, int) or not 0 <= raw < len(self.sets):
            raise BadRequest(f"Bad request: shard_id must be one of 0..{len(self.sets) - 1}")
        return self.sets[raw]

    def _node_of(self, raw: Any) -> str:
        known = set(self.factory.nodes()) | {r.node for s in self.sets for r in s.replicas}
        for node in known:
            if peer_id(node) == raw:
                return node
        raise BadRequest(f"Bad request: unknown peer {raw!r}")

    def _replica_on(self, replica_set: ReplicaSet, node: str) -> Replica:
        held = [r for r in replica_set.replicas if r.node == node]
        if not held:
            raise BadRequest(
                f"Bad request: peer {peer_id(node)} holds no replica of shard {replica_set.shard}"
            )
        return min(held, key=lambda r: r.state is ReplicaState.ACTIVE)  # a dead one first


def _best_node(nodes: list[str], shard_replicas: list[Replica], load: Counter[str]) -> str:
    """The node holding fewest replicas of this shard, then fewest of the collection."""
    holding = Counter(r.node for r in shard_replicas)
    return min(nodes, key=lambda node: (holding[node], load[node], node))


def _quietly(work: Callable[[], Any]) -> None:
    """Cleanup of a replica that may be gone already: failures are logged, not raised."""
    try:
        work()
    except Exception as error:
        log.info("replica cleanup failed", extra={"reason": str(error)})
