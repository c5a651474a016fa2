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
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from server.errors import StorageError, reason


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
        """Return once every transaction committed before this call is on disk."""
        with self._cond:
            target = self._committed
            while self._durable < target:
                self.check()
                if self._flushing:
                    self._cond.wait()
                    continue
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
            self.check()

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
