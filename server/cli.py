"""``quiver serve --host H --port P --data-dir D`` (or ``python -m server.cli serve ...``)
runs the server. The ``quiver`` program itself, with the client commands, is
``client/cli.py``; it hands ``serve`` and its arguments to ``main`` here.

Flags override ``QUIVER_*`` environment variables, which override defaults.
One uvicorn worker: the process owns the data folder and its in-memory index.
With ``QUIVER_WORKERS`` > 1, read workers beside it (``server/workers/``, ADR 0013).
"""

from __future__ import annotations

import os

# Before faiss (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of
# spinning. On 2 cores the spinning stole the CPU from the event loop and the next
# request; batch search over HTTP measured 2,900 -> 4,150 queries/s with PASSIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import logging
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from server.settings import Settings


def main(argv: list[str] | None = None) -> None:
    """Parse ``serve [flags]`` and run the server until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="quiver", description="Quiver vector search server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the HTTP server", description="Run the Quiver HTTP server."
    )
    serve.add_argument("--host", help="bind address (QUIVER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (QUIVER_PORT, default 6333)")
    serve.add_argument(
        "--data-dir", type=Path, help="data folder (QUIVER_DATA_DIR, default ./data)"
    )
    _serve(parser.parse_args(argv))


def set_up_process(settings: Settings) -> None:
    """What a server process does before anything else, ``quiver serve`` and a worker
    the keeper starts again alike (``workers/spawn.py``): its logging, and glibc's arena
    cap and thresholds, which must come before any thread (``native_memory.py``)."""
    from server.engine.native_memory import limit_heap_retention
    from server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    limit_heap_retention()


def _serve(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from server.deferred_packages import defer
    from server.settings import Settings

    overrides = {
        key: value
        for key, value in {"host": args.host, "port": args.port, "data_dir": args.data_dir}.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        sys.exit(f"quiver serve: refusing to start, bad configuration:\n{exc}")
    set_up_process(settings)
    if settings.workers > 1:  # multi-process serving (ADR 0013, server/workers/)
        from server.workers.supervisor import serve_workers

        serve_workers(settings, _run)  # forks before the app (and its threads) exist
        return
    # one process: faiss loads with the first index, not the app (deferred_packages.py);
    # workers keep loading it before the fork, so they share its pages
    defer("faiss")
    from server.collector import freeze_imported
    from server.main import create_app

    app = create_app(settings)
    freeze_imported()  # before the engine exists: its objects stay collectable
    _run(settings, app, None)


def _run(settings: Settings, app: Any, sockets: list[socket.socket] | None) -> None:
    """Serve ``app`` with uvicorn until SIGTERM: on host / port, or on ``sockets``
    already bound (a worker of ``QUIVER_WORKERS`` > 1)."""
    from server.api.http_guard import ConnectionLimits, guarded_protocol

    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(limits),
        limit_concurrency=settings.max_connections + 1,  # uvicorn counts this one too
        **_tls_options(settings),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    if settings.warm_up:
        threading.Thread(target=_compile_kernels, name="quiver-warm-up", daemon=True).start()
    _GracefulServer(config).run(sockets)


def _compile_kernels() -> None:
    """Fill numba's on-disk cache with the kernels (``index/compiled.py``: the recommend
    walk's, the grouped fill's) before the first query needs them, in a child process: a
    cold compile takes ~10 s, and loading numba and the compiled code into the server
    would cost it ~170 MB that a server without such queries never needs (issue 24). The
    first such query then loads the cached code (~1.5 s) instead of compiling it. The
    child dies with this process (``server/warm_up_child.py``)."""
    command = [sys.executable, "-m", "server.warm_up_child", str(os.getpid())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        done = subprocess.CompletedProcess(command, -1, b"", str(exc).encode())
    if done.returncode != 0:  # a failed warm-up only means the first query compiles them
        logging.getLogger(__name__).warning(
            "numba kernel warm-up failed: %s", done.stderr.decode(errors="replace")[-2000:]
        )


def _tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options: HTTPS with ``QUIVER_TLS_CERT``; client certificates signed by
    ``QUIVER_TLS_CA_CERT`` required when it is set. A bad file fails the start."""
    if settings.tls_cert is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key),
    }
    if settings.tls_ca_cert is not None:
        options |= {"ssl_ca_certs": str(settings.tls_ca_cert), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its clean shutdown, so the process would end *by*
    the signal (status -15); orchestrators expect a graceful stop to exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


if __name__ == "__main__":
    main()
