"""Suite-wide setup, loaded by pytest before any test module imports faiss."""

from __future__ import annotations

import os

import pytest
from _pytest.nodeid import NodeId

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
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that starts another process (a real server, a local Ray, a container) is
    ``slow`` too, so the inner loop, ``pytest -m "not slow"``, leaves every one of them
    to the full run; the in-process tests that take seconds carry ``slow`` themselves.
    Groups for pytest-xdist are added only where it is installed: the framework venvs
    (tests/frameworks) have no xdist, and there ``xdist_group`` is an unknown marker."""
    grouped = config.pluginmanager.has_plugin("xdist")
    for item in items:
        if any(item.get_closest_marker(name) for name in PROCESS_MARKERS):
            item.add_marker(pytest.mark.slow)
        if not grouped:
            continue
        if item.get_closest_marker("cluster"):
            # one local Ray at a time: under pytest-xdist every Ray test runs on one worker
            item.add_marker(pytest.mark.xdist_group("ray"))
        elif shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    if grouped:  # the serial Ray group first: one worker runs it while the other runs the rest
        items.sort(key=lambda item: not item.get_closest_marker("cluster"))


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("loadgroup", default=False):  # an xdist worker under loadgroup
        config.pluginmanager.register(XdistGroupIds(), "quiver-xdist-group-ids")


class XdistGroupIds:
    """pytest-xdist 3.8 hands a group to one worker by appending ``@group`` to each
    nodeid, through ``item._nodeid``, which pytest 9 no longer reads (a nodeid is now
    ``str(item._id)``): without this, ``xdist_group`` is silently ignored, Ray tests run
    on both workers at once and every module-scoped fixture is set up on each."""

    @pytest.hookimpl(trylast=True)  # after xdist's own hook
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marks = list(item.iter_markers("xdist_group"))
            if not marks or "@" in item.nodeid or not hasattr(item, "_id"):
                continue
            names = {str(mark.args[0] if mark.args else mark.kwargs["name"]) for mark in marks}
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(names))}")


def shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module- or session-scoped fixture of this suite (a server,
    a trained index). ``--dist loadgroup`` hands out ungrouped tests one at a time, so a
    module's tests would be split over both workers and each would set that fixture up
    again; grouped, the module runs on one worker and sets it up once."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        fixture.scope != "function" and fixture.baseid.startswith("tests")
        for fixtures in info.name2fixturedefs.values()
        for fixture in fixtures
    )
