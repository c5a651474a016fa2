"""Collection snapshots: one checksummed tar archive per snapshot (pure file work).

Archive layout (``FORMAT_VERSION`` 1), an uncompressed tar whose members are::

    points.sqlite                    point-in-time copy of the point store (SQLite backup)
    segments/<id>/manifest.json      the segment folders present when the snapshot was taken
    segments/<id>/<n>.index
    snapshot.json                    format_version, collection, created, quiver_version,
                                     files: {member: {"sha256", "size"}} for every other member

``snapshot.json`` comes last so an archive is written in one pass, each member hashed
as it is copied. Beside each archive, ``<archive>.checksum`` holds the sha256 of the
whole file, as Qdrant writes it. Stored under ``<data_dir>/snapshots/<collection>/``.

Consistency while writes continue: the point store is the system of record and its
copy is one read transaction; segment files are immutable, opened before they are
copied (a segment a merge removes meanwhile is still read whole, or skipped when it was
gone before it was opened). On restore, segments whose points do not match the copied
store are rebuilt from it (see ``Collection._reload``), so any such mix restores the
store's state exactly.

Reading refuses, with :class:`InvalidSnapshot`, anything but a complete archive of a
known version whose every member matches its recorded sha256 and size; member names
are checked against the layout above, so nothing is written outside the target folder.
Every member must be a plain, non-sparse file whose declared bytes are all inside the
archive, checked from its header before anything is written, so unpacking never writes
more than the archive's own size (and a disk without that much room is a 507 first).
A recover location may only name a file inside the snapshots folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from io import BytesIO
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import unquote, urlsplit

import orjson

from server.errors import (
    BadRequest,
    Forbidden,
    InsufficientStorage,
    InvalidSnapshot,
    SnapshotNotFound,
    StorageError,
    UnsupportedFeature,
    reason,
)
from server.storage.point_store import DB_FILE, PointStore
from server.storage.segment_store import MANIFEST, SegmentManifest, SegmentStore, fsync_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
HEADER = "snapshot.json"
MAX_MEMBERS = 20_000
"""More files than any collection's segments hold (each segment: its manifest and one
index file per vector name; merges keep segments few)."""
MAX_HEADER_BYTES = 4 << 20
"""``snapshot.json`` lists every member in about 150 bytes (name, sha256, size,
indented): 4 MiB holds ``MAX_MEMBERS`` with room to spare and parses in ~50 MB. A larger
one is not a Quiver snapshot and is refused unread (it is held and parsed in memory)."""
MAX_PAX_HEADER_BYTES = 64 << 10
"""An extended (pax) header holds a few attributes of one member; tarfile reads it into
memory whole, so a larger one is refused before it is read."""
CHUNK = 1 << 20
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")
_PLAIN_FILE = (tarfile.REGTYPE, tarfile.AREGTYPE)

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}$")
_MEMBER = re.compile(r"points\.sqlite|segments/\d{1,20}/(?:manifest\.json|\d{1,9}\.index)")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class SnapshotDescription:
    """Qdrant's ``SnapshotDescription``: the archive's name, time, size and sha256."""

    name: str
    creation_time: datetime
    size: int
    checksum: str | None


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    """What ``snapshot.json`` says about a verified archive."""

    collection: str
    created: str
    quiver_version: str


def validate_snapshot_name(name: str) -> str:
    """Snapshot names become file names: one path component ending in ``.snapshot``."""
    if not (_NAME.fullmatch(name) and name.endswith(SUFFIX)):
        raise BadRequest(
            f"Bad snapshot name {name!r}: expected a file name ending in {SUFFIX!r} "
            "(letters, digits, '_', '-' or '.', not starting with '.')"
        )
    return name


# -- writing -------------------------------------------------------------------


def write_snapshot(
    folder: Path, collection: str, store: PointStore, segments: SegmentStore
) -> SnapshotDescription:
    """Archive a collection into ``folder`` without blocking its writers; returns the
    new snapshot. The archive appears whole (temp name, fsync, rename) or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
    name = f"{collection[:200]}-{stamp}-{secrets.token_hex(4)}{SUFFIX}"
    temp = folder / f".tmp-{uuid.uuid4().hex}"
    db_copy, checksum_temp = temp.with_suffix(".sqlite"), temp.with_suffix(CHECKSUM_SUFFIX)
    try:
        store.backup_to(db_copy)
        checksum = _write_archive(temp, collection, db_copy, segments)
        # the checksum file first: every archive that is visible has one
        _write_synced(checksum_temp, checksum.encode())
        os.replace(checksum_temp, folder / f"{name}{CHECKSUM_SUFFIX}")
        os.replace(temp, folder / name)
        fsync_dir(folder)
    except OSError as exc:
        raise StorageError(
            f"Cannot write snapshot of collection `{collection}`: {reason(exc)}"
        ) from exc
    finally:
        for leftover in (temp, checksum_temp, *_sqlite_files(db_copy)):
            leftover.unlink(missing_ok=True)
    log.info("snapshot created", extra={"collection": collection, "snapshot": name})
    return describe(folder / name)


def _sqlite_files(database: Path) -> list[Path]:
    """A database and the journals SQLite keeps beside it (left behind when a copy
    fails part-way, e.g. on a full disk)."""
    return [database, *(database.with_name(database.name + s) for s in SQLITE_SIDE_FILES)]


def _write_archive(path: Path, collection: str, db_copy: Path, segments: SegmentStore) -> str:
    """Write the tar at ``path`` in one pass; returns the sha256 of the whole file."""
    files: dict[str, dict[str, Any]] = {}
    with open(path, "wb") as raw, ExitStack() as stack:
        out = _Hashing(raw)
        tar = stack.enter_context(tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT))
        with open(db_copy, "rb") as db_handle:
            files[DB_FILE] = _add_member(tar, DB_FILE, db_handle)
        for arcname, segment_file, expected in _segment_files(segments, stack):
            files[arcname] = _add_member(tar, arcname, segment_file)
            if expected is not None and files[arcname]["sha256"] != expected:
                raise StorageError(
                    f"segment file {arcname} does not match the checksum in its manifest; "
                    "the snapshot was not written"
                )
        header = {
            "format_version": FORMAT_VERSION,
            "collection": collection,
            "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
            "quiver_version": _quiver_version(),
            "files": files,
        }
        _add_member(tar, HEADER, BytesIO(orjson.dumps(header, option=orjson.OPT_INDENT_2)))
        tar.close()
        raw.flush()
        os.fsync(raw.fileno())
        return out.digest.hexdigest()


def _segment_files(
    segments: SegmentStore, stack: ExitStack
) -> Iterator[tuple[str, BinaryIO, str | None]]:
    """Every current segment's files with the sha256 its manifest records (None for the
    manifest itself), each segment opened whole before it is copied: files stay
    readable after a merge unlinks them, and a segment that vanished before it was
    opened is skipped (its points are rebuilt on restore). Only names that
    ``SegmentManifest.from_json`` accepted are opened, all inside the segment folder."""
    manifests: dict[int, tuple[SegmentManifest, Path]] = {}
    for folder in sorted(segments.root.iterdir()):
        if folder.name.startswith(".") or not folder.name.isdigit():
            continue
        try:
            manifest = SegmentManifest.from_json((folder / MANIFEST).read_bytes(), folder)
        except (OSError, StorageError, ValueError, KeyError):
            continue  # removed meanwhile, or unreadable: the restore rebuilds its points
        manifests[manifest.segment_id] = (manifest, folder)
    replaced = {old for manifest, _ in manifests.values() for old in manifest.replaces}
    for segment_id, (manifest, folder) in sorted(manifests.items()):
        if segment_id in replaced:
            continue
        opened = _open_segment(manifest, folder)
        if opened is None:
            log.debug("segment gone while snapshotting", extra={"segment": segment_id})
            continue
        for _, handle, _ in opened:
            stack.callback(handle.close)
        yield from (
            (f"segments/{folder.name}/{file}", handle, sha256) for file, handle, sha256 in opened
        )


def _open_segment(
    manifest: SegmentManifest, folder: Path
) -> list[tuple[str, BinaryIO, str | None]] | None:
    files: list[tuple[str, str | None]] = [(MANIFEST, None)]
    files += [(entry.file, entry.sha256) for entry in manifest.indexes.values() if entry]
    opened: list[tuple[str, BinaryIO, str | None]] = []
    try:
        for file, sha256 in files:
            opened.append((file, open(folder / file, "rb"), sha256))  # noqa: SIM115 (closed by caller)
    except OSError:
        for _, handle, _ in opened:
            handle.close()
        return None
    return opened


def _add_member(tar: tarfile.TarFile, arcname: str, handle: IO[bytes]) -> dict[str, Any]:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime = size, 0o644, int(datetime.now(UTC).timestamp())
    reader = _Hashing(handle)
    tar.addfile(info, reader)
    return {"sha256": reader.digest.hexdigest(), "size": size}


class _Hashing:
    """A file wrapper that hashes every byte read from or written through it: the tar
    stream is hashed as it is written, each member as it is copied in."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data

    def write(self, data: bytes, /) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def tell(self) -> int:
        return self.handle.tell()

    def seek(self, pos: int, /) -> int:
        return self.handle.seek(pos)

    def close(self) -> None:
        """The wrapped file is closed by its owner."""


# -- listing -------------------------------------------------------------------


def describe(path: Path) -> SnapshotDescription:
    stat = path.stat()
    checksum_file = path.with_name(path.name + CHECKSUM_SUFFIX)
    try:
        checksum: str | None = checksum_file.read_text().strip() or None
    except OSError:
        checksum = None
    created = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
    return SnapshotDescription(path.name, created, stat.st_size, checksum)


def list_snapshots(folder: Path) -> list[SnapshotDescription]:
    """The archives in ``folder``, oldest first (temporary files are not listed)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.name.endswith(SUFFIX):
            continue
        with suppress(FileNotFoundError):  # deleted meanwhile
            found.append(describe(path))
    return sorted(found, key=lambda d: (d.creation_time, d.name))


def delete_snapshot(path: Path) -> None:
    path.with_name(path.name + CHECKSUM_SUFFIX).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def remove_leftovers(root: Path) -> None:
    """Half-written archives and uploads (``.tmp-*``) from a process that died."""
    if not root.is_dir():
        return
    # at any depth: shard snapshots live in <collection>/shards/<i>/
    for leftover in sorted(root.rglob(".tmp-*")):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def resolve_location(location: str, root: Path, collection: str) -> Path:
    """The archive a recover request names: ``file:///abs/path``, an absolute path,
    a path relative to the snapshots folder, or a bare snapshot name (looked up
    under ``collection``'s snapshots first, then every collection's, then among the
    full-storage snapshots).

    Only files inside the snapshots folder may be named, as in Qdrant: anything else
    is :class:`Forbidden` with one message whether it exists or not, so a request
    learns nothing about the host's files (not their existence, hash or content)."""
    path = _location_path(location)
    if not path.is_absolute():
        path = _under_root(path, root, collection)
    inside = _inside(path, root)
    if inside is None:
        raise Forbidden("a snapshot location must name a snapshot file inside the snapshots folder")
    if not inside.is_file():
        raise SnapshotNotFound(location)
    return inside


def _location_path(location: str) -> Path:
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        raise UnsupportedFeature(
            "recovering a snapshot from an http(s) URL (this server does not download; "
            "upload the file to POST /collections/{name}/snapshots/upload or give a "
            "file:// location)"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BadRequest("Wrong input: a file:// snapshot location may not name another host")
        return Path(unquote(parts.path))
    if scheme:
        raise BadRequest("Wrong input: use file:///path or a snapshot name as the location")
    if not location:
        raise BadRequest("Wrong input: the snapshot location is empty")
    return Path(location)


def _under_root(path: Path, root: Path, collection: str) -> Path:
    if len(path.parts) > 1:
        return root / path
    candidates = [root / collection / path.name]
    if root.is_dir():
        candidates += sorted(p / path.name for p in root.iterdir() if p.is_dir())
    candidates.append(root / path.name)  # a full-storage snapshot
    return next((c for c in candidates if c.is_file()), candidates[0])


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` with ``..`` and links resolved if it lies inside ``root`` and passes
    through no hidden entry (uploads and archives being written), else None."""
    try:
        real_root, real = root.resolve(), path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name
        return None
    if not real.is_relative_to(real_root):
        return None
    inner = real.relative_to(real_root).parts
    if not inner or any(part.startswith(".") for part in inner):
        return None
    return real


# -- reading -------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def extract_snapshot(archive: Path, dest: Path, checksum: str | None = None) -> SnapshotHeader:
    """Unpack ``archive`` into the new folder ``dest`` and verify it whole: the optional
    sha256 of the file, then every member against ``snapshot.json``. Raises
    :class:`InvalidSnapshot` (and leaves ``dest`` to the caller to remove) otherwise."""
    try:
        header, found = extract_members(archive, dest, checksum, HEADER, _check_member)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidSnapshot(
            f"{archive.name} is not a readable snapshot archive (truncated, corrupted or "
            f"not a tar file: {exc})"
        ) from exc
    if header is None:
        raise InvalidSnapshot(
            f"{archive.name} has no {HEADER}: the archive is truncated, corrupted or "
            "not a Quiver snapshot"
        )
    parsed = _parse_header(header)
    _verify_members(parsed["files"], found)
    _verify_segment_manifests(dest, found)
    _fsync_tree(dest)
    return SnapshotHeader(
        str(parsed.get("collection", "")),
        str(parsed.get("created", "")),
        str(parsed.get("quiver_version", "")),
    )


def extract_members(
    archive: Path,
    dest: Path,
    checksum: str | None,
    header_name: str,
    check_member: Callable[[tarfile.TarInfo, dict[str, dict[str, Any]]], None],
) -> tuple[bytes | None, dict[str, dict[str, Any]]]:
    """The unpacking a snapshot and a bundle share: the optional sha256 of the file, room
    on disk, then every member checked as plain (no links, no paths out, bounded) and by
    ``check_member``, and extracted into the new folder ``dest`` with its size and
    sha256; the first ``header_name`` member is read, not extracted. Returns the header's
    bytes (None without one) and what was extracted; tar errors are the caller's to word."""
    if checksum is not None:
        _check_file_checksum(archive, checksum)
    archive_size = archive.stat().st_size
    dest.mkdir(parents=True)
    _check_free_space(dest, archive_size)
    found: dict[str, dict[str, Any]] = {}
    header: bytes | None = None
    with tarfile.open(archive, mode="r:", tarinfo=_PlainTarInfo) as tar:
        for member in tar:
            _check_plain(member, archive_size)
            if member.name == header_name and header is None:
                header = _read_header(tar, member)
                continue
            check_member(member, found)
            found[member.name] = _extract_member(tar, member, dest / member.name)
    return header, found


def _check_file_checksum(archive: Path, expected: str) -> None:
    wanted = expected.strip().lower()
    if not _SHA256.fullmatch(wanted):
        raise BadRequest(f"Wrong input: checksum {expected!r} is not a sha256 hex digest")
    if file_sha256(archive) != wanted:
        raise InvalidSnapshot(f"checksum mismatch: the file's sha256 is not {wanted}")


class _PlainTarInfo(tarfile.TarInfo):
    """Refuses, before tarfile acts on them, the header kinds a snapshot never holds:
    GNU sparse members (whose few stored bytes unpack to any size), long-name records,
    global headers, links, folders and devices, and pax headers too large to hold."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type not in (*_PLAIN_FILE, tarfile.XHDTYPE):
            raise InvalidSnapshot(
                f"archive member {self.name[:100]!r} is not a plain file "
                f"(tar type {self.type!r}); a snapshot holds plain files only"
            )
        if self.type == tarfile.XHDTYPE and self.size > MAX_PAX_HEADER_BYTES:
            raise InvalidSnapshot(
                f"an extended tar header of {self.size} bytes is larger than any a "
                f"snapshot has ({MAX_PAX_HEADER_BYTES})"
            )
        member: tarfile.TarInfo = tarfile.TarInfo._proc_member(self, tar)  # type: ignore[attr-defined]
        return member


def _check_plain(member: tarfile.TarInfo, archive_size: int) -> None:
    """A member must be a plain, non-sparse file whose declared bytes are all in the
    archive: then unpacking writes no more than the archive's own size."""
    sparse = member.sparse is not None or any(
        key.startswith("GNU.sparse") for key in member.pax_headers
    )
    if sparse or member.type not in _PLAIN_FILE:
        raise InvalidSnapshot(
            f"archive member {member.name[:100]!r} is a sparse or special file; "
            "a snapshot holds plain files only"
        )
    if member.size < 0 or member.offset_data + member.size > archive_size:
        raise InvalidSnapshot(
            f"archive member {member.name[:100]!r} declares {member.size} bytes, more "
            "than the archive holds: the archive is truncated or crafted"
        )


def _check_free_space(dest: Path, needed: int) -> None:
    """Unpacking writes at most the archive's size (see ``_check_plain``); refuse
    before writing anything if the disk cannot take that."""
    free = shutil.disk_usage(dest).free
    if free < needed:
        raise InsufficientStorage(
            f"unpacking the snapshot needs up to {needed} bytes, the disk has {free} free"
        )


def _check_member(member: tarfile.TarInfo, found: dict[str, dict[str, Any]]) -> None:
    if not _MEMBER.fullmatch(member.name):
        raise InvalidSnapshot(f"unexpected archive member {member.name!r}")
    if member.name in found:
        raise InvalidSnapshot(f"archive member {member.name!r} appears twice")
    if len(found) >= MAX_MEMBERS:
        raise InvalidSnapshot(f"the archive has more than {MAX_MEMBERS} members")


def _read_header(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_HEADER_BYTES:
        raise InvalidSnapshot(
            f"{HEADER} is {member.size} bytes, larger than any Quiver writes "
            f"(at most {MAX_HEADER_BYTES})"
        )
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    return source.read()


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> dict[str, Any]:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise StorageError(f"Cannot unpack snapshot member {member.name}: {reason(exc)}") from exc
    return {"sha256": digest.hexdigest(), "size": size}


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSnapshot(f"{HEADER} is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidSnapshot(f"{HEADER} is not a JSON object")
    if header.get("format_version") != FORMAT_VERSION:
        raise InvalidSnapshot(
            f"unknown snapshot format version {header.get('format_version')!r}; "
            f"this Quiver reads version {FORMAT_VERSION}"
        )
    files = header.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("size"), int)
        for entry in files.values()
    ):
        raise InvalidSnapshot(f"{HEADER} has no valid `files` table")
    if DB_FILE not in files:
        raise InvalidSnapshot(f"{HEADER} lists no {DB_FILE}")
    return header


def _verify_members(expected: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]) -> None:
    missing = sorted(set(expected) - set(found))
    if missing:
        raise InvalidSnapshot(
            f"member {missing[0]} listed in {HEADER} is missing"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + ": the archive is truncated or incomplete"
        )
    extra = sorted(set(found) - set(expected))
    if extra:
        raise InvalidSnapshot(f"member {extra[0]} is not listed in {HEADER}")
    for name, entry in sorted(expected.items()):
        got = found[name]
        if got["size"] != entry["size"] or got["sha256"] != entry["sha256"]:
            raise InvalidSnapshot(
                f"member {name} is corrupted: sha256 {got['sha256']} ({got['size']} bytes), "
                f"expected {entry['sha256']} ({entry['size']} bytes)"
            )


def _verify_segment_manifests(dest: Path, found: dict[str, dict[str, Any]]) -> None:
    """Each unpacked segment manifest must name only index files of its own folder that
    came in the archive with the checksum it records; a mismatch is a bad snapshot,
    never a file to rebuild or, worse, a path to follow later."""
    for member in sorted(m for m in found if m.endswith("/" + MANIFEST)):
        folder = member.rsplit("/", 1)[0]
        try:
            manifest = SegmentManifest.from_json((dest / member).read_bytes(), Path(folder))
        except (StorageError, ValueError, KeyError, TypeError) as exc:
            detail = exc.message if isinstance(exc, StorageError) else "unreadable manifest"
            raise InvalidSnapshot(f"segment manifest {member}: {detail}") from exc
        for entry in manifest.indexes.values():
            if entry is None:
                continue
            got = found.get(f"{folder}/{entry.file}")
            if got is None or got["sha256"] != entry.sha256:
                raise InvalidSnapshot(
                    f"segment manifest {member} names {entry.file}, which is missing from "
                    "the archive or does not match the checksum it records"
                )


def _fsync_tree(root: Path) -> None:
    """Make the unpacked folders' entries durable before the folder is renamed into place."""
    for folder, _, _ in os.walk(root, topdown=False):
        fsync_dir(Path(folder))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _quiver_version() -> str:
    try:
        return version("quiver")
    except PackageNotFoundError:
        return "0.0.0"
