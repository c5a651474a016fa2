"""``quiver serve --host H --port P --data-dir D`` (or ``python -m server.cli serve ...``)
runs the server. The ``quiver`` program itself, with the client commands, is
``client/cli.py``; it hands ``serve`` and its arguments to ``main`` here.

Flags override ``QUIVER_*`` environment variables, which override defaults.
One uvicorn worker: the process owns the data folder and its in-memory index.
"""

from __future__ import annotations

import os

# Before faiss (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of
# spinning. On 2 cores the spinning stole the CPU from the event loop and the next
# request; batch search over HTTP measured 2,900 -> 4,150 queries/s with PASSIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn


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


def _serve(args: argparse.Namespace) -> None:
    from server.logs import configure_logging
    from server.main import create_app
    from server.settings import Settings

    overrides = {
        key: value
        for key, value in {"host": args.host, "port": args.port, "data_dir": args.data_dir}.items()
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_json)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    _GracefulServer(config).run()


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
