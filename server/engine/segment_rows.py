"""A sealed segment's row columns in a side file that every worker maps (ADR 0013).

With several worker processes each one loads every sealed segment, and each used to
compute its own id column (values, sorted lookup, ~20 bytes a point) and version array
(8 bytes a point) from the point store: at 390k points some 11 MB per worker, copied.
While workers share graphs (``shared_graphs.graphs_shared``), the owner writes those
arrays once into ``rows.columns`` beside the segment's index files, and every process,
the owner included, maps them back:

* the id column read-only (``mmap.ACCESS_READ``): sealed rows never move, so the
  file written from the manifest's ids is right for the segment's whole life;
* the versions copy-on-write (``mmap.ACCESS_COPY``): the file holds the versions the
  owner read when it wrote it; a process whose point store says otherwise for some
  rows (a payload written since) overwrites those rows, which copies their pages
  into that process only. A payload write in the owner does the same.

Segment folders are written whole and never changed; the side file is added to an
existing one by the owner with a temporary name and a rename, so a reader sees no file
or the whole file. Snapshots leave it out (they take manifests and index files only);
a folder without it is mapped after the owner's next open writes it, and until then
each process computes its own columns as before. A single process (``QUIVER_WORKERS``
= 1) never writes nor reads it.
"""

from __future__ import annotations

import logging
import mmap
import os
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson

from server.engine.id_column import IdColumn
from server.engine.point_ids import PointId
from server.engine.shared_graphs import graphs_shared

log = logging.getLogger(__name__)

ROWS_FILE = "rows.columns"
_MAGIC = b"QVROWS1\n"
_ALIGN = 64
_HEADER_LENGTH = 8  # after the magic: the JSON header's length, little-endian


def shared_rows(
    folder: Path, ids: Sequence[PointId], versions: Sequence[int] | np.ndarray, owner: bool
) -> tuple[IdColumn, np.ndarray] | None:
    """The id column and versions of the segment in ``folder`` (rows ``ids`` with
    ``versions``, as the point store has them now) mapped from its side file while
    workers share memory; None when they do not, or the file is missing (written here
    first when ``owner``) or unreadable."""
    if not graphs_shared():
        return None
    found = _mapped(folder, len(ids))
    if found is None and owner:
        try:
            column = ids if isinstance(ids, IdColumn) else IdColumn(ids)
            _write(folder, column, np.array(versions, dtype=np.int64))
        except OSError:
            log.warning("segment rows file not written", extra={"folder": str(folder)})
            return None
        found = _mapped(folder, len(ids))
    if found is None:
        return None
    column, mapped_versions = found
    current = np.array(versions, dtype=np.int64).reshape(len(ids))
    differ = np.flatnonzero(mapped_versions != current)
    mapped_versions[differ] = current[differ]  # copies those pages into this process only
    return column, mapped_versions


def _write(folder: Path, column: IdColumn, versions: np.ndarray) -> None:
    """The file, written under a temporary name and renamed. Not fsynced: it is a
    cache, and a file a crash left torn fails its checksum and is written again."""
    arrays = {**column.arrays(), "versions": versions}
    layout: dict[str, list[object]] = {}
    body = bytearray()
    for name, array in arrays.items():
        layout[name] = [len(body), array.dtype.str, len(array)]
        body += np.ascontiguousarray(array).tobytes()
        body += bytes(-len(body) % _ALIGN)
    text = orjson.dumps({"arrays": layout, "crc32": zlib.crc32(body)})
    head = _MAGIC + len(text).to_bytes(_HEADER_LENGTH, "little") + text
    temp = folder / f".{ROWS_FILE}.{uuid.uuid4().hex}"
    try:
        with open(temp, "wb") as out:
            out.write(head + bytes(-len(head) % _ALIGN))
            out.write(body)
        os.replace(temp, folder / ROWS_FILE)
    finally:
        temp.unlink(missing_ok=True)


def _mapped(folder: Path, count: int) -> tuple[IdColumn, np.ndarray] | None:
    """The columns of ``folder``'s side file when it holds ``count`` rows, else None."""
    try:
        with open(folder / ROWS_FILE, "rb") as handle:
            shared = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            private = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return None
    try:
        arrays = _arrays(shared, private)
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        log.warning("segment rows file unreadable; rows computed", extra={"folder": str(folder)})
        return None
    if any(len(arrays[name]) != count for name in ("values", "order", "versions")):
        return None
    versions = arrays.pop("versions")
    return IdColumn.from_arrays(arrays), versions


def _arrays(shared: mmap.mmap, private: mmap.mmap) -> dict[str, np.ndarray]:
    """Every array of the file: the versions from the copy-on-write mapping, the rest
    read-only."""
    if shared[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not a segment rows file")
    length = int.from_bytes(shared[len(_MAGIC) : len(_MAGIC) + _HEADER_LENGTH], "little")
    first = len(_MAGIC) + _HEADER_LENGTH
    header = orjson.loads(shared[first : first + length])
    start = -(-(first + length) // _ALIGN) * _ALIGN
    if zlib.crc32(memoryview(shared)[start:]) != header["crc32"]:
        raise ValueError("segment rows file damaged")
    arrays: dict[str, np.ndarray] = {}
    for name, (offset, dtype, size) in header["arrays"].items():
        source = private if name == "versions" else shared
        kind = np.dtype(dtype)
        arrays[name] = (
            np.frombuffer(source, dtype=kind, count=size, offset=start + offset)
            if size
            else np.zeros(0, dtype=kind)
        )
    return arrays
