"""The catalog: which implementation a collection name opens.

A collection created with ``shard_number > 1`` is a ``ShardedCollection``
(``server/cluster/shards.py``): its shards run in this process, or as Ray actors when
the server has a ``ray_address`` (cluster mode). Every other collection is a
single-node ``Collection``. The engine keeps the collection folders and asks the
catalog's ``ShardCatalog`` (an ``engine.protocols.ShardedOpener``) about each one; it
lives here, above both ``engine/`` and ``cluster/``, because it imports both while the
cluster imports the engine (a shard is a plain engine), so neither package imports the
other's way back.

Folder layout (``key`` is a fresh id per created collection, so a collection created
again under an old name never finds the old shards' data)::

    <data_dir>/collections/<name>/sharded.json    config and shard key (the marker)
    <data_dir>/shards/<key>/<i>/                  shard i's engine folder
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from server.cluster.ray_replicas import RayReplicaFactory
from server.cluster.ray_shards import RayShardGroup, connect
from server.cluster.replica_transport import LocalReplicaFactory, ReplicaFactory
from server.cluster.replicated import Membership, ReplicatedShardGroup
from server.cluster.shards import LocalShardGroup, ShardedCollection
from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.limits import EngineLimits
from server.engine.protocols import CollectionHandle, ShardedOpener
from server.storage.segment_store import fsync_dir

log = logging.getLogger(__name__)

SHARDED_FILE = "sharded.json"


def open_engine(
    data_dir: Path,
    idle_seal_s: float = 0.0,
    *,
    ray_address: str | None = None,
    ray_shard_cpus: float = 0.5,
    limits: EngineLimits | None = None,
) -> Engine:
    """The server's engine: every collection in ``data_dir``, sharded ones included.
    ``ray_address`` (cluster mode) runs shards as Ray actors, each reserving
    ``ray_shard_cpus``; it is joined now, so a bad address fails at start. ``limits``:
    the collection cap and the per-request result budget (``QUIVER_MAX_*``)."""
    if ray_address is not None:
        connect(ray_address)
    shards = ShardCatalog(data_dir / "shards", ray_address, ray_shard_cpus, idle_seal_s)
    return Engine(data_dir, idle_seal_s, sharded=shards, limits=limits)


class ShardCatalog:
    """Opens sharded collections: a collection folder with a marker file, or a new
    collection whose config asks for more than one shard."""

    def __init__(
        self, shards_root: Path, ray_address: str | None, shard_cpus: float, idle_seal_s: float
    ) -> None:
        self.shards_root = shards_root
        self.ray_address = ray_address
        self.shard_cpus = shard_cpus
        self.idle_seal_s = idle_seal_s

    def create(self, name: str, temp: Path, config: CollectionConfig) -> CollectionHandle | None:
        """Shards first (under a fresh key), then the marker; the engine renames ``temp``
        into place, so a crash in between leaves only shard folders that no marker
        names, removed at start."""
        if config.shard_number <= 1 and config.replication_factor <= 1:
            return None
        key = uuid.uuid4().hex
        sharded = self._open(name, key, config, temp.parent / name)
        group = sharded.group
        replicas = group.membership() if isinstance(group, ReplicatedShardGroup) else None
        try:
            _write_marker(temp, key, config, replicas)
        except BaseException:
            sharded.drop()
            raise
        return sharded

    def open(self, name: str, folder: Path) -> CollectionHandle | None:
        marker = folder / SHARDED_FILE
        if not marker.exists():
            return None
        raw = json.loads(marker.read_text())
        config = CollectionConfig.model_validate(raw["config"])
        return self._open(name, raw["key"], config, folder, raw.get("replicas"))

    def clean_orphans(self, collections_root: Path) -> None:
        """Shard folders on this machine that no sharded collection names (a create or
        delete cut short). Shards on other Ray nodes are not reachable from here."""
        if not self.shards_root.is_dir():
            return
        keys = {_marker_key(p) for p in collections_root.iterdir() if (p / SHARDED_FILE).is_file()}
        for folder in self.shards_root.iterdir():
            if folder.name not in keys:
                log.warning("removing orphan shard folder", extra={"folder": str(folder)})
                shutil.rmtree(folder, ignore_errors=True)

    def _open(
        self,
        name: str,
        key: str,
        config: CollectionConfig,
        folder: Path,
        replicas: Membership | None = None,
    ) -> ShardedCollection:
        base = self.shards_root / key
        sharded = open_sharded_collection(
            base, name, config, self.ray_address, self.shard_cpus, self.idle_seal_s, replicas
        )
        group = sharded.group
        membership = group.membership if isinstance(group, ReplicatedShardGroup) else None

        def persist(updated: CollectionConfig) -> None:
            _write_marker(folder, key, updated, membership() if membership else None)

        sharded.on_config = persist
        if isinstance(group, ReplicatedShardGroup):
            group.on_membership = lambda: persist(sharded.config)
        sharded.on_drop = lambda: shutil.rmtree(base, ignore_errors=True)
        return sharded


def open_sharded_collection(
    base: Path,
    name: str,
    config: CollectionConfig,
    ray_address: str | None,
    shard_cpus: float = 0.5,
    idle_seal_s: float = 0.0,
    replicas: Membership | None = None,
) -> ShardedCollection:
    """A sharded collection with its shards under folder ``base``: in this process when
    ``ray_address`` is None, else Ray actors (``"local"``: a loopback Ray on this
    machine; Ray itself is imported only then, so the single-node path never needs it).
    Created on first open, reopened from the shard folders afterwards. ``idle_seal_s``
    is each shard engine's (``Engine``). With ``replication_factor`` > 1 each shard is a
    set of replicas (``server/cluster/replicated.py``), reopened from ``replicas``, the
    membership the marker recorded."""
    if config.replication_factor > 1:
        factory = _replica_factory(name, config, ray_address, shard_cpus, idle_seal_s)
        return ShardedCollection(
            name, config, ReplicatedShardGroup(base, config, factory, replicas)
        )
    if ray_address is None:
        return ShardedCollection(name, config, LocalShardGroup(base, name, config, idle_seal_s))
    connect(ray_address)
    group = RayShardGroup(base, name, config, cpus=shard_cpus, idle_seal_s=idle_seal_s)
    return ShardedCollection(name, config, group)


def _replica_factory(
    name: str,
    config: CollectionConfig,
    ray_address: str | None,
    shard_cpus: float,
    idle_seal_s: float,
) -> ReplicaFactory:
    if ray_address is None:
        return LocalReplicaFactory(name, config)
    connect(ray_address)
    single = ray_address == "local"
    return RayReplicaFactory(name, config, shard_cpus, idle_seal_s, single_machine=single)


def _marker_key(folder: Path) -> str:
    key: str = json.loads((folder / SHARDED_FILE).read_text())["key"]
    return key


def _write_marker(
    folder: Path, key: str, config: CollectionConfig, replicas: Membership | None = None
) -> None:
    """A sharded collection's config and shard key (and, replicated, which replica is
    on which node), replaced atomically."""
    temp = folder / f".{SHARDED_FILE}.tmp"
    raw: dict[str, object] = {"key": key, "config": config.model_dump(mode="json")}
    if replicas is not None:
        raw["replicas"] = replicas
    with open(temp, "w") as out:
        json.dump(raw, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, folder / SHARDED_FILE)
    fsync_dir(folder)


def _check_shard_catalog(catalog: ShardCatalog) -> ShardedOpener:
    return catalog  # mypy checks ShardCatalog against the engine's opener interface here
