"""The engine: every collection in the data folder, opened at start.

Folder layout::

    <data_dir>/collections/<name>/points.sqlite   one folder per collection
    <data_dir>/collections/.tmp-*                 half-created, removed at start
    <data_dir>/collections/.trash-*               half-deleted, removed at start
    <data_dir>/snapshots/<name>/*.snapshot        snapshot archives (storage/snapshots.py)
    <data_dir>/collections/<name>/sharded.json    a sharded collection (shard_number > 1):
    <data_dir>/shards/<key>/<i>/                  its config and key, and shard i's engine
    <data_dir>/aliases.json                       alias -> collection (engine/aliases.py)

A collection appears atomically: it is built in a temporary folder and renamed
into place; deletion renames it away first, so a crash never leaves half of one.
Recovering a snapshot unpacks and verifies it in a temporary folder, opens it there,
then swaps it in for the collection of that name (if any) under the engine lock.

Every collection is a ``CollectionHandle`` (``engine/protocols.py``). Which kind a
folder holds is decided by the ``ShardedOpener`` the engine is given
(``server/catalog.py``: a folder with a ``sharded.json`` marker, or a new collection
with ``shard_number > 1``, is a ``ShardedCollection`` from ``server/cluster/``); every
other folder is a single-node ``Collection``. Without an opener (the engine inside a
shard) every collection is a single-node one. The engine never imports the cluster.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import TypeVar

from server.engine.aliases import AliasAction, AliasTable, new_names
from server.engine.build_worker import BuildWorker, Job
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.limits import EngineLimits, check_collection_count
from server.engine.protocols import CollectionHandle, JobBoard, JobWire, ShardedOpener
from server.errors import (
    CollectionAlreadyExists,
    CollectionNotFound,
    InvalidCollectionName,
    InvalidSnapshot,
    NameTakenByAlias,
    QuiverError,
    SnapshotNotFound,
    UnsupportedFeature,
)
from server.storage import snapshots
from server.storage.aliases import ALIASES_FILE
from server.storage.permissions import make_private
from server.storage.segment_store import fsync_dir
from server.storage.snapshots import SnapshotDescription

log = logging.getLogger(__name__)

Handle = TypeVar("Handle", bound=CollectionHandle)

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}$")
OLD_JOBS_WAIT_S = 30.0
"""How long a recovery waits for a cancelled build of the collection it replaces."""


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

    ``sharded`` opens the collections that are split into shards (``server/catalog.py``
    gives one); without it, as in the engine inside a shard, a collection with
    ``shard_number > 1`` is stored as a plain one."""

    def __init__(
        self,
        data_dir: Path,
        idle_seal_s: float = 0.0,
        *,
        sharded: ShardedOpener | None = None,
        limits: EngineLimits | None = None,
    ) -> None:
        make_private(data_dir)
        self.root = data_dir / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshots_root = data_dir / "snapshots"
        self._sharded = sharded
        self.limits = limits or EngineLimits()
        self._lock = threading.Lock()
        self._collections: dict[str, CollectionHandle] = {}
        self.idle_seal_s = idle_seal_s
        self.worker = BuildWorker(idle_seal_s)
        self._clean_leftovers()
        local: list[Collection] = []
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                opened = None if sharded is None else sharded.open(path.name, path)
                if opened is None:
                    opened = Collection.open(path.name, path)
                    local.append(opened)
                self._collections[path.name] = self._bounded(opened)
        if sharded is not None:
            sharded.clean_orphans(self.root)
        self._aliases = AliasTable(data_dir / ALIASES_FILE)
        self._aliases.keep_only(self._collections)
        self.worker.start()
        for collection in local:
            self._schedule(collection)
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
            return self._aliases.resolve(name) in self._collections

    def get(self, name: str) -> CollectionHandle:
        """The collection ``name`` names, directly or as an alias: every request that
        names a collection finds it here (``engine/aliases.py``)."""
        with self._lock:
            collection = self._collections.get(self._aliases.resolve(name))
        if collection is None:
            raise CollectionNotFound(name)
        return collection

    def create(self, name: str, config: CollectionConfig) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._collections:
                raise CollectionAlreadyExists(name)
            if self._aliases.is_alias(name):
                raise NameTakenByAlias(name)
            self._check_room(name)
            temp = self.root / f".tmp-{uuid.uuid4().hex}"
            temp.mkdir()
            sharded = None
            try:
                if self._sharded is not None:
                    sharded = self._sharded.create(name, temp, config)
                if sharded is None:
                    Collection.create(name, temp, config).close()
                os.replace(temp, self.root / name)
                fsync_dir(self.root)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                if sharded is not None:
                    sharded.drop()
                raise
            if sharded is not None:
                self._collections[name] = self._bounded(sharded)
                return
            opened = Collection.open(name, self.root / name)
            self._collections[name] = self._bounded(opened)
        self._schedule(opened)

    def delete(self, name: str) -> bool:
        with self._lock:
            collection = self._collections.get(name)
            if collection is None:
                return False
            self._aliases.drop_collection(name)  # first: if it fails, nothing is gone
            del self._collections[name]
            self.worker.detach(name)
            collection.drop()
            trash = self.root / f".trash-{uuid.uuid4().hex}"
            os.replace(self.root / name, trash)
            fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    # -- aliases ---------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The collection name ``name`` stands for (itself unless it is an alias)."""
        with self._lock:
            return self._aliases.resolve(name)

    def update_aliases(self, actions: list[AliasAction]) -> None:
        """Apply alias actions all together or not at all, under the engine lock, so no
        request resolves an alias half-way through a switch."""
        for action in actions:
            for name in new_names(action):
                validate_collection_name(name)
        with self._lock:
            self._aliases.apply(actions, self._collections)

    def aliases(self, collection: str | None = None) -> list[tuple[str, str]]:
        """(alias, collection) pairs: all of them, or those naming ``collection``."""
        with self._lock:
            if collection is None:
                return self._aliases.items()
            return [(alias, collection) for alias in self._aliases.of(collection)]

    def config_changed(self, collection: CollectionHandle) -> None:
        """After a config update: queue the rebuilds it needs (shards queue their own)."""
        collection.config_changed()

    # -- jobs --------------------------------------------------------------

    def jobs_for(self, name: str) -> list[JobWire]:
        """A collection's build jobs in wire form; a sharded one's carry their shard."""
        return self.get(name).jobs()

    def job(self, job_id: str, cancel: bool = False) -> JobWire | None:
        """The job with this id, in this engine's worker (also the job of a collection
        deleted while it runs) or in a shard of a sharded collection; with ``cancel``,
        cancelled first. None when no one knows it."""
        job = self.worker.cancel(job_id) if cancel else self.worker.get(job_id)
        if job is not None:
            return job.to_wire()
        with self._lock:
            collections = list(self._collections.values())
        for collection in collections:
            found = collection.job(job_id, cancel)
            if found is not None:
                return found
        return None

    def _check_room(self, name: str) -> None:
        """Called with the engine lock held, before a collection ``name`` is created or
        recovered: a new name must fit under ``QUIVER_MAX_COLLECTIONS`` (each collection
        keeps files open; past the process's file handles every request failed)."""
        if name not in self._collections:
            check_collection_count(len(self._collections), self.limits)

    def _bounded(self, collection: Handle) -> Handle:
        """A collection this engine serves, held to the engine's request limits."""
        collection.result_budget = self.limits.max_request_result_bytes
        return collection

    def _schedule(self, collection: Collection) -> None:
        """A single-node collection this engine opened: its background work runs in the
        engine's build worker (sharded collections' shards run their own)."""
        self.worker.attach(collection)
        collection.scheduled_by(_WorkerJobs(self.worker, collection))

    # -- snapshots -------------------------------------------------------

    def create_snapshot(self, name: str) -> SnapshotDescription:
        return self._snapshottable(name).write_snapshot(self._snapshot_folder(name))

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
        out under the engine lock, the opened one moved into its place (opened once:
        opening reads every point). The config stored in the snapshot is kept."""
        name = self.resolve(validate_collection_name(name))
        if self.exists(name):
            self._snapshottable(name)
        temp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            snapshots.extract_snapshot(archive, temp, checksum)
            collection = _open_unpacked(name, temp)
            try:
                with self._lock:
                    self._swap_in(name, temp, collection)
            except BaseException:
                collection.close()  # no-op if the failed swap left it closed
                raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        log.info("snapshot recovered", extra={"collection": name, "archive": archive.name})

    def _swap_in(self, name: str, temp: Path, collection: Collection) -> None:
        """Called with the engine lock held: the old collection (if any) goes to the
        trash, the unpacked one (``collection``, opened in ``temp``) takes its place;
        on failure the old one is put back."""
        self._check_room(name)
        final = self.root / name
        old = self._collections.pop(name, None)
        if old is not None and not old.supports_snapshots:
            self._collections[name] = old  # sharded since the check in ``recover``
            raise _no_sharded_snapshots(name)
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        try:
            if old is not None:
                self.worker.detach(name)
                old.close()
            self._forget_jobs(name)
            with collection.moving_to(final):
                if old is not None:
                    os.replace(final, trash)
                os.replace(temp, final)
                fsync_dir(self.root)
        except BaseException:
            collection.close()  # before its folder moves back: its database must be shut
            self._put_back(name, old is not None, temp, trash)
            raise
        self._collections[name] = self._bounded(collection)
        self._schedule(collection)
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
            self._collections[name] = self._bounded(reopened)
            self._schedule(reopened)

    def _forget_jobs(self, name: str) -> None:
        """Let a cancelled build of the replaced collection end (it finds the collection
        closed and discards its segment) before its folder moves, then drop its job
        records, so the new collection's status and work start from its own segments.
        A build that ignores its cancel past the wait could still write a segment into
        the new folder; the segment would be re-checked against the points on open."""
        if not self.worker.wait_idle(name, OLD_JOBS_WAIT_S):
            log.warning("old build still running during recovery", extra={"collection": name})
        self.worker.detach(name)

    def _snapshottable(self, name: str) -> CollectionHandle:
        """The collection, which must support snapshots (sharded ones do not)."""
        collection = self.get(name)
        if not collection.supports_snapshots:
            raise _no_sharded_snapshots(name)
        return collection

    def _snapshot_folder(self, name: str) -> Path:
        return self.snapshots_root / self.resolve(name)

    def _clean_leftovers(self) -> None:
        for path in self.root.iterdir():
            if path.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(path, ignore_errors=True)
        snapshots.remove_leftovers(self.snapshots_root)


class _WorkerJobs:
    """One collection's jobs in the engine's build worker (``protocols.JobBoard``)."""

    def __init__(self, worker: BuildWorker, collection: Collection) -> None:
        self._worker = worker
        self._collection = collection

    def jobs(self) -> list[JobWire]:
        return [job.to_wire() for job in self._worker.jobs_for(self._collection.name)]

    def job(self, job_id: str, cancel: bool) -> JobWire | None:
        found = self._worker.get(job_id)
        if found is None or found.collection != self._collection.name:
            return None
        changed: Job | None = self._worker.cancel(job_id) if cancel else found
        return (changed or found).to_wire()

    def config_changed(self) -> None:
        self._worker.config_changed(self._collection)


def _check_job_board(jobs: _WorkerJobs) -> JobBoard:
    return jobs  # mypy checks _WorkerJobs against the interface Collection uses here


def _no_sharded_snapshots(name: str) -> UnsupportedFeature:
    return UnsupportedFeature(f"snapshots of sharded collection {name!r}")


def _open_unpacked(name: str, folder: Path) -> Collection:
    """An unpacked snapshot opened as a collection (store version, config, segments,
    every point read); an archive whose checksums match but whose content does not
    open is still a bad snapshot, not a server fault."""
    try:
        return Collection.open(name, folder)
    except (QuiverError, ValueError, KeyError, TypeError, RuntimeError, sqlite3.Error) as exc:
        detail = exc.message if isinstance(exc, QuiverError) else str(exc)
        raise InvalidSnapshot(f"its collection cannot be opened: {detail}") from exc
