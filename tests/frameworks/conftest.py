"""A real Quiver server for the framework scenarios (issue 15), run from the main venv.

These tests run in their own virtual environments (``make test-frameworks``: one per
framework, whose dependencies conflict), which hold the framework and pytest but not
Quiver's server dependencies; the server process runs from ``.venv`` instead, or from
the interpreter named by ``FRAMEWORKS_SERVER_PYTHON``. The main suite never collects
this folder (``norecursedirs`` in pyproject.toml).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.process import REPO_ROOT, QuiverProcess

# No framework may phone home from a test: telemetry off before any of them is imported.
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")


def server_python() -> str:
    """The interpreter with Quiver's dependencies: the framework venvs do not have them."""
    default = REPO_ROOT / ".venv" / "bin" / "python"
    return os.environ.get("FRAMEWORKS_SERVER_PYTHON", str(default))


@pytest.fixture(scope="module")
def quiver_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server per test module on 127.0.0.1; each test uses its own collections."""
    root: Path = tmp_path_factory.mktemp("quiver")
    server = QuiverProcess(root / "data", root / "logs", python=server_python())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
