"""The keeper runs as the supervisor execs it, importing only what it needs (keeper.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from server.workers import supervisor
from server.workers.keeper import decode_plan, encode_plan, remove_folder

LEFT_OUT = {"typing", "shutil", "runpy", "logging", "site", "server", "json", "re", "enum",
            "signal", "contextlib", "functools", "collections"}  # fmt: skip
"""Modules the keeper used to load (or that ``-m`` and ``site`` would): each costs it
private memory for as long as the server runs."""


def test_the_keeper_script_imports_little_and_removes_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "quiver-workers"
    folder.mkdir()
    (folder / "plan.json").write_text("{}")
    plan = {"pids": {}, "folder": str(folder), "log_json": True}
    done = subprocess.run(
        [sys.executable, "-S", "-P", "-X", "importtime", supervisor.KEEPER_SCRIPT,
         encode_plan(plan)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "_signal" in imported, "the keeper sets handlers: the listing must be read right"
    assert not imported & LEFT_OUT
    assert not folder.exists()


def test_remove_folder_removes_files_sockets_and_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "deeper" / "deepest").mkdir(parents=True)
    (folder / "a").write_text("x")
    (folder / "deeper" / "b").write_text("y")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(folder / "owner.sock"))
    finally:
        listener.close()
    remove_folder(str(folder))
    assert not folder.exists()
    remove_folder(str(folder))  # already gone: nothing to do, no error


def test_a_plan_comes_back_as_it_was_encoded() -> None:
    plan = {"pids": {"12": 0, "13": 1}, "folder": "/tmp/q", "tcp": [5, 6], "unix": 7,
            "overrides": {"host": "::1", "port": 6333}, "log_json": False, "slot": 1}  # fmt: skip
    argument = encode_plan(plan)
    assert argument.isalnum() and argument.isascii()  # one plain command-line argument
    assert decode_plan(argument) == plan
