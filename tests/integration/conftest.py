"""Fixtures that start real Quiver server processes (``tests/helpers/process.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.process import QuiverProcess, ServerFactory
from tests.helpers.process import server_env as _server_env


@pytest.fixture
def quiver_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Makes ``QuiverProcess`` objects (not started); every one is stopped at teardown."""
    made: list[QuiverProcess] = []

    def make(data_dir: Path) -> QuiverProcess:
        # _server_env is looked up at call time: test_cli_import monkeypatches it here
        server = QuiverProcess(data_dir, tmp_path / "logs" / str(len(made)), _server_env())
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def quiver_process(quiver_factory: ServerFactory, tmp_path: Path) -> QuiverProcess:
    """A started server on ``tmp_path / "data"`` that a test may kill and restart."""
    server = quiver_factory(tmp_path / "data")
    server.start()
    return server


@pytest.fixture
def server_url(quiver_process: QuiverProcess) -> str:
    """The URL of a fresh server with an empty data folder."""
    return quiver_process.url


@pytest.fixture(scope="module")
def module_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server shared by a module's tests (each test uses its own collections)."""
    root = tmp_path_factory.mktemp("quiver")
    server = QuiverProcess(root / "data", root / "logs")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
