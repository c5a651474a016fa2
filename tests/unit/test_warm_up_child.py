"""The warm-up child never outlives the server that started it (a ``kill -9``'d server
used to leave its numba compile running for minutes on a loaded machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.process import REPO_ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

CHILD = (
    "import os, time\n"
    "from server.warm_up_child import _die_with_parent\n"
    "_die_with_parent(os.getppid())\n"
    "time.sleep(60)\n"
)
PARENT = (
    "import subprocess, sys, time\n"
    f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO_ROOT, stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child has asked for its signal by then (it imports nothing heavy)
    assert _alive(child)
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_child_whose_parent_is_already_gone_leaves_without_compiling(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "server.warm_up_child", str(os.getpid() + 10**6)],
        cwd=REPO_ROOT, env=os.environ | {"NUMBA_CACHE_DIR": str(cache)},
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert not any(cache.iterdir())  # nothing compiled: a real warm-up fills this folder
