"""Sealed segments on disk: a manifest per segment plus one file per built index.

Layout (``FORMAT_VERSION`` 1)::

    <collection>/segments/<segment_id>/manifest.json   ids, index files + sha256, replaces
    <collection>/segments/<segment_id>/<n>.index       serialised index (index/serialization.py)
    <collection>/segments/.tmp-*                       being written; removed at start

A segment is written whole into a temporary folder, fsynced, and renamed into
place, so a half-built index is never visible. A manifest that ``replaces``
older segments (vacuum, merge) makes them obsolete the moment it exists, even if
the process dies before deleting them. The SQLite point store stays the source
of truth: a segment only says which points it holds and caches their index.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from server.errors import StorageError, reason

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX_FILE = re.compile(r"\d{1,9}\.index")
"""The only index file names a manifest may hold: a plain name inside its segment folder.
A manifest comes from disk or from an uploaded snapshot, so a path in it (absolute,
``..``) would let a later snapshot copy any host file into a downloadable archive."""
LIVE_VERSIONS = "live-versions"
"""Beside a segment installed from another replica's files: per row, as little-endian
int64, the version its point had where the row was live on that replica, else -1
(``server/cluster/shard_files.py``; how opening uses it: ``collection/recovery.py``)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_SEGMENT_ID = 10**9


@dataclass(frozen=True, slots=True)
class IndexFile:
    kind: str
    file: str
    sha256: str


@dataclass(slots=True)
class SegmentManifest:
    segment_id: int
    point_ids: Sequence[str]
    indexes: dict[str, IndexFile | None]
    spec: dict[str, Any] | None = None
    """The index spec the files were built with; None for a sealed, not yet indexed segment."""
    replaces: list[int] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        """The manifest as JSON; the ids are encoded ``_IDS_CHUNK`` at a time, so that
        ``point_ids`` may make its strings as they are read (``IdTexts``)."""
        indexes = {
            name: None if f is None else {"kind": f.kind, "file": f.file, "sha256": f.sha256}
            for name, f in self.indexes.items()
        }
        rest = orjson.dumps(
            {
                "format_version": FORMAT_VERSION,
                "segment_id": self.segment_id,
                "indexes": indexes,
                "spec": self.spec,
                "replaces": self.replaces,
                "created": self.created,
            }
        )
        return b'{"point_ids":' + _json_strings(self.point_ids) + b"," + rest[1:]

    @classmethod
    def from_json(cls, data: bytes, where: Path) -> SegmentManifest:
        raw = orjson.loads(data)
        if not isinstance(raw, dict):
            raise StorageError(f"{where.name}: its manifest is not a JSON object")
        if raw.get("format_version") != FORMAT_VERSION:
            raise StorageError(
                f"{where.name}: unknown segment format version {raw.get('format_version')!r}, "
                f"this Quiver reads version {FORMAT_VERSION}"
            )
        return cls(
            segment_id=_segment_id(raw["segment_id"], where),
            point_ids=list(raw["point_ids"]),
            indexes={
                str(name): None if f is None else _index_file(f, where)
                for name, f in raw["indexes"].items()
            },
            spec=raw.get("spec"),
            replaces=[_segment_id(old, where) for old in raw.get("replaces", [])],
            created=float(raw.get("created", 0.0)),
        )


_IDS_CHUNK = 10_000


def _json_strings(texts: Iterable[str]) -> bytes:
    """A JSON array of ``texts``, encoded a chunk at a time."""
    items, parts = iter(texts), []
    while chunk := list(islice(items, _IDS_CHUNK)):
        parts.append(orjson.dumps(chunk)[1:-1])
    return b"[" + b",".join(parts) + b"]"


def _kind_of(spec: dict[str, Any], name: str) -> str:
    """The backend vector ``name`` was built with: its own (a per-vector override in
    the spec, ``index_spec.VectorOverride``) or the segment's."""
    own = spec.get("vectors", {}).get(name, {})
    return str(own.get("type", spec.get("type", "flat")))


def _segment_id(value: object, where: Path) -> int:
    if type(value) is not int or not 0 <= value < _MAX_SEGMENT_ID:
        raise StorageError(f"{where.name}: bad segment id {value!r} in its manifest")
    return value


def _index_file(entry: object, where: Path) -> IndexFile:
    """One manifest entry, refused unless it names a plain index file of this segment."""
    if not isinstance(entry, dict):
        raise StorageError(f"{where.name}: bad index entry in its manifest")
    kind, file, sha256 = entry.get("kind"), entry.get("file"), entry.get("sha256")
    if not (isinstance(file, str) and INDEX_FILE.fullmatch(file)):
        raise StorageError(
            f"{where.name}: its manifest names index file {str(file)[:80]!r}, which is "
            "not a plain index file name inside the segment folder"
        )
    if not (isinstance(kind, str) and isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise StorageError(f"{where.name}: bad kind or checksum for {file} in its manifest")
    return IndexFile(kind, file, sha256)


@dataclass(slots=True)
class LoadedSegment:
    manifest: SegmentManifest
    blobs: dict[str, memoryview | None]
    """Index bytes per vector name, memory-mapped; None where unbuilt, missing or corrupt."""
    live_versions: bytes | None = None
    """The segment's ``LIVE_VERSIONS`` file, if it has one."""


class SegmentStore:
    def __init__(self, root: Path, *, clean: bool = True) -> None:
        """``clean``: remove leftover ``.tmp-*`` folders (the owner at start; a reader
        worker must not, they may be the owner's segment being written)."""
        self.root = root
        self.owned = clean
        """Whether this process owns the folder (may add side files to its segments)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".tmp-*") if clean else ():
            shutil.rmtree(leftover, ignore_errors=True)

    def write(self, manifest: SegmentManifest, blobs: dict[str, bytes]) -> SegmentManifest:
        """Write a new segment atomically; ``manifest.indexes`` is filled in from ``blobs``."""
        temp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            temp.mkdir()
            for position, (name, blob) in enumerate(sorted(blobs.items())):
                file_name = f"{position}.index"
                _write_synced(temp / file_name, blob)
                kind = _kind_of(manifest.spec or {}, name)
                manifest.indexes[name] = IndexFile(kind, file_name, _sha256(blob))
            _write_synced(temp / MANIFEST, manifest.to_json())
            final = self._dir(manifest.segment_id)
            if final.exists():
                shutil.rmtree(final)
            os.replace(temp, final)
            fsync_dir(self.root)
        except OSError as exc:
            shutil.rmtree(temp, ignore_errors=True)
            raise StorageError(
                f"Cannot write segment {manifest.segment_id}: {reason(exc)}"
            ) from exc
        return manifest

    def remove(self, segment_ids: list[int]) -> None:
        for segment_id in segment_ids:
            shutil.rmtree(self._dir(segment_id), ignore_errors=True)
        fsync_dir(self.root)

    def load_all(self) -> list[LoadedSegment]:
        """Every current segment, oldest first. Obsolete (replaced) ones are deleted by
        the folder's owner and skipped by a reader worker, which changes nothing on disk;
        only the owner reads the ``LIVE_VERSIONS`` hints (``recovery.py`` uses them for
        the store's sole writer alone)."""
        manifests: dict[int, SegmentManifest] = {}
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
                continue
            manifest = SegmentManifest.from_json((folder / MANIFEST).read_bytes(), folder)
            manifests[manifest.segment_id] = manifest
        obsolete = {old for m in manifests.values() for old in m.replaces if old in manifests}
        if obsolete and self.owned:
            log.info("removing replaced segments", extra={"segments": sorted(obsolete)})
            self.remove(sorted(obsolete))
        return [
            LoadedSegment(m, self._read_blobs(m), self._live_versions(sid) if self.owned else None)
            for sid, m in sorted(manifests.items())
            if sid not in obsolete
        ]

    def _live_versions(self, segment_id: int) -> bytes | None:
        try:
            return (self._dir(segment_id) / LIVE_VERSIONS).read_bytes()
        except OSError:
            return None

    def max_segment_id(self) -> int:
        ids = [int(p.name) for p in self.root.iterdir() if p.name.isdigit()]
        return max(ids, default=0)

    def read_index(self, manifest: SegmentManifest, name: str) -> memoryview | None:
        """One index file, memory-mapped and checked against its checksum."""
        entry = manifest.indexes.get(name)
        if entry is None:
            return None
        return self._map_checked(self._dir(manifest.segment_id) / entry.file, entry.sha256)

    def _read_blobs(self, manifest: SegmentManifest) -> dict[str, memoryview | None]:
        blobs: dict[str, memoryview | None] = {}
        for name, entry in manifest.indexes.items():
            if entry is None:
                blobs[name] = None
                continue
            path = self._dir(manifest.segment_id) / entry.file
            data = self._map_checked(path, entry.sha256)
            if data is None:
                log.error(
                    "index file missing or its checksum does not match; it is not used and "
                    "its points are indexed again from the point store",
                    extra={"segment": manifest.segment_id, "file": entry.file},
                )
            blobs[name] = data
        return blobs

    @staticmethod
    def _map_checked(path: Path, sha256: str) -> memoryview | None:
        """The file read-only memory-mapped: indexes copy what they keep in RAM, and
        re-ranking vectors stay in the page cache (see index/rerank.py)."""
        try:
            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # missing, unreadable, or empty (cannot be mapped)
            return None
        view = memoryview(mapped)
        return view if _sha256(view) == sha256 else None

    def folder(self, segment_id: int) -> Path:
        """Where segment ``segment_id`` lives (its manifest, index files, side files)."""
        return self._dir(segment_id)

    def _dir(self, segment_id: int) -> Path:
        return self.root / folder_name(segment_id)


def folder_name(segment_id: int) -> str:
    """A segment's folder name under the segments root."""
    return f"{segment_id:08d}"


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the folder that holds the entry."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
