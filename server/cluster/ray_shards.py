"""Shards as Ray actors (the optional ``cluster`` extra: ``pip install .[cluster]``).

Each shard is a ``ShardServer`` (``server/cluster/shards.py``) running in its own
actor with its own data folder. Actors restart forever (``max_restarts=-1``) and
calls in flight are retried (``max_task_retries=-1``): a restarted actor reopens
its engine from the folder, where every acknowledged write is already committed,
and retried writes are idempotent (upserts and deletes by id, payload updates).

This is the only module that imports Ray; import it only in cluster mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayTaskError

from server.cluster.shards import ShardCall, ShardServer, shard_folder
from server.engine.config import CollectionConfig
from server.errors import QuiverError

SHARD_CPUS = 0.5
"""CPUs Ray reserves per shard actor; a fraction so a 2-CPU test node holds 3 shards."""


def connect(address: str, num_cpus: int = 2) -> None:
    """Join the Ray cluster at ``address``; ``"local"`` starts a Ray instance on this
    machine bound to loopback. The dashboard is never started. A no-op when Ray is
    already initialised."""
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
        ray.init(address=address, include_dashboard=False, log_to_driver=False)


class RayShardGroup:
    """One restartable actor per shard; calls to several shards run in parallel."""

    def __init__(
        self, base: Path, name: str, config: CollectionConfig, *, cpus: float = SHARD_CPUS
    ) -> None:
        actor_class = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=cpus)(ShardServer)
        dump = config.model_dump(mode="json")
        self.actors: list[Any] = [
            actor_class.remote(str(shard_folder(base, i)), name, dump)
            for i in range(config.shard_number)
        ]
        _get([actor.pid.remote() for actor in self.actors])  # wait until every shard opened

    @property
    def shard_count(self) -> int:
        return len(self.actors)

    def call(self, calls: Mapping[int, ShardCall]) -> dict[int, Any]:
        refs = {shard: self.actors[shard].call.remote(c) for shard, c in calls.items()}
        return dict(zip(refs, _get(list(refs.values())), strict=True))

    def wait_idle(self, timeout: float) -> bool:
        return all(_get([actor.wait_idle.remote(timeout) for actor in self.actors]))

    def close(self) -> None:
        """Close every engine, then end the actors for good (no restart)."""
        try:
            _get([actor.close.remote() for actor in self.actors])
        finally:
            for actor in self.actors:
                ray.kill(actor, no_restart=True)


def _get(refs: list[Any]) -> list[Any]:
    """``ray.get``, re-raising a shard's domain error as itself so the API maps it
    to the same HTTP answer as on a single node."""
    try:
        values: list[Any] = ray.get(refs)
    except RayTaskError as error:
        if isinstance(error.cause, QuiverError):
            raise error.cause from None
        raise
    return values
