"""Real Quiver server processes for black-box tests.

``QuiverProcess`` runs ``python -m server.cli serve`` on a free 127.0.0.1 port
with a given data folder and can stop it politely (SIGTERM), kill it
(SIGKILL, as a crash would) and start it again on the same folder. The
server's stderr goes to a log file in the test's tmp folder so a failing
start can show it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]


_CLAIMED_PORTS = Path(tempfile.gettempdir()) / (
    f"quiver-test-ports-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"
)
"""One folder per test run, shared by its xdist workers: a file per port handed out."""


def free_port() -> int:
    """A port the kernel just handed out and no other test of this run was given.

    Two xdist workers could otherwise both be given a port in the seconds before either
    server binds it; the second server then fails to bind while its health check is
    answered by the first, and its test talks to another test's server."""
    _CLAIMED_PORTS.mkdir(exist_ok=True)
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        with contextlib.suppress(FileExistsError):
            (_CLAIMED_PORTS / str(port)).touch(exist_ok=False)
            return port


class ServerStartError(RuntimeError):
    """The server exited or never became healthy; the message ends with its log."""


class QuiverProcess:
    """One server data folder; the process behind it can be started, killed and restarted.

    Each start picks a fresh free port, so a restart never waits for the old
    socket; read ``url`` after every start. ``env`` is the server's environment
    (default: this process's, minus any ``QUIVER_*`` setting); ``python`` the interpreter
    that runs it (default: this one; the framework tests' venvs lack Quiver's dependencies).
    """

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.data_dir = data_dir
        self.python = python
        self.log_dir = log_dir
        self.env = server_env() if env is None else env
        self.port = 0
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise RuntimeError("the server is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the server is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """Start the server and wait until ``/healthz`` answers 200; returns the URL."""
        if self.running:
            raise RuntimeError("the server is already running")
        self.starts += 1
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self.log_dir / f"server-{self.starts}.log"
        command = [
            self.python, "-m", "server.cli", "serve",
            "--host", HOST, "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        with self._log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self._wait_healthy(timeout)
        return self.url

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL if the server has not exited after ``timeout``."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=timeout)
        self._proc = None
        return proc.returncode

    def restart_after_kill(self) -> str:
        self.kill()
        return self.start()

    def log_tail(self, chars: int = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "<no server log>"
        return self._log_path.read_text(errors="replace")[-chars:]

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self._proc.poll()
                if code is not None:
                    self._proc = None
                    raise ServerStartError(
                        f"server exited with code {code} during start:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"server not healthy after {timeout:.0f} s:\n{self.log_tail()}")


def server_env() -> dict[str, str]:
    """The caller's environment minus any QUIVER_* setting that would change the server;
    gRPC off (servers started side by side would all claim port 6334); one process
    (``quiver serve`` forks one per CPU by default; the workers' tests ask for two); no
    warm-up child compiling numba kernels beside every server start (``make test`` fills
    numba's cache once before pytest)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIVER_")}
    return env | {"QUIVER_GRPC_PORT": "0", "QUIVER_WORKERS": "1", "QUIVER_WARM_UP": "0"}


ServerFactory = Callable[[Path], QuiverProcess]
"""What the ``quiver_factory`` fixture gives: a data folder -> a server not yet started."""


def result(response: httpx.Response) -> Any:
    """The ``result`` of a 200 answer; any other status fails with the request and body."""
    assert response.status_code == 200, (
        f"{response.request.method} {response.request.url} -> "
        f"{response.status_code}: {response.text[:500]}"
    )
    return response.json()["result"]
