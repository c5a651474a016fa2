"""A small versioned container for serialised indexes.

``MAGIC | format version (u32) | header length (u32) | JSON header | blobs``. The
header names the backend, its parameters and the byte length of each blob, so a
reader can refuse an unknown version or a truncated file with a clear message.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAGIC = b"QVIX"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sII")


class IndexFormatError(ValueError):
    """Raised for data that is not a readable Quiver index."""


def pack(header: dict[str, Any], blobs: list[bytes]) -> bytes:
    meta = dict(header, blob_sizes=[len(b) for b in blobs])
    encoded = json.dumps(meta, sort_keys=True).encode()
    return b"".join([_PREFIX.pack(MAGIC, FORMAT_VERSION, len(encoded)), encoded, *blobs])


Buffer = bytes | memoryview
"""What an index is read from: bytes, or a view of a memory-mapped segment file."""


def unpack(data: Buffer) -> tuple[dict[str, Any], list[Buffer]]:
    """Header and blobs; from a ``memoryview`` (a memory-mapped file) the blobs are
    zero-copy views of it."""
    if len(data) < _PREFIX.size:
        raise IndexFormatError("index data is truncated")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise IndexFormatError("not a Quiver index (bad magic bytes)")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"unknown index format version {version}; this Quiver reads {FORMAT_VERSION}"
        )
    start = _PREFIX.size
    header: dict[str, Any] = json.loads(bytes(data[start : start + header_len]))
    offset = start + header_len
    blobs = []
    for size in header.pop("blob_sizes"):
        blob = data[offset : offset + size]
        if len(blob) != size:
            raise IndexFormatError("index data is truncated")
        blobs.append(blob)
        offset += size
    return header, blobs
