"""A real ``quiver serve`` process started with given ``QUIVER_*`` settings (front-door tests:
timeouts, TLS), yielding its URL once ``/healthz`` answers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.process import HOST, REPO_ROOT, free_port, server_env

STARTUP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def configured_server(
    tmp_path: Path, settings: dict[str, str], *, scheme: str = "http", **client: Any
) -> Iterator[str]:
    """``client`` are httpx.Client options for the health check (``verify``, ``cert``)."""
    port = free_port()
    env = server_env() | settings  # gRPC off unless asked
    command = [
        sys.executable, "-m", "server.cli", "serve",
        "--host", HOST, "--port", str(port), "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"{scheme}://{HOST}:{port}"
    try:
        _wait_healthy(proc, url, log_path, client)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_healthy(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, client: dict[str, Any]
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(timeout=2.0, **client) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')}")
            with contextlib.suppress(httpx.TransportError):
                if http.get(f"{url}/healthz").status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"server not healthy: {log_path.read_text(errors='replace')[-3000:]}")
