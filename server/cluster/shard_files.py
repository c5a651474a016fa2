"""A shard's files, as a new replica receives them: what a restart opens.

A replica catching up from a snapshot (``replica_server.ReplicaServer.install``) gets
the healthy replica's collection folder as files: a point-in-time copy of the point
store (SQLite's online backup, one read transaction, as a snapshot archive holds it)
and every current sealed segment's manifest and built index files. The new replica
writes them as its collection's folder and opens its engine there, as a restarted
replica opens its own folder: no point is upserted again and no index is rebuilt.
Nothing is archived, hashed or unpacked on the way (the bytes go node to node through
Ray's object store, whose transfer is checked by Ray).

Consistency is the snapshot archive's (``storage/snapshots.py``): the point store is
the truth; segment files are immutable, each read whole or skipped when a merge removed
it first, and a segment whose points do not match the copied store is rebuilt from it
when the collection opens.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from server.engine.collection import Collection
from server.errors import InvalidSnapshot, StorageError
from server.storage.point_store import DB_FILE, PointStore
from server.storage.segment_store import (
    LIVE_VERSIONS,
    MANIFEST,
    SegmentManifest,
    folder_name,
    fsync_dir,
)

FileData = bytes | npt.NDArray[np.uint8]
"""A file's content. Read as uint8 arrays: Ray carries an array as a buffer of its own,
written once into the object store and mapped, not copied, where it arrives; bytes
would be copied into the pickle stream and out of it again (73 MB at 130k points)."""
ShardFiles = dict[str, FileData]
"""Path inside the collection folder -> content."""

SEGMENTS = "segments"
_NAME = re.compile(
    rf"points\.sqlite|segments/\d{{1,20}}/(?:manifest\.json|{re.escape(LIVE_VERSIONS)}|\d{{1,9}}\.index)"
)
"""The names a shard's files may have (a snapshot archive's members, less its header)."""


def read_files(collection: Collection) -> ShardFiles:
    """The collection's point store, its current segments' files, and each segment's
    live rows' versions (``LIVE_VERSIONS``), read after the store: a row live then at a
    version the copied store also has is the point as stored, and the new replica's
    engine keeps it without comparing its vectors (``collection/recovery.py``)."""
    files = {DB_FILE: _store_bytes(collection.store)} | _segment_files(collection.path / SEGMENTS)
    for segment_id, versions in collection.live_versions().items():
        folder = f"{SEGMENTS}/{folder_name(segment_id)}"
        if f"{folder}/{MANIFEST}" in files:
            data = versions.astype("<i8", copy=False)
            files[f"{folder}/{LIVE_VERSIONS}"] = data.view(np.uint8)
    return files


def _store_bytes(store: PointStore) -> npt.NDArray[np.uint8]:
    """The point store's point-in-time image (``PointStore.image``), as an array."""
    return np.frombuffer(store.image(), dtype=np.uint8)


def _segment_files(root: Path) -> ShardFiles:
    """Every current segment's manifest and index files; a segment replaced by a merge
    (listed in another's ``replaces``) or removed while it is read is left out."""
    manifests: dict[int, tuple[SegmentManifest, Path]] = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.name.isdigit():
            continue
        try:
            manifest = SegmentManifest.from_json((folder / MANIFEST).read_bytes(), folder)
        except (OSError, StorageError, ValueError, KeyError):
            continue
        manifests[manifest.segment_id] = (manifest, folder)
    replaced = {old for manifest, _ in manifests.values() for old in manifest.replaces}
    files: ShardFiles = {}
    for segment_id, (manifest, folder) in sorted(manifests.items()):
        if segment_id not in replaced:
            files |= _one_segment(manifest, folder)
    return files


def _one_segment(manifest: SegmentManifest, folder: Path) -> ShardFiles:
    names = [MANIFEST, *(entry.file for entry in manifest.indexes.values() if entry)]
    try:
        return {f"{SEGMENTS}/{folder.name}/{name}": _read(folder / name) for name in names}
    except OSError:
        return {}  # merged away meanwhile: its points are rebuilt from the store


def _read(path: Path) -> npt.NDArray[np.uint8]:
    return np.fromfile(path, dtype=np.uint8)


def place_files(collections: Path, name: str, files: ShardFiles) -> Path:
    """Write ``files`` as a collection folder under ``collections`` (an engine's root),
    fsynced, in a temporary folder the engine removes at its next start if this is
    cut short; returns that folder, for ``swap_in``."""
    if DB_FILE not in files or not all(_NAME.fullmatch(path) for path in files):
        raise InvalidSnapshot("a shard transfer held files a collection does not have")
    temp = collections / f".tmp-{uuid.uuid4().hex}"
    for path, data in files.items():
        target = temp / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            out.write(data if isinstance(data, bytes) else data.data)  # an array: its buffer
            out.flush()
            os.fsync(out.fileno())
    folders = {temp} | {p for path in files for p in (temp / path).parents if temp in p.parents}
    for folder in folders:
        fsync_dir(folder)
    return temp


def swap_in(collections: Path, name: str, placed: Path) -> None:
    """Put the placed folder where collection ``name`` lives (the engine is closed);
    the old folder goes to the trash, which the engine also clears at start."""
    final = collections / name
    trash = collections / f".trash-{uuid.uuid4().hex}"
    if final.exists():
        os.replace(final, trash)
    os.replace(placed, final)
    fsync_dir(collections)
    shutil.rmtree(trash, ignore_errors=True)
