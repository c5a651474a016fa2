"""Qdrant's ``slice`` condition: ``{"slice": {"total": n, "index": i}}`` keeps the
points whose id hashes to slice ``i`` of ``n``, for parallel scans and reproducible
samples.

The hash is SipHash-2-4 with a zero key over the id's canonical bytes (8
little-endian bytes for an integer id, the 16 RFC 4122 bytes of a UUID), reduced
modulo ``total``, exactly as Qdrant 1.19 and qdrant-client's local mode define it, so
a slice holds the same points everywhere. Computed here for many ids at once: the
SipHash rounds run on numpy ``uint64`` arrays (wrapping adds), one lane per id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from server.engine.point_ids import PointId

U64 = npt.NDArray[np.uint64]

_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _rotl(x: U64, bits: int) -> U64:
    return (x << np.uint64(bits)) | (x >> np.uint64(64 - bits))


def _round(v: list[U64]) -> None:
    v0, v1, v2, v3 = v
    v0 = v0 + v1
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = v2 + v3
    v3 = _rotl(v3, 16) ^ v2
    v0 = v0 + v3
    v3 = _rotl(v3, 21) ^ v0
    v2 = v2 + v1
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash24(blocks: Sequence[U64], length: int) -> U64:
    """SipHash-2-4 (zero key) of messages of ``length`` bytes, all a multiple of 8:
    ``blocks[j]`` is the j-th little-endian 8-byte word of every message."""
    n = len(blocks[0])
    v = [np.full(n, init, dtype=np.uint64) for init in _INIT]
    last = np.full(n, (length & 0xFF) << 56, dtype=np.uint64)
    for block in [*blocks, last]:
        v[3] = v[3] ^ block
        _round(v)
        _round(v)
        v[0] = v[0] ^ block
    v[2] = v[2] ^ np.uint64(0xFF)
    for _ in range(4):
        _round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def slice_of(ids: Sequence[PointId], total: int) -> npt.NDArray[np.int64]:
    """The slice (of ``total``) each id belongs to."""
    out = np.zeros(len(ids), dtype=np.int64)
    numeric = [i for i, point_id in enumerate(ids) if isinstance(point_id, int)]
    if numeric:
        words = np.array([ids[i] for i in numeric], dtype=np.uint64)
        out[numeric] = (siphash24([words], 8) % np.uint64(total)).astype(np.int64)
    uuids = [i for i, point_id in enumerate(ids) if not isinstance(point_id, int)]
    if uuids:
        raw = b"".join(uuid.UUID(str(ids[i])).bytes for i in uuids)
        words = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
        hashed = siphash24([words[:, 0].copy(), words[:, 1].copy()], 16)
        out[uuids] = (hashed % np.uint64(total)).astype(np.int64)
    return out
