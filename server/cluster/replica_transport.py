"""How a replica set reaches its replicas: the ``ReplicaHandle`` and ``ReplicaFactory``
interfaces, and the in-process transport (tests, and a server without Ray).

A handle sends one replica its calls and answers with futures; calls to one replica
run one at a time in the order they were sent (a Ray actor's calls from one caller do,
and ``LocalReplica`` runs them on one thread), which is what keeps every replica's
writes in sequence order. A replica whose process or node is gone fails its futures
with an error that is not a ``QuiverError`` (``ReplicaLost`` here, Ray's actor errors
there); the replica set marks it dead. ``server/cluster/ray_replicas.py`` is the Ray
transport.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from server.cluster.replica_server import ReplicaServer, ReplicaSnapshot
from server.cluster.shards import ShardCall
from server.engine.config import CollectionConfig

T = TypeVar("T")

LOCAL_NODE = "local"
"""The one node of a transport that has no cluster (in-process, or a local Ray)."""


class ReplicaLost(Exception):
    """The replica's process or node is gone (in-process: it was killed by a test)."""


class ReplicaHandle(Protocol):
    """One replica on one node, reached through some transport."""

    @property
    def node(self) -> str: ...

    def apply(self, seq: int, call: ShardCall[T]) -> Future[T | None]: ...

    def apply_batch(self, ops: list[tuple[int, ShardCall[Any]]]) -> Future[int]:
        """Logged writes in order, in one call; answers the last number applied."""
        ...

    def read(self, call: ShardCall[T]) -> Future[T]: ...

    def applied_seq(self) -> Future[int]:
        """Also the replica's readiness: answered once its engine is open."""
        ...

    def snapshot(self) -> Any:
        """The replica's ``ReplicaSnapshot``, as something ``install`` of another
        replica takes (a Ray object reference: the bytes go node to node)."""
        ...

    def install(self, snapshot: Any) -> Future[int]: ...

    def destroy(self) -> Future[None]:
        """Close the engine and remove the replica's folder (on its own node)."""
        ...

    def release(self) -> None:
        """Close the engine and let the process go; the folder stays."""
        ...

    def is_lost(self) -> bool:
        """True when the replica is gone for good (its node or process died)."""
        ...


class ReplicaFactory(Protocol):
    """Starts replicas on nodes and says which nodes are alive."""

    def nodes(self) -> list[str]: ...

    def spawn(self, folder: Path, node: str, to_install: bool = False) -> ReplicaHandle:
        """A replica opening ``folder`` on ``node`` (created empty if it is new);
        ``to_install``: a new replica that a snapshot ``install`` fills next, whose
        engine may open only then (once, on the installed files)."""
        ...

    def refill(self) -> None:
        """Start what makes the next ``spawn`` fast (the Ray transport's warm spares);
        called when no transfer is running."""
        ...

    def close(self) -> None:
        """Let go of what ``refill`` started."""
        ...


class LocalReplica:
    """A replica in this process, with one thread of its own."""

    def __init__(self, folder: Path, node: str, name: str, config: dict[str, Any]) -> None:
        self._node = node
        self._lost = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replica")
        self._server: Future[ReplicaServer] = self._pool.submit(
            ReplicaServer, str(folder), name, config
        )

    @property
    def node(self) -> str:
        return self._node

    def apply(self, seq: int, call: ShardCall[T]) -> Future[T | None]:
        return self._submit(lambda server: server.apply(seq, call))

    def apply_batch(self, ops: list[tuple[int, ShardCall[Any]]]) -> Future[int]:
        return self._submit(lambda server: server.apply_batch(ops))

    def read(self, call: ShardCall[T]) -> Future[T]:
        return self._submit(lambda server: server.call(call))

    def applied_seq(self) -> Future[int]:
        return self._submit(ReplicaServer.applied_seq)

    def snapshot(self) -> Future[ReplicaSnapshot]:
        return self._submit(ReplicaServer.snapshot)

    def install(self, snapshot: Any) -> Future[int]:
        return self._submit(lambda server: server.install(snapshot.result()))

    def destroy(self) -> Future[None]:
        return self._submit(ReplicaServer.destroy)

    def release(self) -> None:
        if not self._lost:
            self._submit(ReplicaServer.close).result()
        self._pool.shutdown(wait=True)

    def is_lost(self) -> bool:
        return self._lost

    def kill(self) -> None:
        """Tests: the replica dies; calls already queued and later ones fail."""
        self._lost = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, work: Any) -> Future[Any]:
        if self._lost:
            failed: Future[Any] = Future()
            failed.set_exception(ReplicaLost(f"replica on node {self._node} is gone"))
            return failed
        return self._pool.submit(lambda: work(self._server.result()))


class LocalReplicaFactory:
    """Replicas in this process on ``nodes`` named nodes (tests name several, to check
    the spreading; a server without Ray has one)."""

    def __init__(self, name: str, config: CollectionConfig, nodes: int = 1) -> None:
        self.name = name
        self.config = config.model_dump(mode="json")
        self.alive = [LOCAL_NODE] if nodes == 1 else [f"node-{i}" for i in range(nodes)]
        self.spawned: list[LocalReplica] = []
        self._lock = threading.Lock()

    def nodes(self) -> list[str]:
        return list(self.alive)

    def spawn(self, folder: Path, node: str, to_install: bool = False) -> LocalReplica:
        """Opened at once, ``to_install`` or not: the install replaces what it holds."""
        replica = LocalReplica(folder, node, self.name, self.config)
        with self._lock:
            self.spawned.append(replica)
        return replica

    def refill(self) -> None:
        """In-process replicas start at once: nothing to keep warm."""

    def close(self) -> None:
        """Nothing kept warm."""

    def kill_node(self, node: str) -> None:
        """Tests: every replica on ``node`` dies and the node leaves the cluster."""
        self.alive.remove(node)
        for replica in self.spawned:
            if replica.node == node:
                replica.kill()
