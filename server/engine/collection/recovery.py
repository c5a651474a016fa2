"""Restart recovery of one collection: rebuild its segments from the point store.

The point store is the truth. Each saved segment keeps the points whose stored
vectors still equal what its indexes hold (compared through a secondary's own
encoding for float16 / int8 LeanVec); every other point goes to the appendable
segment. Called by ``facade.Collection.open`` before the collection is shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from index.multivector import Ragged
from index.registry import (
    AnyIndex,
    create_index,
    create_multi_index,
    create_sparse_index,
    index_from_bytes,
    is_multi_vector,
    is_sparse,
)
from index.sparse import SparseRows, SparseVector
from server.engine.config import CollectionConfig, VectorParams
from server.engine.index_spec import read_spec
from server.engine.native_memory import release_free_memory
from server.engine.point_ids import point_id_from_text
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import PointBatch, SealedParts
from server.engine.segment_set import SegmentSet
from server.engine.shared_graphs import load_index
from server.storage.point_store import LoadedPoint, PointStore
from server.storage.segment_store import SegmentManifest, SegmentStore


def reload(
    segments: SegmentSet, store: PointStore, segment_store: SegmentStore, config: CollectionConfig
) -> int:
    """Fill ``segments`` (fresh) from disk; the number of points loaded."""
    count = _fill(segments, store, segment_store, config)
    release_free_memory()  # every stored point was read back: return that heap
    return count


def _fill(
    segments: SegmentSet, store: PointStore, segment_store: SegmentStore, config: CollectionConfig
) -> int:
    points = {p.pid: p for p in store.load_all()}
    claimed: set[str] = set()
    for loaded in segment_store.load_all():
        segment = restore_segment(loaded.manifest, loaded.blobs, points, claimed, config, store)
        segments.sealed[segment.segment_id] = segment
    rest = [p for pid, p in points.items() if pid not in claimed]
    if rest:
        batch = batch_from_loaded([p.pid for p in rest], rest, config)
        segments.appendable.upsert(batch, 0)
        for i, point in enumerate(rest):
            segments.appendable.set_payload(i, batch.payloads[i], point.version)
    return len(points)


def restore_segment(
    manifest: SegmentManifest,
    blobs: dict[str, memoryview | None],
    points: dict[str, LoadedPoint],
    claimed: set[str],
    config: CollectionConfig,
    store: PointStore | None = None,
) -> SealedSegment:
    """A saved segment with its indexes, its rows alive only where the point store
    still holds the indexed vectors (and no earlier segment claimed the point)."""
    stored = [points.get(pid) for pid in manifest.point_ids]
    batch = batch_from_loaded(manifest.point_ids, stored, config)
    spec = read_spec(manifest.spec)
    alive = np.array([p is not None and p.pid not in claimed for p in stored], dtype=bool)
    indexes: dict[str, AnyIndex] = {}
    for name, params in config.vectors.items():
        indexes[name], exact = _index_of(blobs.get(name), params, batch, name)
        spec = None if exact else spec
        alive &= _holds(indexes[name], batch, name) | ~batch.present[name]
    for name in config.sparse_vectors:
        indexes[name], exact = _sparse_index_of(blobs.get(name), batch, name)
        spec = None if exact else spec
        alive &= _holds(indexes[name], batch, name) | ~batch.present[name]
    claimed.update(p.pid for p, ok in zip(stored, alive, strict=True) if p is not None and ok)
    versions = [0 if p is None else p.version for p in stored]
    parts = SealedParts(batch.ids, batch.payloads, versions, indexes, batch.present)
    reader = store if config.on_disk_payload else None
    return SealedSegment(
        manifest.segment_id, parts, alive, spec, schema=config.payload_schema,
        payload_reader=reader,
    )  # fmt: skip


def _index_of(
    blob: memoryview | None, params: VectorParams, batch: PointBatch, name: str
) -> tuple[AnyIndex, bool]:
    """The saved index, or (no file: an exact segment) an exact one built from the
    batch; True when it is the exact one."""
    if blob is not None:
        return load_index(blob), False
    if params.is_multi:
        exact = create_multi_index("maxsim", params.size, params.distance)
        exact.add(batch.tokens[name])
        return exact, True
    flat = create_index("flat", params.size, params.distance)
    flat.add(batch.vectors[name])
    return flat, True


def _sparse_index_of(
    blob: memoryview | None, batch: PointBatch, name: str
) -> tuple[AnyIndex, bool]:
    if blob is not None:
        return index_from_bytes(blob), False
    exact = create_sparse_index()
    exact.add(batch.sparse[name])
    return exact, True


def _holds(index: AnyIndex, batch: PointBatch, name: str) -> np.ndarray:
    """Per row: does the index still hold exactly this stored vector? Compressed
    secondaries (float16, int8) compare encodings, not lossy decoded floats."""
    if is_sparse(index):
        return index.same_rows(batch.sparse[name])
    if is_multi_vector(index):
        return index.same_rows(batch.tokens[name])
    return index.same_rows(batch.vectors[name])


def batch_from_loaded(
    pids: Sequence[str], stored: Sequence[LoadedPoint | None], config: CollectionConfig
) -> PointBatch:
    """Stored points -> a batch (missing points, None, become empty zero rows)."""
    count = len(stored)
    dense = {n: p for n, p in config.vectors.items() if not p.is_multi}
    vectors = {n: np.zeros((count, p.size), dtype=np.float32) for n, p in dense.items()}
    sets: dict[str, list[np.ndarray]] = {
        n: [np.zeros((0, p.size), dtype=np.float32)] * count
        for n, p in config.vectors.items()
        if p.is_multi
    }
    present = {n: np.zeros(count, dtype=bool) for n in [*config.vectors, *config.sparse_vectors]}
    sparse: dict[str, list[SparseVector | None]] = {
        n: [None] * count for n in config.sparse_vectors
    }
    for i, point in enumerate(stored):
        if point is None:
            continue
        for name, data in point.vectors.items():
            if name in sparse:
                sparse[name][i] = SparseVector.from_bytes(data)
                present[name][i] = True
            elif name in vectors:
                vectors[name][i] = np.frombuffer(data, dtype=np.float32)
                present[name][i] = True
            elif name in sets:
                sets[name][i] = np.frombuffer(data, dtype=np.float32).reshape(
                    -1, config.vectors[name].size
                )
                present[name][i] = True
    ids = [point_id_from_text(pid) for pid in pids]
    payloads = [orjson.loads(p.payload) if p is not None else {} for p in stored]
    tokens = {n: Ragged.from_arrays(s, config.vectors[n].size) for n, s in sets.items()}
    rows = {n: SparseRows.of(items) for n, items in sparse.items()}
    return PointBatch(ids, vectors, present, payloads, tokens, rows)
