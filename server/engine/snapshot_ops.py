"""Snapshots beyond one single-node collection: a collection's shards, sharded
collections, and the whole storage (Qdrant's shard and full-storage snapshots).

* Shard snapshots live in ``<data_dir>/snapshots/<collection>/shards/<i>/``. A
  single-node collection is one shard, 0: its shard snapshot is a collection snapshot.
  A sharded collection's shard ``i`` is written and recovered by that shard's engine.
* A sharded collection's collection snapshot is a bundle of its shards' snapshots with
  its config (``storage/snapshot_bundles.py``). Recovering one verifies the whole bundle first,
  then (re)creates the collection with the bundle's config and recovers each shard:
  each shard is swapped in atomically, the collection as a whole is not. A single-node
  snapshot recovered over a sharded collection replaces it atomically (``Engine.recover``);
  the old shards' folders are then removed at the next start (``clean_orphans``).
* A full-storage snapshot (``<data_dir>/snapshots/*.snapshot``) bundles every
  collection's snapshot. As in Qdrant it is recovered only while the server is not
  serving: ``python -m server.storage_restore ARCHIVE`` before the server starts
  (``restore_storage``).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import ValidationError

from server.engine.config import CollectionConfig
from server.engine.engine import Engine, validate_collection_name
from server.engine.protocols import CollectionHandle
from server.errors import InvalidSnapshot, NotFound, SnapshotNotFound
from server.storage import snapshot_bundles as bundles
from server.storage import snapshots
from server.storage.snapshots import SnapshotDescription

log = logging.getLogger(__name__)

FULL_PREFIX = "full-snapshot"


@runtime_checkable
class ShardSnapshots(Protocol):
    """A collection split into shards that snapshots and recovers each shard
    (``cluster/shards.py``'s ``ShardedCollection``)."""

    def shard_ids(self) -> list[int]: ...

    def write_shard_snapshot(self, shard: int, folder: Path) -> SnapshotDescription: ...

    def recover_shard(self, shard: int, archive: Path, checksum: str | None) -> None: ...


class ShardNotFound(NotFound):
    def __init__(self, shard: int, collection: str) -> None:
        super().__init__(f"Not found: Shard {shard} of collection `{collection}` doesn't exist!")


# -- shard snapshots -----------------------------------------------------------


def _shard(engine: Engine, name: str, shard: int) -> CollectionHandle:
    collection = engine.get(name)
    ids = collection.shard_ids() if isinstance(collection, ShardSnapshots) else [0]
    if shard not in ids:
        raise ShardNotFound(shard, name)
    return collection


def shard_folder(engine: Engine, name: str, shard: int) -> Path:
    return engine.snapshots_root / name / "shards" / str(shard)


def create_shard_snapshot(engine: Engine, name: str, shard: int) -> SnapshotDescription:
    return create_shard_snapshot_in(engine, name, shard, shard_folder(engine, name, shard))


def stream_shard_snapshot(engine: Engine, name: str, shard: int) -> Path:
    """A fresh snapshot of one shard in a temporary folder of its own, for a download
    that is not kept (``GET .../shards/{i}/snapshot``): the caller removes the folder
    (a leftover is removed at the next start)."""
    work = engine.snapshots_root / f".tmp-stream-{uuid.uuid4().hex}"
    try:
        written = create_shard_snapshot_in(engine, name, shard, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work / written.name


def create_shard_snapshot_in(
    engine: Engine, name: str, shard: int, folder: Path
) -> SnapshotDescription:
    collection = _shard(engine, name, shard)
    if isinstance(collection, ShardSnapshots):
        return collection.write_shard_snapshot(shard, folder)
    return collection.write_snapshot(folder)


def list_shard_snapshots(engine: Engine, name: str, shard: int) -> list[SnapshotDescription]:
    _shard(engine, name, shard)
    return snapshots.list_snapshots(shard_folder(engine, name, shard))


def shard_snapshot_path(engine: Engine, name: str, shard: int, snapshot: str) -> Path:
    _shard(engine, name, shard)
    path = shard_folder(engine, name, shard) / snapshots.validate_snapshot_name(snapshot)
    if not path.is_file():
        raise SnapshotNotFound(snapshot, name)
    return path


def delete_shard_snapshot(engine: Engine, name: str, shard: int, snapshot: str) -> bool:
    snapshots.delete_snapshot(shard_snapshot_path(engine, name, shard, snapshot))
    return True


def shard_location(engine: Engine, name: str, shard: int, location: str) -> Path:
    """A recover location for a shard: a bare snapshot name is looked up among the
    shard's own snapshots first, then as for a collection (``resolve_location``)."""
    _shard(engine, name, shard)
    own = shard_folder(engine, name, shard) / location
    if "/" not in location and ":" not in location and own.is_file():
        location = str(own)
    return engine.snapshot_location(name, location)


def recover_shard(
    engine: Engine, name: str, shard: int, archive: Path, checksum: str | None
) -> None:
    """Replace one shard's data; for a single-node collection, the collection's."""
    collection = _shard(engine, name, shard)
    if isinstance(collection, ShardSnapshots):
        collection.recover_shard(shard, archive, checksum)
    else:
        engine.recover(name, archive, checksum)


# -- collection snapshots of any kind ------------------------------------------


def recover_collection(engine: Engine, name: str, archive: Path, checksum: str | None) -> None:
    """Recover collection ``name`` from a single-node snapshot or a sharded bundle."""
    if not bundles.is_bundle(archive):
        engine.recover(name, archive, checksum)
        return
    temp = engine.snapshots_root / f".tmp-{uuid.uuid4().hex}"
    try:
        bundle = bundles.extract_bundle(archive, temp, checksum)
        if bundle.kind != "sharded":
            raise InvalidSnapshot(
                "a full-storage snapshot is recovered only before the server starts "
                "(python -m server.storage_restore), not into one collection"
            )
        _recover_sharded(engine, name, bundle)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _recover_sharded(engine: Engine, name: str, bundle: bundles.Bundle) -> None:
    config = _bundle_config(bundle)
    shards = [f"shards/{i}.snapshot" for i in range(config.shard_number)]
    if sorted(bundle.members) != sorted(shards):
        raise InvalidSnapshot(
            f"the bundle holds {len(bundle.members)} shard snapshots, "
            f"its config names {config.shard_number}"
        )
    validate_collection_name(name)
    if engine.exists(name):
        engine.delete(name)
    engine.create(name, config)
    collection = engine.get(name)
    if not isinstance(collection, ShardSnapshots):
        engine.delete(name)
        raise InvalidSnapshot("this server cannot open sharded collections")
    for shard, member in enumerate(shards):
        collection.recover_shard(shard, bundle.members[member], None)
    log.info("sharded snapshot recovered", extra={"collection": name})


def _bundle_config(bundle: bundles.Bundle) -> CollectionConfig:
    try:
        return CollectionConfig.model_validate(bundle.meta.get("config"))
    except ValidationError as exc:
        raise InvalidSnapshot(f"the bundle's collection config is not valid: {exc}") from exc


# -- full-storage snapshots ----------------------------------------------------


def create_full_snapshot(engine: Engine) -> SnapshotDescription:
    """Every collection's snapshot, taken one after another, in one bundle."""
    work = engine.snapshots_root / f".tmp-{uuid.uuid4().hex}"
    try:
        parts = []
        names = engine.names()
        for name in names:
            written = engine.get(name).write_snapshot(work / name)
            parts.append((f"collections/{name}.snapshot", work / name / written.name))
        meta = {"collections": names}
        return bundles.write_bundle(engine.snapshots_root, FULL_PREFIX, "storage", parts, meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def list_full_snapshots(engine: Engine) -> list[SnapshotDescription]:
    return snapshots.list_snapshots(engine.snapshots_root)


def full_snapshot_path(engine: Engine, snapshot: str) -> Path:
    path = engine.snapshots_root / snapshots.validate_snapshot_name(snapshot)
    if not path.is_file():
        raise SnapshotNotFound(snapshot)
    return path


def delete_full_snapshot(engine: Engine, snapshot: str) -> bool:
    snapshots.delete_snapshot(full_snapshot_path(engine, snapshot))
    return True


def restore_storage(engine: Engine, archive: Path) -> list[str]:
    """Recover every collection of a full-storage snapshot into ``engine`` (replacing
    collections of the same name; others stay); returns the names recovered."""
    temp = engine.snapshots_root / f".tmp-{uuid.uuid4().hex}"
    try:
        bundle = bundles.extract_bundle(archive, temp)
        if bundle.kind != "storage":
            raise InvalidSnapshot("not a full-storage snapshot")
        names = []
        for member, path in bundle.members.items():
            name = member.removeprefix("collections/").removesuffix(snapshots.SUFFIX)
            recover_collection(engine, name, path, None)
            names.append(name)
        return names
    finally:
        shutil.rmtree(temp, ignore_errors=True)
