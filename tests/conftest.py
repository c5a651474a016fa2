"""Suite-wide setup, loaded by pytest before any test module imports faiss."""

from __future__ import annotations

import os

import pytest

PROCESS_MARKERS = ("integration", "cluster", "container")

# faiss's OpenMP threads spin while waiting by default; on a 2-core CI machine shared
# with a server process or another job that turns seconds into minutes. The server
# sets the same policy (server/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# A local Ray must stay on 127.0.0.1 (server/cluster/ray_shards.py); Ray reads this once,
# on import, and a test may import Ray (pytest.importorskip) before starting it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# Apps built in-process would each start gRPC on port 6334 (tests run side by side);
# the gRPC tests (tests/grpc/) set a free port of their own.
os.environ.setdefault("QUIVER_GRPC_PORT", "0")
os.environ.setdefault("QUIVER_WARM_UP", "0")  # ~1 s of CPU per server start, many starts here
os.environ.setdefault("QUIVER_WORKERS", "1")  # one process unless a test asks for more


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts another process (a real server, a local Ray, a container) is
    ``slow`` too, so the inner loop, ``pytest -m "not slow"``, leaves every one of them
    to the full run; the in-process tests that take seconds carry ``slow`` themselves."""
    for item in items:
        if any(item.get_closest_marker(name) for name in PROCESS_MARKERS):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("cluster"):
            # one local Ray at a time: under pytest-xdist every Ray test runs on one worker
            item.add_marker(pytest.mark.xdist_group("ray"))
