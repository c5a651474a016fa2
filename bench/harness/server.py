"""Run a real Quiver server as a subprocess for the length of a `with` block.

    with QuiverServer() as server:
        httpx.get(f"{server.url}/healthz")

The server is started with the interpreter running this script
(`python -m server.cli serve --host 127.0.0.1 --port P --data-dir TMP`) from the repository
root, so it measures the working tree. It inherits the environment, so `QUIVER_*` settings
apply (for example `QUIVER_SEARCH_THREADS`; `QUIVER_WORKERS` is 1 unless set there);
`QUIVER_API_KEY` is also sent by `headers()`.
The server always listens on 127.0.0.1 and keeps its data in a fresh temporary folder that
is removed afterwards. Its stdout/stderr go to a log file, whose tail is shown if it fails
and which is copied to `keep_log` when the server stops. `terminate` and `relaunch` stop it
and start a new process on the same data folder, for restart measurements.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server did not start, or died while the benchmark needed it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def headers() -> dict[str, str]:
    """Headers every benchmark request sends: JSON, plus `api-key` when QUIVER_API_KEY is set."""
    result = {"content-type": "application/json"}
    api_key = os.environ.get("QUIVER_API_KEY")
    if api_key:
        result["api-key"] = api_key
    return result


class QuiverServer:
    """A Quiver server process on 127.0.0.1, healthy on entry and stopped on exit."""

    def __init__(
        self,
        port: int | None = None,
        *,
        env: dict[str, str] | None = None,
        keep_log: Path | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._extra_env = env or {}
        self._keep_log = keep_log
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server process's id (for its memory in /proc)."""
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    @property
    def log_path(self) -> Path:
        if self._data_dir is None:
            raise ServerError("the server has not been started")
        return self._data_dir.parent / "server.log"

    def command(self, data_dir: Path) -> list[str]:
        return [
            sys.executable, "-m", "server.cli", "serve",
            "--host", HOST, "--port", str(self.port), "--data-dir", str(data_dir),
        ]  # fmt: skip

    def start(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="quiver-bench-"))
        self._data_dir = workdir / "data"
        self._launch("wb")
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def terminate(self) -> tuple[float, int]:
        """SIGTERM and wait; returns (seconds to exit, exit code). The data folder is kept,
        for `relaunch`."""
        process = self._process
        if process is None:
            raise ServerError("the server is not running")
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(self._stop_timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ServerError(f"no exit {self._stop_timeout_s:.0f}s after SIGTERM") from exc
        self._process = None
        return time.perf_counter() - started, code

    def relaunch(self) -> None:
        """Start a new process on the existing data folder, appending to the same log; the
        caller waits for it (restart timings are what a benchmark measures)."""
        if self._process is not None or self._data_dir is None:
            raise ServerError("relaunch needs a started, then terminated, server")
        self._launch("ab")

    def _launch(self, log_mode: str) -> None:
        if self._data_dir is None:
            raise ServerError("the server has no data folder")
        with self.log_path.open(log_mode) as log:
            self._process = subprocess.Popen(
                self.command(self._data_dir),
                cwd=REPO_ROOT,
                # gRPC off unless asked: benchmarks run side by side would share 6334; one
                # process unless asked (its memory is read from this pid)
                env={"QUIVER_GRPC_PORT": "0", "QUIVER_WORKERS": "1"}
                | dict(os.environ)
                | self._extra_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        """Raise `ServerError` with the log's tail if the process has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise ServerError(
                f"server exited with code {self._process.returncode}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, ServerError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout_s`; returns the exit code."""
        process, self._process = self._process, None
        returncode: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self._stop_timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            returncode = process.returncode
        if self._data_dir is not None:
            if self._keep_log is not None:
                self._keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log_path, self._keep_log)
            shutil.rmtree(self._data_dir.parent, ignore_errors=True)
            self._data_dir = None
        return returncode

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        last_problem = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    response = client.get(f"{self.url}/healthz")
                    if response.status_code == 200:
                        return
                    last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.TransportError as exc:
                    last_problem = repr(exc)
                time.sleep(0.1)
        raise ServerError(
            f"server not healthy after {self._startup_timeout_s:.0f}s ({last_problem})\n"
            f"{self.log_tail()}"
        )

    def __enter__(self) -> QuiverServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
