"""A readers-writer lock: searches run side by side, writes run alone.

faiss releases the GIL, so concurrent searches really do run in parallel;
a plain mutex would serialise them for no reason.

Every query and every write passes through it, and the server's Python work is bound
by one GIL (issue 20: the mixed benchmark's throughput was flat from 8 to 32 clients,
a sleeping thread waited ~0.5 ms for the GIL under load), so its uncommon paths stay off
the common one: taking and leaving it uncontended is a C-level mutex and a counter, with
no ``threading.Condition`` (whose ``wait`` and ``notify_all`` are Python code) and no
generator-based context manager. A py-spy profile of that load found about a tenth of
the GIL's busy time in the lock's ``Condition`` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ReadWriteLock:
    """Writer-preferring: a waiting writer stops new readers from starving it.

    ``with lock.read():`` / ``with lock.write():``; neither side is re-entrant."""

    __slots__ = (
        "_mutex",
        "_readable",
        "_readers",
        "_readers_waiting",
        "_writable",
        "_writer",
        "_writers_waiting",
        "read",
        "write",
    )

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._readable = threading.Condition(self._mutex)
        """Readers wait here for the writers (running and waiting) to be done."""
        self._writable = threading.Condition(self._mutex)
        """Writers wait here for the readers and the running writer to leave."""
        self._readers = 0
        self._readers_waiting = 0
        self._writer = False
        self._writers_waiting = 0
        self.read = _Side(self._enter_read, self._exit_read)
        self.write = _Side(self._enter_write, self._exit_write)

    def _enter_read(self) -> None:
        with self._mutex:
            if self._writer or self._writers_waiting:
                self._readers_waiting += 1
                while self._writer or self._writers_waiting:
                    self._readable.wait()
                self._readers_waiting -= 1
            self._readers += 1

    def _exit_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            if not self._readers and self._writers_waiting:
                self._writable.notify()

    def _enter_write(self) -> None:
        with self._mutex:
            if self._writer or self._readers:
                self._writers_waiting += 1
                while self._writer or self._readers:
                    self._writable.wait()
                self._writers_waiting -= 1
            self._writer = True

    def _exit_write(self) -> None:
        with self._mutex:
            self._writer = False
            if self._writers_waiting:
                self._writable.notify()
            elif self._readers_waiting:
                self._readable.notify_all()


class _Side:
    """``lock.read`` / ``lock.write``: a context manager with no per-use state, made once
    per lock (``with lock.read():`` calls it, and it returns itself)."""

    __slots__ = ("_enter", "_exit")

    def __init__(self, enter: Callable[[], None], exit_: Callable[[], None]) -> None:
        self._enter = enter
        self._exit = exit_

    def __call__(self) -> _Side:
        return self

    def __enter__(self) -> None:
        self._enter()

    def __exit__(self, *exc: object) -> None:
        self._exit()
