"""Where the ``quiver`` program lives: ``client/`` talks HTTP and names the server only to
hand it ``quiver serve``; ``server/`` never imports ``client/``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Module file (relative) -> every module it imports, lazy imports included."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(REPO_ROOT))] = names
    return found


def top_level(name: str) -> str:
    return name.partition(".")[0]


def test_the_server_never_imports_the_client() -> None:
    offenders = {
        path: sorted(n for n in names if top_level(n) == "client")
        for path, names in imported_modules("server").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_client_names_the_server_only_to_hand_it_quiver_serve() -> None:
    uses = {
        path: sorted(n for n in names if top_level(n) == "server")
        for path, names in imported_modules("client").items()
    }
    assert {path: names for path, names in uses.items() if names} == {
        "client/cli.py": ["server.cli"]
    }


def test_client_commands_start_without_loading_the_server() -> None:
    code = (
        "import sys, client.cli; client.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.partition('.')[0] in ('server', 'faiss')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_quiver_help_lists_serve_and_the_client_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "client", "--help"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for command in ("serve", "import", "export", "snapshot", "collections", "bench"):
        assert command in done.stdout


def test_quiver_serve_help_comes_from_the_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "client", "serve", "--help"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage: quiver serve" in done.stdout
    assert "--data-dir" in done.stdout
