"""Shards as Ray actors (the optional ``cluster`` extra: ``pip install .[cluster]``).

Each shard is a ``ShardServer`` (``server/cluster/shards.py``) running in its own
actor with its own data folder. Actors restart forever (``max_restarts=-1``) and
calls in flight are retried (``max_task_retries=-1``): a restarted actor reopens
its engine from the folder, where every acknowledged write is already committed,
and retried writes are idempotent (upserts and deletes by id, payload updates).

This is the only module that imports Ray, and only inside its functions: a local Ray
must be told to stay on loopback before Ray is first imported (``connect``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from server.cluster.shards import ShardCall, ShardServer, shard_folder
from server.engine.config import CollectionConfig
from server.errors import QuiverError

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARD_CPUS = 0.5
"""CPUs Ray reserves per shard actor; a fraction so a 2-CPU test node holds 3 shards."""


MULTI_NODE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch for multi-node clusters (off by default on macOS and Windows). While it is
on, Ray replaces 127.0.0.1 with the machine's outward address so that other nodes could
reach it; a local Ray turns it off and keeps every connection on loopback."""


def connect(address: str, num_cpus: int = 2) -> None:
    """Join the Ray cluster at ``address``; ``"local"`` starts a Ray instance on this
    machine bound to loopback. The dashboard is never started. A no-op when Ray is
    already initialised."""
    if address == "local":
        _keep_local_ray_on_loopback()
    import ray

    if ray.is_initialized():
        return
    if address == "local":
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
        )
    else:
        _join(ray, address)


CONNECT_ATTEMPTS = 3
CONNECT_RETRY_S = 5.0


def _join(ray: Any, address: str) -> None:
    """``ray.init`` on an existing cluster, tried ``CONNECT_ATTEMPTS`` times: the Ray
    Client proxy starts a server process per client, and on a busy 2-core machine that
    start timed out ("Starting Ray client server failed") in 2 of 9 container runs right
    after the head came up."""
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            return
        except ConnectionError:
            if attempt == CONNECT_ATTEMPTS:
                raise
            log.warning("Ray connection failed, retrying", extra={"attempt": attempt})
            ray.shutdown()
            time.sleep(CONNECT_RETRY_S)


def _keep_local_ray_on_loopback() -> None:
    """Turn the multi-node switch off for this process and the Ray processes it starts.
    Ray reads it once, on import: if Ray came first, fail instead of silently using the
    machine's outward address."""
    os.environ[MULTI_NODE_SWITCH] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            raise RuntimeError(
                f"Ray was imported before a local Ray was started: set {MULTI_NODE_SWITCH}=0 "
                "before importing ray, or call connect('local') first"
            )


class RayShardGroup:
    """One restartable actor per shard; calls to several shards run in parallel."""

    def __init__(
        self,
        base: Path,
        name: str,
        config: CollectionConfig,
        *,
        cpus: float = SHARD_CPUS,
        idle_seal_s: float = 0.0,
    ) -> None:
        import ray

        actor_class = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=cpus)(ShardServer)
        dump = config.model_dump(mode="json")
        self.actors: list[Any] = [
            actor_class.remote(str(shard_folder(base, i)), name, dump, idle_seal_s)
            for i in range(config.shard_number)
        ]
        _get([actor.pid.remote() for actor in self.actors])  # wait until every shard opened

    @property
    def shard_count(self) -> int:
        return len(self.actors)

    def call(self, calls: Mapping[int, ShardCall[T]]) -> dict[int, T]:
        """Every call submitted before waiting on any, so the shards work in parallel."""
        refs = {shard: self.actors[shard].call.remote(c) for shard, c in calls.items()}
        return dict(zip(refs, _get(list(refs.values())), strict=True))

    def wait_idle(self, timeout: float) -> bool:
        return all(_get([actor.wait_idle.remote(timeout) for actor in self.actors]))

    def close(self) -> None:
        """Close every engine, then end the actors for good (no restart)."""
        import ray

        try:
            _get([actor.close.remote() for actor in self.actors])
        finally:
            for actor in self.actors:
                ray.kill(actor, no_restart=True)


def _get(refs: list[Any]) -> list[Any]:
    """``ray.get``, re-raising a shard's domain error as itself so the API maps it
    to the same HTTP answer as on a single node."""
    import ray
    from ray.exceptions import RayTaskError

    try:
        values: list[Any] = ray.get(refs)
    except RayTaskError as error:
        if isinstance(error.cause, QuiverError):
            raise error.cause from None
        raise
    return values
