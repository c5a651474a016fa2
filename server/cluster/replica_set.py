"""The replicas of one shard: ordered writes, spread reads, and catching a replica up.

**Writes.** Under the set's lock a write takes the next sequence number, is kept in the
operation log (``oplog.py``) and is sent to every ``Active`` replica; sending under the
lock is what gives every replica the same order (a transport runs one replica's calls
in the order sent). The write is acknowledged once ``write_consistency_factor``
replicas have applied it (their engines commit before answering, so it is durable
there), as in Qdrant. A replica whose call fails for a reason other than a client error
(its process or node died, or it saw a sequence gap) is marked ``Dead``: it gets no more
writes and serves no reads until it has caught up.

**Reads** go to one ``Active`` replica, or to as many as the request's ``consistency``
asks (``engine/consistency.py``), keeping the points enough of them returned: those
with the fewest calls still unanswered, the next in turn among equals. A replica still
working through a backlog of writes (``write_consistency_factor`` 1 acknowledges
before every replica applied a write) would make a read wait behind them, as would a
replica busy with a snapshot. A replica that fails a read is marked dead and the read
asks another.

**Catch-up.** A replica that is ``Dead`` (and alive) replays the logged writes after
its own sequence number when the log still reaches back to it; a new one, or one the
log no longer reaches, first gets a snapshot of an active replica, taken after every
write already sent to that one, then the logged writes after the snapshot's sequence.
The last few are sent under the lock together with the switch to ``Active``, so no
write falls between the tail and the replica's first live write. Reads and writes go
on meanwhile. If the log no longer reaches back to the snapshot, the catch-up starts
over with a fresh snapshot.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from server.cluster.oplog import Operation, OpLog
from server.cluster.replica_transport import ReplicaHandle
from server.cluster.shards import ShardCall
from server.engine.consistency import ReadConsistency
from server.errors import QuiverError, ServiceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

READ_TIMEOUT_S = 30.0
"""How long a read waits for one replica before asking another (a replica on a node
that died answers nothing until Ray notices the node is gone)."""
TRANSFER_TIMEOUT_S = 600.0
"""Longest a snapshot install or a replayed tail may take."""
TAIL = 64
"""Logged writes a catch-up sends under the lock, with the switch to ``Active``."""
REPLAY_BATCH = 64
"""Logged writes a replay sends in one call (``ReplicaServer.apply_batch``)."""


class ReplicaState(enum.StrEnum):
    """Qdrant's replica states (those Quiver uses)."""

    ACTIVE = "Active"
    DEAD = "Dead"
    PARTIAL = "Partial"
    """Receiving a transfer: gets no reads."""
    INITIALIZING = "Initializing"
    """Started, its engine not open yet."""


def peer_id(node: str) -> int:
    """Qdrant's numeric peer id for a node: a stable 48-bit hash of its name."""
    return int.from_bytes(hashlib.blake2b(node.encode(), digest_size=6).digest(), "little")


@dataclass(eq=False)
class Replica:
    replica_id: str
    handle: ReplicaHandle
    state: ReplicaState
    pending: int = 0
    """Calls sent to the replica and not answered yet (reads go where this is lowest)."""

    @property
    def node(self) -> str:
        return self.handle.node


class CatchUpRestart(Exception):
    """The log no longer reaches back to the snapshot: take a new one."""


class ReplicaSet:
    """The replicas of shard ``shard``; ``write_factor`` is its write consistency factor,
    ``log`` the shard's (durable) operation log."""

    def __init__(self, shard: int, replicas: list[Replica], write_factor: int, log: OpLog) -> None:
        self.shard = shard
        self.replicas = replicas
        self.write_factor = write_factor
        self.lock = threading.RLock()
        self.log = log
        self.on_dead: Callable[[], None] = lambda: None
        """Called when a replica is marked dead (wakes the healer)."""
        self._turn = itertools.count()
        self._pending_lock = threading.Lock()

    def active(self) -> list[Replica]:
        return [r for r in self.replicas if r.state is ReplicaState.ACTIVE]

    def mark_dead(self, replica: Replica, reason: BaseException | str) -> None:
        with self.lock:
            if replica.state is ReplicaState.DEAD or replica not in self.replicas:
                return
            replica.state = ReplicaState.DEAD
        log.warning(
            "replica marked dead",
            extra={"shard": self.shard, "replica": replica.replica_id, "reason": str(reason)},
        )
        self.on_dead()

    # -- writes ----------------------------------------------------------

    def write(self, call: ShardCall[T], needed: int | None = None) -> Future[T]:
        """Send ``call`` to every active replica; the future answers once ``needed``
        (default ``write_factor``) of them applied it (503 when too few are active).
        The caller syncs the log (``log.sync``) before acknowledging."""
        needed = self.write_factor if needed is None else needed
        with self.lock:
            active = self.active()
            if len(active) < needed:
                raise ServiceUnavailable(
                    f"shard {self.shard} has {len(active)} active replicas, "
                    f"write_consistency_factor is {needed}"
                )
            seq = self.log.append(call)
            replies = [(r, self._track(r, r.handle.apply(seq, call))) for r in active]
        ack: _Ack[T] = _Ack(needed, len(replies), self.shard)
        for replica, reply in replies:
            reply.add_done_callback(functools.partial(self._on_reply, replica, ack))
        return ack

    def _on_reply(self, replica: Replica, ack: _Ack[Any], reply: Future[Any]) -> None:
        error = CancelledError() if reply.cancelled() else reply.exception()
        if error is None or isinstance(error, QuiverError):
            ack.answered(reply)
        else:
            self.mark_dead(replica, error)
            ack.lost()

    # -- reads -----------------------------------------------------------

    def start_read(
        self, call: ShardCall[T], consistency: ReadConsistency | None
    ) -> list[tuple[Replica, Future[T]]]:
        """Send the read to the replicas it needs (the next active one in turn, or as
        many as ``consistency`` asks); ``finish_read`` collects the answers."""
        with self.lock:
            active = self.active()
            wanted = 1 if consistency is None else consistency.replicas_to_ask(len(active))
            if not active or wanted > len(active):
                raise ServiceUnavailable(
                    f"shard {self.shard} has {len(active)} active replicas, the read needs "
                    f"{max(wanted, 1)}"
                )
            first = next(self._turn)
            order = sorted(
                range(len(active)),
                key=lambda i: (active[i].pending, (i - first) % len(active)),
            )
            chosen = [active[i] for i in order[:wanted]]
        return [(replica, self._track(replica, replica.handle.read(call))) for replica in chosen]

    def _track(self, replica: Replica, reply: Future[T]) -> Future[T]:
        """Count ``reply`` as pending on ``replica`` until it is answered."""
        with self._pending_lock:
            replica.pending += 1

        def answered(_: Future[T]) -> None:
            with self._pending_lock:
                replica.pending -= 1

        reply.add_done_callback(answered)
        return reply

    def finish_read(
        self,
        call: ShardCall[T],
        asked: list[tuple[Replica, Future[T]]],
        consistency: ReadConsistency | None,
    ) -> T:
        tried = {replica for replica, _ in asked}
        answers = [self._answer(call, replica, reply, tried) for replica, reply in asked]
        if len(answers) == 1 or consistency is None:
            return answers[0]
        merged: T = merge_answers(answers, consistency.votes_needed(len(answers)))
        return merged

    def _answer(
        self, call: ShardCall[T], replica: Replica, reply: Future[T], tried: set[Replica]
    ) -> T:
        """The replica's answer; if it failed, or is silent, another replica's."""
        while True:
            try:
                return reply.result(timeout=READ_TIMEOUT_S)
            except QuiverError:
                raise
            except FutureTimeout:
                log.warning("replica read timed out", extra={"shard": self.shard})
            except Exception as error:  # the replica is gone: Ray or transport errors
                self.mark_dead(replica, error)
            with self.lock:
                spare = [r for r in self.active() if r not in tried]
            if not spare:
                raise ServiceUnavailable(f"no active replica of shard {self.shard} answered")
            replica = spare[0]
            tried.add(replica)
            reply = self._track(replica, replica.handle.read(call))

    # -- catch-up --------------------------------------------------------

    def source_for(self, target: Replica) -> Replica:
        with self.lock:
            sources = [r for r in self.active() if r is not target]
        if not sources:
            raise ServiceUnavailable(f"shard {self.shard} has no active replica to copy")
        return sources[next(self._turn) % len(sources)]

    def request_snapshot(self, target: Replica) -> tuple[Replica, Any]:
        """Ask an active replica other than ``target`` for a snapshot; it follows every
        write already sent to that replica. Returns the source and the snapshot (the
        transport's, which ``install`` takes)."""
        source = self.source_for(target)
        with self.lock:
            return source, source.handle.snapshot()

    def catch_up(
        self, target: Replica, snapshot: Any = None, phases: dict[str, float] | None = None
    ) -> None:
        """Bring ``target`` (``Partial``) to the shard's latest write and make it active.
        ``snapshot``: one already asked for (a new replica's, asked while it starts).
        ``phases`` gets the seconds each step took. Raises when the source or the
        target fails; the caller marks the target dead."""
        clock = PhaseClock(phases)
        while True:
            try:
                self._catch_up_once(target, snapshot, clock)
                return
            except CatchUpRestart:
                snapshot = None
                log.info("operation log overtaken, new snapshot", extra={"shard": self.shard})

    def _catch_up_once(self, target: Replica, snapshot: Any, clock: PhaseClock) -> None:
        if snapshot is None:  # with one, what the target holds is replaced: not asked
            seq = target.handle.applied_seq().result(timeout=TRANSFER_TIMEOUT_S)
            if seq == 0 or not self._reaches(seq):  # new, or past the log
                snapshot = self.request_snapshot(target)[1]
        if snapshot is not None:
            seq = target.handle.install(snapshot).result(timeout=TRANSFER_TIMEOUT_S)
            clock("install")
        while len(ops := self._since(seq)) > TAIL:
            seq = replay(target, ops)
        clock("replay")
        with self.lock:
            if target.state is not ReplicaState.PARTIAL:
                raise ServiceUnavailable("transfer aborted")
            tail = target.handle.apply_batch(self._since(seq))
            target.state = ReplicaState.ACTIVE
        tail.result(timeout=TRANSFER_TIMEOUT_S)
        clock("tail")
        log.info("replica caught up", extra={"shard": self.shard, "replica": target.replica_id})

    def _reaches(self, seq: int) -> bool:
        with self.lock:
            return self.log.since(seq) is not None

    def _since(self, seq: int) -> list[Operation]:
        with self.lock:
            ops = self.log.since(seq)
        if ops is None:
            raise CatchUpRestart()
        return ops


class PhaseClock:
    """Adds the seconds since the previous mark to ``phases[name]`` (a no-op without
    ``phases``): a transfer's steps, for the logs and bench/bench_replicas.py."""

    def __init__(self, phases: dict[str, float] | None) -> None:
        self.phases = phases
        self._last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        if self.phases is not None:
            self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        self._last = now


def replay(target: Replica, ops: list[Operation]) -> int:
    """Send logged writes in batches of ``REPLAY_BATCH`` (one call each, its bulk
    upserts one engine write: ``ReplicaServer.apply_batch``), every batch sent before
    any is awaited; returns the last one's number. A replayed write that failed with a
    client error failed alike on the replica that first applied it: the batch skips it."""
    replies = [
        target.handle.apply_batch(ops[start : start + REPLAY_BATCH])
        for start in range(0, len(ops), REPLAY_BATCH)
    ]
    for reply in replies:
        reply.result(timeout=TRANSFER_TIMEOUT_S)
    return ops[-1][0]


class _Ack(Future[T]):
    """Answers a write once ``needed`` replicas applied it (with the first answer),
    or fails once too few replicas are left to reach ``needed``."""

    def __init__(self, needed: int, sent: int, shard: int) -> None:
        super().__init__()
        self.needed, self.pending, self.shard = needed, sent, shard
        self.replies: list[Future[T]] = []
        self._lock = threading.Lock()

    def answered(self, reply: Future[T]) -> None:
        with self._lock:
            self.pending -= 1
            self.replies.append(reply)
            if len(self.replies) != self.needed:
                return
        first = self.replies[0]
        error = first.exception()
        if error is not None:
            self.set_exception(error)
        else:
            self.set_result(first.result())

    def lost(self) -> None:
        with self._lock:
            self.pending -= 1
            hopeless = len(self.replies) < self.needed and len(self.replies) + self.pending < (
                self.needed
            )
            if not hopeless or self.done():
                return
        self.set_exception(
            ServiceUnavailable(
                f"a write reached fewer replicas of shard {self.shard} than "
                f"write_consistency_factor ({self.needed})"
            )
        )


def merge_answers(answers: list[Any], votes: int) -> Any:
    """Answers of several replicas to one read: points (search hits per query, or
    records) that at least ``votes`` of them returned, in the first answer's order
    with the others' additions after; any other answer is the first one's."""
    first = answers[0]
    if isinstance(first, list) and first and all(isinstance(q, list) for q in first):
        return [_voted([answer[q] for answer in answers], votes) for q in range(len(first))]
    if isinstance(first, list) and all(hasattr(item, "id") for item in first):
        return _voted(answers, votes)
    return first


def _voted(lists: list[list[Any]], votes: int) -> list[Any]:
    counts = Counter(item.id for items in lists for item in {i.id: i for i in items}.values())
    kept: dict[Any, Any] = {}
    for items in lists:
        for item in items:
            if counts[item.id] >= votes and item.id not in kept:
                kept[item.id] = item
    return list(kept.values())
