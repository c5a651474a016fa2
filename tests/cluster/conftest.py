"""The loopback Ray that the sharded tests' modules share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="package")
def local_ray() -> Iterator[Any]:
    """A Ray instance on loopback with 2 CPUs and no dashboard, for every module here
    that puts shards on a local Ray (test_ray_shards.py, test_sharded_http.py): a start
    costs 10-20 s of both cores on the 2-core CI machine, and their tests share nothing
    through it (each makes its own collections, whose anonymous actors close kills).
    test_ray_replicas.py runs its own two-node cluster, and shuts it down, before this one
    starts: collection order puts that file first. Naming the files the other way round on
    the command line makes its ``ray.init`` find this instance and fail."""
    ray = pytest.importorskip("ray", reason="cluster mode needs Ray: pip install '.[cluster]'")
    from server.cluster.ray_shards import connect

    connect("local", num_cpus=2)
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    yield ray
    ray.shutdown()
