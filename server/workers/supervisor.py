"""The supervisor of ``QUIVER_WORKERS`` > 1: sockets, workers, restarts, shutdown.

It binds one listening TCP socket per worker slot with ``SO_REUSEPORT`` (the kernel
spreads new connections over them), one Unix socket on which the owner takes the
requests readers forward, and the shared generation; then forks worker 0 (the
owner) and workers 1..N-1 (readers). It opens no engine and starts no thread, so
forking it is safe (it imports the app's modules first, so the workers share them);
each worker builds its own app after the fork. A worker that
dies is forked again; the sockets stay bound meanwhile, so connections wait in the
backlog instead of being refused. SIGTERM / SIGINT stop every worker gracefully;
each worker dies with the supervisor (``PR_SET_PDEATHSIG``), so a ``kill -9`` of
the supervisor takes the whole server down as it would a single process.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.settings import Settings
from server.workers.generation import Generation

log = logging.getLogger(__name__)

Run = Callable[[Settings, Any, list[socket.socket]], None]
"""Runs an ASGI app on sockets until SIGTERM (cli.py's uvicorn runner)."""

RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 10.0
QUICK_DEATH_S = 10.0
BACKLOG = 2048
_PR_SET_PDEATHSIG = 1


def serve_workers(settings: Settings, run: Run) -> None:
    """Run ``settings.workers`` workers until SIGTERM / SIGINT; returns after all exit."""
    _import_app()
    from server.engine.shared_graphs import share_graphs

    share_graphs()  # one copy of each graph in the page cache, not one per worker
    gc.freeze()  # see _import_app
    folder = Path(tempfile.mkdtemp(prefix="quiver-workers-"))
    try:
        Supervisor(settings, run, folder / "owner.sock").serve()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Supervisor:
    def __init__(self, settings: Settings, run: Run, owner_socket: Path) -> None:
        self._settings = settings
        self._run = run
        self._owner_socket = owner_socket
        self._generation = Generation()
        self._tcp = [_listen_tcp(settings.host, settings.port) for _ in range(settings.workers)]
        self._unix = _listen_unix(owner_socket)
        self._pids: dict[int, int] = {}
        self._started = [0.0] * settings.workers
        self._delays = [RESTART_DELAY_S / 2] * settings.workers
        self._stopping = False

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in range(self._settings.workers):
            self._start(slot)
        log.info("quiver workers started", extra={"workers": self._settings.workers})
        while self._pids:
            pid, status = os.wait()
            slot = self._pids.pop(pid, -1)
            if slot < 0 or self._stopping:
                continue
            delay = self._restart_delay(slot)
            log.error(
                "worker died; starting it again",
                extra={"worker": slot, "status": status, "delay_s": delay},
            )
            time.sleep(delay)
            if not self._stopping:
                self._start(slot)

    def _restart_delay(self, slot: int) -> float:
        """Twice the last delay when the worker died soon after its start (a data folder it
        cannot open must not become a fork loop), else the shortest."""
        quick = time.monotonic() - self._started[slot] < QUICK_DEATH_S
        doubled = min(self._delays[slot] * 2, MAX_RESTART_DELAY_S)
        self._delays[slot] = doubled if quick else RESTART_DELAY_S
        return self._delays[slot]

    def _stop(self, signum: int, _frame: object) -> None:
        self._stopping = True
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _start(self, slot: int) -> None:
        self._started[slot] = time.monotonic()
        pid = os.fork()
        if pid:
            self._pids[pid] = slot
            return
        code = 0
        try:
            self._worker(slot)
        except BaseException:
            log.exception("worker failed", extra={"worker": slot})
            code = 1
        finally:
            os._exit(code)

    def _worker(self, slot: int) -> None:
        """In the forked child: die with the supervisor, then serve."""
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if slot == 0:
            self._run(self._settings, owner_app(self._settings, self._generation),
                      [self._tcp[0], self._unix])  # fmt: skip
        else:
            app = reader_app(self._settings, self._generation, str(self._owner_socket), slot)
            self._run(self._settings, app, [self._tcp[slot]])


def owner_app(settings: Settings, generation: Generation) -> Any:
    from server.main import create_app
    from server.workers.owner import OwnerGate, bump_after_builds

    app = create_app(settings)
    bump_after_builds(app, generation)
    # inside the app, so gRPC's calls of REST routes (server/grpc/bridge.py) bump it too
    app.add_middleware(OwnerGate, generation=generation)
    return app


def reader_app(settings: Settings, generation: Generation, owner_socket: str, slot: int) -> Any:
    from server.main import create_app
    from server.workers.proxy import OwnerProxy
    from server.workers.reader import ReaderGate

    return ReaderGate(create_app(settings), generation, OwnerProxy(owner_socket), slot)


def _import_app() -> None:
    """Import the app's modules once, before forking: the workers share those pages and
    start in a fraction of the time (importing faiss, numpy and FastAPI is most of a
    start). Importing starts no Python thread; OpenBLAS's idle pool is fork-safe.
    ``gc.freeze()`` afterwards moves those objects out of the collector's reach: a
    worker's first full collection would otherwise write to every one of them and copy
    ~60 MB of the shared pages into each worker."""
    import server.main
    import server.workers.proxy
    import server.workers.reader

    server.workers.proxy.preload()


def _listen_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _listen_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock
