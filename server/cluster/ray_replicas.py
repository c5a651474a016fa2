"""Replicas as Ray actors, each pinned to one node (the Ray transport of
``server/cluster/replica_transport.py``).

Unlike an unreplicated shard (``ray_shards.py``), a replica actor is never restarted
by Ray (``max_restarts=0``) nor are its calls retried: its folder is on its node's own
disk, so a replica restarted elsewhere would find nothing, and a retried write could
land out of order. A replica that dies is marked dead by its replica set and replaced
(``replicated.py``). Each actor is pinned to the node chosen for it with a hard node
affinity, so a reopened replica lands where its folder is; on a local Ray (one machine,
``single_machine``) node ids change with every start, so replicas are not pinned there
and every replica's node is ``LOCAL_NODE``.

**Warm spares.** Starting a replica's process and importing the engine takes seconds
(3-9 s on a loaded machine), which a replacement replica would otherwise wait for while
its shard is short of a copy. A ``SparePool``, shared by the front's replicated
collections, keeps one spare actor per node that has had a replica: a ``ReplicaActor``
whose process is up with the engine imported and no folder. ``spawn`` gives the node's
spare its folder (``ReplicaActor.open``), so a replacement starts in the time an empty
engine takes to open. A spare reserves the CPUs of a replica (it becomes one); one on a
node that dies dies with it, and a replacement goes to a surviving node, whose spare is
used. Used spares are started again by ``refill``, which a replica group calls once none
of its transfers is running, so a new process's imports do not compete with its recovery
for the cores.

Snapshots travel as Ray objects: ``install`` of the target is given the reference
that ``snapshot`` of the source returned, so the bytes go from node to node through
Ray's object store, never through the front.
"""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from server.cluster.replica_server import ReplicaServer, ReplicaSnapshot
from server.cluster.replica_transport import LOCAL_NODE
from server.cluster.shards import ShardCall
from server.engine.config import CollectionConfig
from server.errors import QuiverError

T = TypeVar("T")
OpenArgs = tuple[str, str, dict[str, Any], float]
"""A replica's folder, collection name, config and idle-seal seconds (``ReplicaServer``)."""

PING_S = 5.0
"""How long ``is_lost`` waits for a replica that is on a live node."""
NODES_TTL_S = 0.5
"""How long the list of live nodes is reused (``ray.nodes()`` asks the GCS)."""


class ReplicaNotOpen(Exception):
    """A call reached a replica actor before ``open`` (or after ``open`` failed)."""


class ReplicaActor:
    """A replica's Ray actor: started empty, as a warm spare (process up, engine
    imported), and given its folder by ``open``; every other call goes to the
    ``ReplicaServer`` opened there. Calls run one at a time in the order sent, so the
    calls sent after ``open`` find the replica opened."""

    def __init__(self) -> None:
        self._server: ReplicaServer | None = None
        self._failed: BaseException | None = None
        self._to_install: OpenArgs | None = None
        """A new replica's folder, opened by its first ``install``."""
        self._install_s = 0.0
        self._snapshot_at = (0.0, 0.0)

    def ready(self) -> bool:
        return True

    def open(
        self,
        folder: str,
        name: str,
        config: dict[str, Any],
        idle_seal_s: float,
        to_install: bool = False,
    ) -> None:
        """``to_install``: a new replica, filled by a snapshot next. Its engine opens
        once, on the installed files (``ReplicaServer``'s ``snapshot``), not empty
        first: until then it holds sequence 0 and nothing else."""
        if to_install:
            self._to_install = (folder, name, config, idle_seal_s)
            return
        try:
            self._server = ReplicaServer(folder, name, config, idle_seal_s)
        except BaseException as error:
            self._failed = error  # every later call raises it: the replica did not open
            raise

    def _pending_open(self) -> OpenArgs | None:
        """A new replica's open arguments while it waits for its first ``install``."""
        return self._to_install if self._server is None else None

    def server(self) -> ReplicaServer:
        if self._server is None:
            raise self._failed or ReplicaNotOpen("the replica has no folder yet")
        return self._server

    def apply(self, seq: int, call: ShardCall[T]) -> T | None:
        return self.server().apply(seq, call)

    def apply_batch(self, ops: list[tuple[int, ShardCall[Any]]]) -> int:

        return self.server().apply_batch(ops)

    def call(self, call: ShardCall[T]) -> T:
        return self.server().call(call)

    def applied_seq(self) -> int:
        if self._pending_open() is not None:
            return 0
        return self.server().applied_seq()

    def snapshot(self) -> ReplicaSnapshot:
        started, clock = time.time(), time.monotonic()
        try:
            return self.server().snapshot()
        finally:
            self._snapshot_at = (started, time.monotonic() - clock)

    def snapshot_timing(self) -> tuple[float, float]:
        """When the last ``snapshot`` began here (wall clock: a later start than the
        caller's request is the writes queued before it) and how long it took
        (bench/bench_replicas.py)."""
        return self._snapshot_at

    def install(self, snapshot: ReplicaSnapshot) -> int:
        """Into the open replica, or (``to_install``) as its first open; a failed first
        install leaves it waiting for the next one (its number is still 0)."""
        started = time.monotonic()
        try:
            pending = self._pending_open()
            if pending is not None:
                self._server = ReplicaServer(*pending, snapshot=snapshot)
                self._to_install = None
                return snapshot[0]
            return self.server().install(snapshot)
        finally:
            self._install_s = time.monotonic() - started

    def install_seconds(self) -> float:
        """How long the last ``install`` took here, once the snapshot had arrived:
        writing and opening the files (bench/bench_replicas.py splits its phase)."""
        return self._install_s

    def destroy(self) -> None:
        pending = self._pending_open()
        if pending is not None:
            shutil.rmtree(pending[0], ignore_errors=True)
            return
        self.server().destroy()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


class SparePool:
    """Warm spare replica actors, at most one per node, shared by every replicated
    collection of this front whose replicas reserve the same CPUs (a spare is opened
    with its collection's name and config, so any collection can take it). Its
    factories ``join`` it and ``leave`` it; the last to leave ends the spares."""

    def __init__(self, cpus: float) -> None:
        import ray

        self.actor_class = ray.remote(max_restarts=0, max_task_retries=0, num_cpus=cpus)(
            ReplicaActor
        )
        self._spares: dict[str, Any] = {}
        self._unspared: set[str] = set()
        """Nodes whose spare was used (or that never had one): ``refill`` starts one."""
        self._users = 0
        self._lock = threading.Lock()

    @staticmethod
    def join(cpus: float) -> SparePool:
        """The pool for replicas of ``cpus`` (a new one if none is in use)."""
        with _POOLS_LOCK:
            pool = _POOLS.get(cpus) or _POOLS.setdefault(cpus, SparePool(cpus))
            pool._users += 1
            return pool

    def leave(self) -> None:
        with _POOLS_LOCK, self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for actor in self._spares.values():
                _kill(actor)
            self._spares.clear()
            for cpus in [c for c, pool in _POOLS.items() if pool is self]:
                del _POOLS[cpus]

    def take(self, node: str) -> Any | None:
        """The node's spare (None without one); the node gets a new one at ``refill``."""
        with self._lock:
            self._unspared.add(node)
            return self._spares.pop(node, None)

    def refill(self, alive: set[str]) -> None:
        """A spare for every live node that has had a replica and has no spare now."""
        with self._lock:
            for node in [n for n in self._spares if n not in alive]:
                _kill(self._spares.pop(node))
            for node in sorted(self._unspared & alive):
                self._spares[node] = self.start_actor(node)
            self._unspared.clear()

    def start_actor(self, node: str) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options: dict[str, Any] = {}
        if node != LOCAL_NODE:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        actor: Any = self.actor_class.options(**options).remote()
        actor.ready.remote()  # this process finds and connects to the actor now, not at use
        return actor


_POOLS: dict[float, SparePool] = {}
"""The spare pools in use, by the CPUs their actors reserve."""
_POOLS_LOCK = threading.Lock()


class RayReplicaFactory:
    """Replica actors reserving ``cpus`` each, for collection ``name``."""

    def __init__(
        self,
        name: str,
        config: CollectionConfig,
        cpus: float,
        idle_seal_s: float = 0.0,
        single_machine: bool = False,
    ) -> None:
        self.name = name
        self.config = config.model_dump(mode="json")
        self.idle_seal_s = idle_seal_s
        self.single_machine = single_machine
        self._nodes: tuple[float, list[str]] = (0.0, [])
        self._pool: SparePool | None = SparePool.join(cpus)
        self._pool_lock = threading.Lock()
        self.spares_used = 0
        """Replicas started on a warm spare (bench/bench_replicas.py reports it)."""

    def nodes(self) -> list[str]:
        if self.single_machine:
            return [LOCAL_NODE]
        import ray

        at, nodes = self._nodes
        if time.monotonic() - at > NODES_TTL_S:
            found: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
            nodes = sorted(n["NodeID"] for n in found if n["Alive"])
            self._nodes = (time.monotonic(), nodes)
        return nodes

    def spawn(self, folder: Path, node: str, to_install: bool = False) -> RayReplica:
        """The node's warm spare opened on ``folder``, else a new actor."""
        pool = self._live_pool()
        actor = pool.take(node)
        self.spares_used += actor is not None
        actor = actor or pool.start_actor(node)
        actor.open.remote(str(folder), self.name, self.config, self.idle_seal_s, to_install)
        return RayReplica(actor, node, self)

    def refill(self) -> None:
        self._live_pool().refill(set(self.nodes()))

    def close(self) -> None:
        """Leave the spare pool (the replicas are released by their group)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.leave()

    def _live_pool(self) -> SparePool:
        with self._pool_lock:
            if self._pool is None:
                raise ReplicaNotOpen(f"collection {self.name!r} was closed")
            return self._pool


class RayReplica:
    """One replica actor; every call answers through a ``concurrent.futures.Future``."""

    def __init__(self, actor: Any, node: str, factory: RayReplicaFactory) -> None:
        self.actor = actor
        self._node = node
        self._factory = factory

    @property
    def node(self) -> str:
        return self._node

    def apply(self, seq: int, call: ShardCall[T]) -> Future[T | None]:
        return _future(self.actor.apply.remote(seq, call))

    def apply_batch(self, ops: list[tuple[int, ShardCall[Any]]]) -> Future[int]:
        return _future(self.actor.apply_batch.remote(ops))

    def read(self, call: ShardCall[T]) -> Future[T]:
        return _future(self.actor.call.remote(call))

    def applied_seq(self) -> Future[int]:
        return _future(self.actor.applied_seq.remote())

    def snapshot(self) -> Any:
        return self.actor.snapshot.remote()

    def install(self, snapshot: Any) -> Future[int]:
        return _future(self.actor.install.remote(snapshot))

    def destroy(self) -> Future[None]:
        return _future(self.actor.destroy.remote())

    def release(self) -> None:
        import ray

        try:
            ray.get(self.actor.close.remote(), timeout=PING_S)
        finally:
            ray.kill(self.actor, no_restart=True)

    def is_lost(self) -> bool:
        import ray
        from ray.exceptions import ActorUnschedulableError, GetTimeoutError, RayActorError

        if self._node != LOCAL_NODE and self._node not in self._factory.nodes():
            return True
        try:
            ray.get(self.actor.applied_seq.remote(), timeout=PING_S)
        except GetTimeoutError:
            return False  # busy, or its node is dying: asked again at the next round
        except (RayActorError, ActorUnschedulableError):  # died, or its node is gone
            return True
        return False


def _kill(actor: Any) -> None:
    """End a spare, which may have died with its node already."""
    import ray

    with suppress(Exception):
        ray.kill(actor, no_restart=True)


def _future(ref: Any) -> Future[Any]:
    """The reference's answer; a shard's domain error comes out as itself (Ray wraps
    it), so the API maps it as on a single node and the replica set does not take a
    client error for a dead replica."""
    from ray.exceptions import RayTaskError

    out: Future[Any] = Future()

    def settle(done: Future[Any]) -> None:
        error = done.exception()
        if error is None:
            out.set_result(done.result())
        elif isinstance(error, RayTaskError) and isinstance(error.cause, QuiverError):
            out.set_exception(error.cause)
        else:
            out.set_exception(error)

    ref.future().add_done_callback(settle)
    return out
