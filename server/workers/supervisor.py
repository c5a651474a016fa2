"""The supervisor of ``QUIVER_WORKERS`` > 1: sockets, workers, restarts, shutdown.

It binds one listening TCP socket per worker slot with ``SO_REUSEPORT`` (the kernel
spreads new connections over them), one Unix socket on which the owner takes the
requests readers forward, and the shared generation; then forks worker 0 (the
owner) and workers 1..N-1 (readers). It opens no engine and starts no thread, so
forking it is safe (it imports the app's modules first, so the workers share them);
each worker builds its own app after the fork. Then it ``exec``s the keeper
(``keeper.py``) in its own process, which drops the imported app: the keeper waits
for the workers, starts one that died again (the sockets stay bound meanwhile, so
connections wait in the backlog instead of being refused) and stops them all on
SIGTERM / SIGINT. Each worker dies with the supervisor (``PR_SET_PDEATHSIG``), so a
``kill -9`` of it takes the whole server down as it would a single process.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.collector import freeze_imported
from server.settings import Settings
from server.workers import keeper as keeper_module
from server.workers.generation import Generation
from server.workers.keeper import STOP_SIGNALS

log = logging.getLogger(__name__)

Run = Callable[[Settings, Any, list[socket.socket]], None]
"""Runs an ASGI app on sockets until SIGTERM (cli.py's uvicorn runner)."""

BACKLOG = 2048
_STARTED_LATER = (
    "anyio._backends._asyncio",  # anyio's event loop backend, the thread pool
    "numpy.random",  # each collection's query samples (training_queries.py)
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.websockets.auto",  # uvicorn looks for a websockets library
)
"""Modules every worker imported at its start, after the fork (~56 of them, uvloop's
among them): imported in the supervisor, they are one shared copy instead of one per
worker (~4.5 MB each)."""
_PR_SET_PDEATHSIG = 1
KEEPER_SCRIPT = keeper_module.__file__


def serve_workers(settings: Settings, run: Run) -> None:
    """Run ``settings.workers`` workers until SIGTERM / SIGINT; returns only if forking
    fails (otherwise this process becomes the keeper and exits with it)."""
    app = _import_app(settings)
    from server.engine.shared_graphs import share_graphs

    share_graphs()  # one copy of each graph in the page cache, not one per worker
    freeze_imported()  # see _import_app
    folder = Path(tempfile.mkdtemp(prefix="quiver-workers-"))
    try:
        Supervisor(settings, run, folder, app).serve()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Supervisor:
    def __init__(self, settings: Settings, run: Run, folder: Path, app: Any) -> None:
        self._settings = settings
        self._run = run
        self._app = app
        self._folder = folder
        self._owner_socket = folder / "owner.sock"
        self._generation = Generation()
        self._tcp = [_listen_tcp(settings.host, settings.port) for _ in range(settings.workers)]
        self._unix = _listen_unix(self._owner_socket)

    def serve(self) -> None:
        """Fork every worker, then ``exec`` the keeper (``keeper.py``) in this process."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the keeper unblocks them
        pids = {self._fork(slot): slot for slot in range(self._settings.workers)}
        log.info("quiver workers started", extra={"workers": self._settings.workers})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        plan = keeper_module.encode_plan(self._plan(pids))
        sys.stdout.flush()
        sys.stderr.flush()
        # -S: no site; -P: the script's folder is not put on sys.path (keeper.py)
        keeper = [sys.executable, "-S", "-P", KEEPER_SCRIPT, plan]
        os.execve(sys.executable, keeper, env)

    def _plan(self, pids: dict[int, int]) -> dict[str, Any]:
        """What the keeper needs to wait for the workers and start one again."""
        settings = self._settings
        overrides = {"host": settings.host, "port": settings.port}
        return {
            "pids": pids,
            "folder": str(self._folder),
            "tcp": [sock.fileno() for sock in self._tcp],
            "unix": self._unix.fileno(),
            "generation": self._generation.fd,
            "overrides": overrides | {"data_dir": str(settings.data_dir)},
            "log_json": settings.log_json,
        }

    def _fork(self, slot: int) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            serve_slot(self._settings, self._run, self._app, slot, self._tcp, self._unix,
                       self._generation, str(self._owner_socket))  # fmt: skip
        except BaseException:
            log.exception("worker failed", extra={"worker": slot})
            code = 1
        finally:
            os._exit(code)


def serve_slot(
    settings: Settings,
    run: Run,
    app: Any,
    slot: int,
    tcp: list[socket.socket],
    unix: socket.socket,
    generation: Generation,
    owner_socket: str,
) -> None:
    """In a worker (forked, or started again by the keeper): die with the supervisor,
    then serve ``app`` (``create_app``'s, not started) as the owner (slot 0) or a reader."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if slot == 0:
        run(settings, owner_app(app, generation), [tcp[0], unix])
    else:
        # the owner's warm-up fills numba's on-disk cache for all; a reader's would be a
        # second ~200 MB compiling child process doing the same work
        reader_settings = settings.model_copy(update={"warm_up": False})
        run(reader_settings, reader_app(app, generation, owner_socket, slot), [tcp[slot]])


def owner_app(app: Any, generation: Generation) -> Any:
    from server.workers.owner import OwnerGate, bump_after_builds

    bump_after_builds(app, generation)
    # inside the app, so gRPC's calls of REST routes (server/grpc/bridge.py) bump it too
    app.add_middleware(OwnerGate, generation=generation)
    return app


def reader_app(app: Any, generation: Generation, owner_socket: str, slot: int) -> Any:
    from server.workers.proxy import OwnerProxy
    from server.workers.reader import ReaderGate

    return ReaderGate(app, generation, OwnerProxy(owner_socket), slot)


def _import_app(settings: Settings) -> Any:
    """Import the app's modules and build the app once, before forking: the workers share
    those pages and start in a fraction of the time (importing faiss, numpy and FastAPI
    is most of a start). Neither starts a Python thread nor opens the data folder (the
    app's lifespan does, in each worker); OpenBLAS's idle pool is fork-safe. Built here,
    the routes, their models and FastAPI's caches are one copy for every worker (~3 MB
    each worker used to build for itself).
    ``freeze_imported()`` afterwards moves those objects out of the collector's reach: a
    worker's first full collection would otherwise write to every one of them and copy
    ~60 MB of the shared pages into each worker."""
    import server.api.http_guard  # uvicorn's httptools protocol, the proxy's parser
    import server.workers.reader  # noqa: F401  (imported for its pages)

    for module in _STARTED_LATER:
        importlib.import_module(module)
    from server.main import create_app

    return create_app(settings)


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
