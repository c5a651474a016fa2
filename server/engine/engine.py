"""The engine: every collection in the data folder, opened at start.

Folder layout::

    <data_dir>/collections/<name>/points.sqlite   one folder per collection
    <data_dir>/collections/.tmp-*                 half-created, removed at start
    <data_dir>/collections/.trash-*               half-deleted, removed at start
    <data_dir>/snapshots/<name>/*.snapshot        snapshot archives (storage/snapshots.py)
    <data_dir>/collections/<name>/sharded.json    a sharded collection (shard_number > 1):
    <data_dir>/shards/<key>/<i>/                  its config and key, and shard i's engine

A collection appears atomically: it is built in a temporary folder and renamed
into place; deletion renames it away first, so a crash never leaves half of one.
Recovering a snapshot unpacks and verifies it in a temporary folder, opens it there,
then swaps it in for the collection of that name (if any) under the engine lock.

A collection created with ``shard_number > 1`` is a ``ShardedCollection``
(``server/cluster/shards.py``): its shards run in this process, or as Ray actors when
the engine has a ``ray_address`` (cluster mode). The engine knows it only by its
marker file; the shards keep the points and run their own build workers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.engine.build_worker import BuildWorker
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.errors import (
    CollectionAlreadyExists,
    CollectionNotFound,
    InvalidCollectionName,
    InvalidSnapshot,
    QuiverError,
    SnapshotNotFound,
    UnsupportedFeature,
)
from server.storage import snapshots
from server.storage.permissions import make_private
from server.storage.segment_store import fsync_dir
from server.storage.snapshots import SnapshotDescription

if TYPE_CHECKING:
    from server.cluster.shards import AnyCollection, ShardedCollection

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}$")
OLD_JOBS_WAIT_S = 30.0
"""How long a recovery waits for a cancelled build of the collection it replaces."""
SHARDED_FILE = "sharded.json"


def validate_collection_name(name: str) -> str:
    """Names become folder names, so nothing that could escape the data folder passes."""
    if not _NAME.fullmatch(name):
        raise InvalidCollectionName(
            name,
            "use 1-255 letters, digits, '_', '-' or '.', not starting with '.'",
        )
    return name


class Engine:
    """Owns the data folder; one process per folder.

    ``ray_address`` (cluster mode) runs the shards of sharded collections as Ray actors
    (each reserving ``ray_shard_cpus``);
    ``split_shards=False`` is for the engine inside a shard, which stores its part of a
    sharded collection as a plain one."""

    def __init__(
        self,
        data_dir: Path,
        idle_seal_s: float = 0.0,
        *,
        ray_address: str | None = None,
        ray_shard_cpus: float = 0.5,
        split_shards: bool = True,
    ) -> None:
        make_private(data_dir)
        self.root = data_dir / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshots_root = data_dir / "snapshots"
        self.shards_root = data_dir / "shards"
        self.ray_address = ray_address
        self.ray_shard_cpus = ray_shard_cpus
        self.split_shards = split_shards
        self._lock = threading.Lock()
        self._collections: dict[str, AnyCollection] = {}
        self.idle_seal_s = idle_seal_s
        self.worker = BuildWorker(idle_seal_s)
        self._clean_leftovers()
        if ray_address is not None:
            from server.cluster.ray_shards import connect

            connect(ray_address)  # fail at start, not at the first sharded request
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                self._collections[path.name] = self._open(path.name, path)
        self._clean_orphan_shards()
        self.worker.start()
        for collection in self._collections.values():
            if isinstance(collection, Collection):
                self.worker.attach(collection)
        log.info("engine opened", extra={"collections": len(self._collections)})

    def close(self) -> None:
        self.worker.stop()
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            self._collections.clear()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._collections

    def get(self, name: str) -> AnyCollection:
        with self._lock:
            collection = self._collections.get(name)
        if collection is None:
            raise CollectionNotFound(name)
        return collection

    def create(self, name: str, config: CollectionConfig) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._collections:
                raise CollectionAlreadyExists(name)
            if self.split_shards and config.shard_number > 1:
                self._collections[name] = self._create_sharded(name, config)
                return
            temp = self.root / f".tmp-{uuid.uuid4().hex}"
            temp.mkdir()
            try:
                collection = Collection.create(name, temp, config)
                collection.close()
                final = self.root / name
                os.replace(temp, final)
                fsync_dir(self.root)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
            opened = self._collections[name] = Collection.open(name, final)
        self.worker.attach(opened)

    def delete(self, name: str) -> bool:
        with self._lock:
            collection = self._collections.pop(name, None)
            if collection is None:
                return False
            if isinstance(collection, Collection):
                self.worker.detach(name)
                collection.close()
            else:
                collection.drop()
            trash = self.root / f".trash-{uuid.uuid4().hex}"
            os.replace(self.root / name, trash)
            fsync_dir(self.root)
        if (trash / SHARDED_FILE).is_file():
            shutil.rmtree(self.shards_root / _marker_key(trash), ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def config_changed(self, collection: AnyCollection) -> None:
        """After a config update: queue the rebuilds it needs (shards queue their own)."""
        if isinstance(collection, Collection):
            self.worker.config_changed(collection)

    # -- jobs --------------------------------------------------------------

    def jobs_for(self, name: str) -> list[dict[str, Any]]:
        """A collection's build jobs in wire form; a sharded one's carry their shard."""
        collection = self.get(name)
        if isinstance(collection, Collection):
            return [job.to_wire() for job in self.worker.jobs_for(name)]
        return collection.jobs()

    def job(self, job_id: str, cancel: bool = False) -> dict[str, Any] | None:
        """The job with this id, here or in a shard of a sharded collection; with
        ``cancel``, cancelled first. None when no one knows it."""
        job = self.worker.cancel(job_id) if cancel else self.worker.get(job_id)
        if job is not None:
            return job.to_wire()
        for sharded in self._sharded():
            found = sharded.job(job_id, cancel)
            if found is not None:
                return found
        return None

    def _sharded(self) -> list[ShardedCollection]:
        with self._lock:
            return [c for c in self._collections.values() if not isinstance(c, Collection)]

    # -- sharded collections ------------------------------------------------

    def _open(self, name: str, path: Path) -> AnyCollection:
        marker = path / SHARDED_FILE
        if not marker.exists():
            return Collection.open(name, path)
        raw = json.loads(marker.read_text())
        return self._open_sharded(name, raw["key"], CollectionConfig.model_validate(raw["config"]))

    def _open_sharded(self, name: str, key: str, config: CollectionConfig) -> ShardedCollection:
        from server.cluster.shards import open_sharded_collection

        sharded = open_sharded_collection(
            self.shards_root / key,
            name,
            config,
            self.ray_address,
            self.ray_shard_cpus,
            self.idle_seal_s,
        )
        sharded.on_config = lambda updated: _write_marker(self.root / name, key, updated)
        return sharded

    def _create_sharded(self, name: str, config: CollectionConfig) -> ShardedCollection:
        """Shards first (under a fresh key), then the marker appears atomically; a crash
        in between leaves only shard folders that no marker names, removed at start."""
        key = uuid.uuid4().hex
        sharded = self._open_sharded(name, key, config)
        temp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            temp.mkdir()
            _write_marker(temp, key, config)
            os.replace(temp, self.root / name)
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            sharded.drop()
            raise
        return sharded

    def _clean_orphan_shards(self) -> None:
        """Shard folders on this machine that no sharded collection names (a create or
        delete cut short). Shards on other Ray nodes are not reachable from here."""
        if not self.shards_root.is_dir():
            return
        keys = {_marker_key(p) for p in self.root.iterdir() if (p / SHARDED_FILE).is_file()}
        for folder in self.shards_root.iterdir():
            if folder.name not in keys:
                log.warning("removing orphan shard folder", extra={"folder": str(folder)})
                shutil.rmtree(folder, ignore_errors=True)

    # -- snapshots -------------------------------------------------------

    def create_snapshot(self, name: str) -> SnapshotDescription:
        return self._single(name).write_snapshot(self._snapshot_folder(name))

    def list_snapshots(self, name: str) -> list[SnapshotDescription]:
        self.get(name)
        return snapshots.list_snapshots(self._snapshot_folder(name))

    def snapshot_path(self, name: str, snapshot: str) -> Path:
        """The archive of collection ``name`` called ``snapshot``; 404 if either is unknown."""
        self.get(name)
        path = self._snapshot_folder(name) / snapshots.validate_snapshot_name(snapshot)
        if not path.is_file():
            raise SnapshotNotFound(snapshot, name)
        return path

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        snapshots.delete_snapshot(self.snapshot_path(name, snapshot))
        return True

    def snapshot_location(self, name: str, location: str) -> Path:
        """The archive a recover request's ``location`` names (see ``resolve_location``)."""
        return snapshots.resolve_location(location, self.snapshots_root, name)

    def upload_path(self) -> Path:
        """A fresh temporary file for an uploaded archive (removed at start if left)."""
        self.snapshots_root.mkdir(parents=True, exist_ok=True)
        return self.snapshots_root / f".tmp-upload-{uuid.uuid4().hex}{snapshots.SUFFIX}"

    def recover(self, name: str, archive: Path, checksum: str | None = None) -> None:
        """Create collection ``name`` from a snapshot archive, or replace the existing one.

        The archive is unpacked, verified and opened in a temporary folder first, so a
        bad archive changes nothing; only then is the old collection closed and swapped
        out under the engine lock. The config stored in the snapshot is kept."""
        validate_collection_name(name)
        if self.exists(name):
            self._single(name)
        temp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            snapshots.extract_snapshot(archive, temp, checksum)
            _check_opens(name, temp)
            with self._lock:
                self._swap_in(name, temp)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        log.info("snapshot recovered", extra={"collection": name, "archive": archive.name})

    def _swap_in(self, name: str, temp: Path) -> None:
        """Called with the engine lock held: the old collection (if any) goes to the
        trash, the unpacked one takes its place; on failure the old one is put back."""
        final = self.root / name
        old = self._collections.pop(name, None)
        if old is not None and not isinstance(old, Collection):
            self._collections[name] = old  # sharded since the check in ``recover``
            raise _no_sharded_snapshots(name)
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        try:
            if old is not None:
                self.worker.detach(name)
                old.close()
            self._forget_jobs(name)
            if old is not None:
                os.replace(final, trash)
            os.replace(temp, final)
            fsync_dir(self.root)
            collection = Collection.open(name, final)
        except BaseException:
            self._put_back(name, old is not None, temp, trash)
            raise
        self._collections[name] = collection
        self.worker.attach(collection)
        shutil.rmtree(trash, ignore_errors=True)

    def _put_back(self, name: str, had_old: bool, temp: Path, trash: Path) -> None:
        """Undo a failed swap: the new folder goes back to ``temp`` (to be removed) and
        the old collection, if there was one, is reopened where it was."""
        final = self.root / name
        if final.exists() and (not had_old or trash.exists()):
            os.replace(final, temp)
        if trash.exists():
            os.replace(trash, final)
        if had_old:
            reopened = Collection.open(name, final)
            self._collections[name] = reopened
            self.worker.attach(reopened)

    def _forget_jobs(self, name: str) -> None:
        """Let a cancelled build of the replaced collection end (it finds the collection
        closed and discards its segment) before its folder moves, then drop its job
        records, so the new collection's status and work start from its own segments.
        A build that ignores its cancel past the wait could still write a segment into
        the new folder; the segment would be re-checked against the points on open."""
        if not self.worker.wait_idle(name, OLD_JOBS_WAIT_S):
            log.warning("old build still running during recovery", extra={"collection": name})
        self.worker.detach(name)

    def _single(self, name: str) -> Collection:
        """The collection, which must not be sharded (snapshots are per single node)."""
        collection = self.get(name)
        if not isinstance(collection, Collection):
            raise _no_sharded_snapshots(name)
        return collection

    def _snapshot_folder(self, name: str) -> Path:
        return self.snapshots_root / name

    def _clean_leftovers(self) -> None:
        for path in self.root.iterdir():
            if path.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(path, ignore_errors=True)
        snapshots.remove_leftovers(self.snapshots_root)


def _no_sharded_snapshots(name: str) -> UnsupportedFeature:
    return UnsupportedFeature(f"snapshots of sharded collection {name!r}")


def _marker_key(folder: Path) -> str:
    key: str = json.loads((folder / SHARDED_FILE).read_text())["key"]
    return key


def _write_marker(folder: Path, key: str, config: CollectionConfig) -> None:
    """A sharded collection's config and shard key, replaced atomically."""
    temp = folder / f".{SHARDED_FILE}.tmp"
    with open(temp, "w") as out:
        json.dump({"key": key, "config": config.model_dump(mode="json")}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, folder / SHARDED_FILE)
    fsync_dir(folder)


def _check_opens(name: str, folder: Path) -> None:
    """Open an unpacked snapshot as a collection (store version, config, segments) and
    close it again; an archive whose checksums match but whose content does not open
    is still a bad snapshot, not a server fault."""
    try:
        Collection.open(name, folder).close()
    except (QuiverError, ValueError, KeyError, TypeError, RuntimeError, sqlite3.Error) as exc:
        detail = exc.message if isinstance(exc, QuiverError) else str(exc)
        raise InvalidSnapshot(f"its collection cannot be opened: {detail}") from exc
