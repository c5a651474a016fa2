"""Bundles: one archive of several snapshot archives, for a sharded collection (its
shards' snapshots) and for the whole storage (every collection's). Pure file work, as
``storage/snapshots.py`` whose tar checks and helpers it shares.

Layout (``BUNDLE_VERSION`` 1), an uncompressed tar::

    shards/<i>.snapshot              a sharded collection: shard i's snapshot
    collections/<name>.snapshot      a full-storage snapshot: each collection's
                                     snapshot (itself a bundle when sharded)
    bundle.json                      format_version, kind ("sharded" | "storage"),
                                     created, quiver_version, meta, and
                                     files: {member: {"sha256", "size"}}

Members are verified against ``bundle.json`` on unpacking (plain files within the
archive's size, names from the layout above only); each archive inside is verified
again, as any snapshot, when it is recovered.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import tarfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson

from server.errors import InvalidSnapshot, StorageError, reason
from server.storage.segment_store import fsync_dir
from server.storage.snapshots import (
    CHECKSUM_SUFFIX,
    SUFFIX,
    SnapshotDescription,
    _add_member,
    _fsync_tree,
    _Hashing,
    _PlainTarInfo,
    _quiver_version,
    _verify_members,
    _write_synced,
    describe,
    extract_members,
)

log = logging.getLogger(__name__)

BUNDLE_VERSION = 1
BUNDLE_HEADER = "bundle.json"
BUNDLE_KINDS = ("sharded", "storage")
_BUNDLE_MEMBER = re.compile(
    r"shards/\d{1,6}\.snapshot|collections/[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}\.snapshot"
)


@dataclass(frozen=True, slots=True)
class Bundle:
    """An unpacked, verified bundle: its kind, its ``meta`` and each member's file."""

    kind: str
    meta: dict[str, Any]
    members: dict[str, Path]


def write_bundle(
    folder: Path, prefix: str, kind: str, parts: list[tuple[str, Path]], meta: dict[str, Any]
) -> SnapshotDescription:
    """Archive the snapshot files ``parts`` (member name, file) into one new bundle in
    ``folder``; it appears whole (temp name, fsync, rename) or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
    name = f"{prefix[:200]}-{stamp}-{secrets.token_hex(4)}{SUFFIX}"
    temp = folder / f".tmp-{uuid.uuid4().hex}"
    checksum_temp = temp.with_suffix(CHECKSUM_SUFFIX)
    try:
        checksum = _write_bundle_archive(temp, kind, parts, meta)
        _write_synced(checksum_temp, checksum.encode())
        os.replace(checksum_temp, folder / f"{name}{CHECKSUM_SUFFIX}")
        os.replace(temp, folder / name)
        fsync_dir(folder)
    except OSError as exc:
        raise StorageError(f"Cannot write {kind} snapshot: {reason(exc)}") from exc
    finally:
        temp.unlink(missing_ok=True)
        checksum_temp.unlink(missing_ok=True)
    log.info("snapshot created", extra={"snapshot": name, "kind": kind})
    return describe(folder / name)


def _write_bundle_archive(
    path: Path, kind: str, parts: list[tuple[str, Path]], meta: dict[str, Any]
) -> str:
    files: dict[str, dict[str, Any]] = {}
    with open(path, "wb") as raw:
        out = _Hashing(raw)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for member, source in parts:
                with open(source, "rb") as handle:
                    files[member] = _add_member(tar, member, handle)
            header = {
                "format_version": BUNDLE_VERSION,
                "kind": kind,
                "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                "quiver_version": _quiver_version(),
                "meta": meta,
                "files": files,
            }
            _add_member(tar, BUNDLE_HEADER, BytesIO(orjson.dumps(header)))
        raw.flush()
        os.fsync(raw.fileno())
        return out.digest.hexdigest()


def is_bundle(archive: Path) -> bool:
    """Whether ``archive`` is a bundle (its first member is a snapshot file) rather than
    one collection's snapshot (whose first member is ``points.sqlite``)."""
    try:
        with tarfile.open(archive, mode="r:", tarinfo=_PlainTarInfo) as tar:
            first = tar.next()
    except (tarfile.TarError, EOFError, InvalidSnapshot, OSError):
        return False  # read again, and refused with its reason, as a plain snapshot
    return first is not None and (
        first.name == BUNDLE_HEADER or bool(_BUNDLE_MEMBER.fullmatch(first.name))
    )


def extract_bundle(archive: Path, dest: Path, checksum: str | None = None) -> Bundle:
    """Unpack a bundle into the new folder ``dest`` and verify every member against
    ``bundle.json``; :class:`InvalidSnapshot` otherwise (``dest`` is the caller's)."""
    try:
        header, found = extract_members(archive, dest, checksum, BUNDLE_HEADER, _check_member)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidSnapshot(f"{archive.name} is not a readable snapshot archive: {exc}") from exc
    parsed = _parse_bundle_header(header, archive.name)
    _verify_members(parsed["files"], found)
    _fsync_tree(dest)
    return Bundle(parsed["kind"], parsed["meta"], {name: dest / name for name in sorted(found)})


def _check_member(member: tarfile.TarInfo, found: dict[str, dict[str, Any]]) -> None:
    if not _BUNDLE_MEMBER.fullmatch(member.name) or member.name in found:
        raise InvalidSnapshot(f"unexpected or repeated bundle member {member.name!r}")


def _parse_bundle_header(raw: bytes | None, archive: str) -> dict[str, Any]:
    if raw is None:
        raise InvalidSnapshot(f"{archive} has no {BUNDLE_HEADER}: the archive is truncated")
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSnapshot(f"{BUNDLE_HEADER} is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format_version") != BUNDLE_VERSION:
        raise InvalidSnapshot(f"unknown bundle format; this Quiver reads version {BUNDLE_VERSION}")
    if header.get("kind") not in BUNDLE_KINDS or not isinstance(header.get("meta"), dict):
        raise InvalidSnapshot(f"{BUNDLE_HEADER} names no known kind or has no meta")
    files = header.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("size"), int)
        for e in files.values()
    ):
        raise InvalidSnapshot(f"{BUNDLE_HEADER} has no valid `files` table")
    return header
