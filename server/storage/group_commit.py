"""Group commit: concurrent writes share one fsync (docs/adr/0016-group-commit.md).

With ``synchronous=FULL`` every SQLite commit fsyncs the WAL itself, so writers
wait for the disk one after another (5-10 ms each here) while holding their
collection's write lock. With group commit the point store commits with
``synchronous=NORMAL`` (the commit frames reach the WAL file, no fsync) and each
writer, after releasing its locks, calls ``GroupSync.wait`` before it answers: the
first waiter becomes the leader and fsyncs the WAL file once for every transaction
committed so far; those who committed while it ran wait for the next leader. A
write is answered only after an fsync that began after its commit, exactly the
guarantee ``FULL`` gives, and a failing write still fails alone (each write stays
its own transaction). An fsync error is final: every later wait raises, since
Linux may drop the unwritten pages after reporting it once.

A caller may also take the wait off its thread (:func:`deferred_sync`): the write
returns at once, leaving its store and commit count, and the caller answers when
:meth:`GroupSync.when_durable` calls back. One flusher thread runs the fsyncs those
writes are owed (a thread that waits is still a leader as before), so the guarantee
is the same: the callback comes after an fsync that began after the commit.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from server.errors import StorageError, reason

log = logging.getLogger(__name__)

Durable = Callable[[StorageError | None], None]
"""Called once a deferred write is on disk (None), or with the fsync's error."""
Owed = list[tuple["GroupSync", int]]
"""What deferred writes still wait for: each one's store and commit count."""
Settled = list[tuple[Durable, StorageError | None]]
"""Callbacks an fsync settled, each with its outcome; called once the lock is let go."""

_deferral: ContextVar[Owed | None] = ContextVar("quiver_deferred_sync", default=None)


@contextmanager
def deferred_sync() -> Iterator[Owed]:
    """Writes in this context do not wait for their fsync: each adds (its store's
    ``GroupSync``, its commit count) to the yielded list, and whoever answers them must
    wait for ``when_durable`` first. The direct lane defers so that a write waiting for
    the disk holds neither a CPU token nor a thread (``direct_lane.py``): a slow fsync
    (53-125 ms, a few times a minute here) had every token held by waiting writers, and
    no request, read or write, finished until it ended."""
    owed: Owed = []
    token = _deferral.set(owed)
    try:
        yield owed
    finally:
        _deferral.reset(token)


class GroupSync:
    """Counts committed transactions of one SQLite database and makes them durable
    with as few fsyncs of its WAL file as the concurrency allows."""

    def __init__(self, db_file: Path) -> None:
        self._db_file = db_file
        self._wal_file = db_file.with_name(db_file.name + "-wal")
        self._cond = threading.Condition()
        self._committed = 0
        self._durable = 0
        self._flushing = False
        self._error: StorageError | None = None
        self._callbacks: list[tuple[int, Durable]] = []
        self._queued = False
        """Waiting in the flusher's queue."""
        self.fsyncs = 0
        """How many fsyncs ran (tests and benchmarks read it)."""

    def committed(self) -> None:
        """One more transaction reached the WAL; called right after its COMMIT."""
        with self._cond:
            self._committed += 1

    def check(self) -> None:
        """Refuse to start a write once an fsync failed."""
        if self._error is not None:
            raise self._error

    def wait(self) -> None:
        """Return once every transaction committed before this call is on disk; in a
        :func:`deferred_sync` context, note what is owed and return at once."""
        owed = _deferral.get()
        due: Settled = []
        with self._cond:
            target = self._committed
            if owed is not None:
                self.check()
                owed.append((self, target))
                return
            while self._durable < target:
                self.check()
                if self._flushing:
                    self._cond.wait()
                    continue
                due += self._flush()
            self.check()
        _call(due)

    def when_durable(self, target: int, callback: Durable) -> None:
        """``callback(None)`` once every transaction up to commit ``target`` is on disk,
        ``callback(error)`` if an fsync fails first: from the thread whose fsync settled
        it, or right here if it already is."""
        with self._cond:
            if self._durable < target and self._error is None:
                self._callbacks.append((target, callback))
                if not self._flushing:
                    self._queue()
                return
            error = None if self._durable >= target else self._error
        callback(error)

    def _flush(self) -> Settled:
        """One fsync as the leader, called with the condition held (released while the
        disk works); returns the callbacks it settled, to be called without the lock."""
        self._flushing = True
        upto = self._committed
        self._cond.release()
        try:
            error = self._fsync()
        finally:
            self._cond.acquire()
        self._flushing = False
        if error is None:
            self._durable = max(self._durable, upto)
        else:
            self._error = error
        self._cond.notify_all()
        due: Settled
        if error is not None:
            due, self._callbacks = [(cb, error) for _, cb in self._callbacks], []
            return due
        due = [(cb, None) for t, cb in self._callbacks if t <= self._durable]
        self._callbacks = [(t, cb) for t, cb in self._callbacks if t > self._durable]
        if self._callbacks:  # committed while this fsync ran: the next one covers them
            self._queue()
        return due

    def _queue(self) -> None:
        """Hand this store to the flusher (called with the condition held)."""
        if not self._queued:
            self._queued = True
            _FLUSHER.push(self)

    def _flush_owed(self) -> None:
        """The flusher's turn: fsync for the deferred writes still waiting, unless a
        leader is at it (its ``_flush`` queues this store again if any are left)."""
        with self._cond:
            self._queued = False
            if self._flushing or not self._callbacks:
                return
            due = self._flush()
        _call(due)

    def _fsync(self) -> StorageError | None:
        """fsync the WAL (the file SQLite appends commits to); when it is gone (every
        connection closed and checkpointed) the data is in the database file."""
        try:
            try:
                fd = os.open(self._wal_file, os.O_RDONLY)
            except FileNotFoundError:
                fd = os.open(self._db_file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return StorageError(f"Cannot make writes durable: {reason(exc)}")
        with self._cond:
            self.fsyncs += 1
        return None


def _call(due: Settled) -> None:
    """Each callback in turn; one that fails is logged and the rest still run (the
    flusher thread must outlive a caller's mistake)."""
    for callback, error in due:
        try:
            callback(error)
        except Exception:
            log.exception("durability callback failed")


class _Flusher:
    """The one thread that fsyncs for deferred writes (their requests hold no thread
    that could lead), started with the first; stores queue here while callbacks wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: queue.SimpleQueue[GroupSync] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def push(self, store: GroupSync) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="quiver-fsync", daemon=True)
                self._thread.start()
        self._stores.put(store)

    def forget(self) -> None:
        """In a forked child: the parent's thread is not there."""
        self._lock = threading.Lock()
        self._stores = queue.SimpleQueue()
        self._thread = None

    def _run(self) -> None:
        while True:
            store = self._stores.get()
            try:
                store._flush_owed()
            except Exception:  # the thread serves every store: it must go on
                log.exception("deferred fsync failed")


_FLUSHER = _Flusher()
os.register_at_fork(after_in_child=_FLUSHER.forget)
