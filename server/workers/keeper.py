"""The supervisor after its workers are forked: a small process that only waits.

``supervisor.py`` imports the app, binds the sockets, forks every worker and then
``exec``s this module in its own process (same pid: the workers stay its children and
still die with it through ``PR_SET_PDEATHSIG``). Had the supervisor kept the imported app
after forking, it would have held its own copy of every inherited page that both workers
later wrote to (reference counts, the interpreter's inline caches): ~13 MB no request
ever used. This module imports only modules built into the interpreter (``os``,
``_signal``, ``time``, ``marshal``; not ``logging``, ``typing``, ``shutil``,
``contextlib``, ``signal``'s enum wrappers or ``json``, whose decoder brings ``re``:
~2.2 MB together) and runs as a script without ``site`` (``python -S -P keeper.py``;
``-m`` would load ``runpy`` and its imports, ~0.9 MB): ~3 MB of private memory. The plan
comes as ``marshal`` bytes in hex (:func:`encode_plan`), which the same interpreter reads
back with no import.

A worker that dies is started again, after doubling delays (up to 10 s) when it keeps
dying right after its start, by ``exec``ing ``server.workers.spawn`` on the same
sockets and generation (passed as inherited file descriptors): such a worker imports
the app itself, so it shares no imported pages with the others (restarts are rare).
SIGTERM / SIGINT stop every worker gracefully; the supervisor's temporary folder (the
owner's Unix socket) is removed once all have exited.

    python -S -P server/workers/keeper.py '<plan, encode_plan>'
"""

from __future__ import annotations

import marshal
import os
import sys
import time

TYPE_CHECKING = False  # not typing's: importing typing costs the keeper ~0.9 MB
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import Any
else:  # the same functions and numbers without the enums (enum, functools: ~0.8 MB)
    import _signal as signal

LOGGER = "server.workers.supervisor"

RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 10.0
QUICK_DEATH_S = 10.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
"""Blocked by the supervisor before its ``exec`` (a signal mask survives it, and a signal
sent meanwhile stays pending), unblocked here once the handlers are in place."""


def encode_plan(plan: dict[str, Any]) -> str:
    """A plan (str, int, bool, list and dict values) as one command-line argument."""
    return marshal.dumps(plan).hex()


def decode_plan(argument: str) -> dict[str, Any]:
    plan: dict[str, Any] = marshal.loads(bytes.fromhex(argument))
    return plan


def keep(plan: dict[str, Any]) -> None:
    """Supervise the workers ``plan["pids"]`` names (pid -> slot) until they have exited."""
    keeper = Keeper(plan)
    signal.signal(signal.SIGTERM, keeper.stop)
    signal.signal(signal.SIGINT, keeper.stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        keeper.wait()
    finally:
        remove_folder(plan["folder"])


def remove_folder(folder: str) -> None:
    """``shutil.rmtree(folder, ignore_errors=True)`` without importing shutil (~0.6 MB
    with what it imports) for a folder of a socket or two."""
    for parent, folders, files in os.walk(folder, topdown=False):
        for name in files:
            _ignoring_os_errors(os.unlink, os.path.join(parent, name))
        for name in folders:
            _ignoring_os_errors(os.rmdir, os.path.join(parent, name))
    _ignoring_os_errors(os.rmdir, folder)


def _ignoring_os_errors(call: Callable[..., None], *args: object) -> None:
    """``with contextlib.suppress(OSError): call(*args)`` without importing contextlib."""
    try:  # noqa: SIM105
        call(*args)
    except OSError:
        pass


class Keeper:
    def __init__(self, plan: dict[str, Any]) -> None:
        self._plan = plan
        self._pids = {int(pid): slot for pid, slot in plan["pids"].items()}
        started = time.monotonic()
        self._started = dict.fromkeys(self._pids.values(), started)
        self._delays = dict.fromkeys(self._pids.values(), RESTART_DELAY_S / 2)
        self._stopping = False

    def wait(self) -> None:
        while self._pids:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return
            slot = self._pids.pop(pid, -1)
            if slot < 0 or self._stopping:
                continue
            delay = self._restart_delay(slot)
            _error(self._plan["log_json"], "worker died; starting it again",
                   worker=slot, status=status, delay_s=delay)  # fmt: skip
            time.sleep(delay)
            if not self._stopping:
                self._start(slot)

    def stop(self, signum: int, _frame: object) -> None:
        self._stopping = True
        for pid in list(self._pids):
            _ignoring_os_errors(os.kill, pid, signal.SIGTERM)  # one that exited already

    def _restart_delay(self, slot: int) -> float:
        """Twice the last delay when the worker died soon after its start (a data folder it
        cannot open must not become a fork loop), else the shortest."""
        quick = time.monotonic() - self._started[slot] < QUICK_DEATH_S
        doubled = min(self._delays[slot] * 2, MAX_RESTART_DELAY_S)
        self._delays[slot] = doubled if quick else RESTART_DELAY_S
        return self._delays[slot]

    def _start(self, slot: int) -> None:
        self._started[slot] = time.monotonic()
        worker = encode_plan(self._plan | {"slot": slot})
        pid = os.fork()
        if pid:
            self._pids[pid] = slot
            return
        try:
            os.execv(sys.executable, [sys.executable, "-m", "server.workers.spawn", worker])
        finally:
            os._exit(1)


def _error(as_json: bool, message: str, **fields: object) -> None:
    """One log line in ``server.logs``' shape (JSON or text, as configured), written
    without the logging package (~1 MB for the keeper's one kind of line)."""
    now = time.time()
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    if as_json:
        import json  # only once a worker died (see the module docstring)

        entry = {"ts": when, "level": "error", "logger": LOGGER, "msg": message}
        line = json.dumps(entry | fields)
    else:
        line = f"{when} ERROR {LOGGER} {message} {fields}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    keep(decode_plan(sys.argv[1]))
