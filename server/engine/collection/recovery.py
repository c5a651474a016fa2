"""Restart recovery of one collection: rebuild its segments from the point store.

The point store is the truth. Each saved segment keeps the points whose stored
vectors still equal what its indexes hold (compared through a secondary's own
encoding for float16 / int8 LeanVec); every other point goes to the appendable
segment. Called by ``facade.Collection.open`` before the collection is shared.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from index.flat import FlatIndex, FlatParams
from index.multivector import MaxSimIndex, MaxSimParams, Ragged
from index.registry import (
    AnyIndex,
    create_index,
    create_multi_index,
    create_sparse_index,
    index_from_bytes,
    is_multi_vector,
    is_sparse,
)
from server.engine.collection.stored_points import StoredPoints
from server.engine.config import CollectionConfig, VectorParams
from server.engine.index_spec import read_spec
from server.engine.native_memory import release_free_memory
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import PointBatch, SealedParts
from server.engine.segment_lifecycle import unindexed_mapped
from server.engine.segment_rows import shared_rows
from server.engine.segment_set import SegmentSet
from server.engine.shared_graphs import load_index
from server.engine.tenant_layout import VALUE_GRAPHS_BLOB, ValueGraphs
from server.storage.mapped_matrix import MappedMatrix
from server.storage.point_store import PointStore
from server.storage.segment_store import LoadedSegment, SegmentManifest, SegmentStore


def reload(
    segments: SegmentSet,
    store: PointStore,
    segment_store: SegmentStore,
    config: CollectionConfig,
) -> int:
    """Fill ``segments`` (fresh) from disk; the number of points loaded. The cyclic
    collector is paused meanwhile: every stored point becomes a few long-lived objects
    (an id, a payload dict), which it would otherwise scan again and again for nothing."""
    paused = gc.isenabled()
    gc.disable()
    try:
        count = _fill(segments, store, segment_store, config)
    finally:
        if paused:
            gc.enable()
    release_free_memory()  # every stored point was read back: return that heap
    return count


def _fill(
    segments: SegmentSet,
    store: PointStore,
    segment_store: SegmentStore,
    config: CollectionConfig,
) -> int:
    loaded = segment_store.load_all()
    # the rows kept by version read the store in two steps: only with no other writer,
    # which the folder's owner is (a collection opening for writes; a reader worker's
    # store has one, and its segments come without their hints: ``load_all``)
    kept = _installed_live_versions(loaded, config) if segment_store.owned else None
    stored = StoredPoints(store, config, dense_data=kept is None)
    claimed = np.zeros(len(stored) + 1, dtype=bool)  # the last row: the empty one
    for i, segment_files in enumerate(loaded):
        folder = segment_store.folder(segment_files.manifest.segment_id)
        segment = restore_segment(
            segment_files.manifest, segment_files.blobs, stored, claimed, config, store,
            rows_file=(folder, segment_store.owned),
            live_versions=None if kept is None else kept[i],
        )  # fmt: skip
        segments.sealed[segment.segment_id] = segment
    rest = np.flatnonzero(~claimed[: len(stored)])
    if len(rest):
        if kept is not None:
            stored.read_dense(rest)
        batch = stored.batch([stored.pids[r] for r in rest.tolist()], rest)
        segments.appendable.upsert(batch, 0)
        for i, version in enumerate(stored.versions_at(rest)):
            segments.appendable.set_payload(i, batch.payloads[i], version)
    return len(stored)


def _installed_live_versions(
    loaded: list[LoadedSegment], config: CollectionConfig
) -> list[np.ndarray] | None:
    """Each segment's ``LIVE_VERSIONS`` (installed from another replica's files) when
    every segment has one of the right length and a built index for every vector, all
    dense single vectors; else None, and every row is checked by its vectors."""
    if not loaded or config.sparse_vectors or any(p.is_multi for p in config.vectors.values()):
        return None
    kept: list[np.ndarray] = []
    for segment in loaded:
        data = segment.live_versions
        if data is None or len(data) != 8 * len(segment.manifest.point_ids):
            return None
        if any(segment.blobs.get(name) is None for name in config.vectors):
            return None
        kept.append(np.frombuffer(data, dtype="<i8"))
    return kept


def restore_segment(
    manifest: SegmentManifest,
    blobs: dict[str, memoryview | None],
    stored: StoredPoints,
    claimed: np.ndarray,
    config: CollectionConfig,
    store: PointStore | None = None,
    rows_file: tuple[Path, bool] | None = None,
    live_versions: np.ndarray | None = None,
) -> SealedSegment:
    """A saved segment with its indexes, its rows alive only where the point store
    still holds the indexed vectors (and no earlier segment claimed the point);
    ``claimed`` (per store row) gains the rows it keeps. ``rows_file``: the segment's
    folder and whether this process owns it, for ids and versions mapped from the
    side file all workers share (``segment_rows.py``).

    ``live_versions`` (an installed replica's, ``_installed_live_versions``): a row
    stays alive where its point's stored version is the one it was live at on the
    replica the files came from, with no vector read or compared. Versions are
    operation ids, never reused in a store: an equal version is the same point, so
    an indexed vector that is no longer stored is never kept; a row not kept sends its
    point, read from the store, to the appendable segment."""
    rows = stored.rows_of(manifest.point_ids)
    batch = stored.batch(manifest.point_ids, rows, dense=live_versions is None)
    spec = read_spec(manifest.spec)
    alive = (rows >= 0) & ~claimed[rows]
    if live_versions is not None:
        alive &= (live_versions >= 0) & (stored.version_array(rows) == live_versions)
    indexes: dict[str, AnyIndex] = {}
    folders = unindexed_mapped(config, store)
    for name, params in config.vectors.items():
        blob, folder = blobs.get(name), folders.get(name)
        indexes[name], exact = _index_of(blob, params, batch, name, folder)
        spec = None if exact else spec
        if live_versions is None:
            alive &= _holds(indexes[name], batch, name) | ~batch.present[name]
    for name in config.sparse_vectors:
        indexes[name], exact = _sparse_index_of(blobs.get(name), batch, name)
        spec = None if exact else spec
        alive &= _holds(indexes[name], batch, name) | ~batch.present[name]
    claimed[rows[alive]] = True
    versions = stored.versions_at(rows)
    parts = SealedParts(batch.ids, batch.payloads, versions, indexes, batch.present)
    reader = store if config.on_disk_payload else None
    graphs = blobs.get(VALUE_GRAPHS_BLOB)
    mapped = None
    if rows_file is not None:
        mapped = shared_rows(rows_file[0], batch.ids, versions, owner=rows_file[1])
    return SealedSegment(
        manifest.segment_id, parts, alive, spec, schema=config.payload_schema,
        payload_reader=reader, rows=mapped,
        value_graphs=None if graphs is None else ValueGraphs.from_bytes(graphs),
    )  # fmt: skip


def _index_of(
    blob: memoryview | None,
    params: VectorParams,
    batch: PointBatch,
    name: str,
    folder: Path | None = None,
) -> tuple[AnyIndex, bool]:
    """The saved index, or (no file: an exact segment) an exact one built from the
    batch, its rows mapped in a scratch file in ``folder`` when given (``on_disk``);
    True when it is the exact one."""
    if blob is not None:
        return load_index(blob), False
    if params.is_multi and folder is not None:
        items = batch.tokens[name]
        tokens = MappedMatrix.holding(folder, items.tokens)
        offsets = MappedMatrix.holding(folder, items.offsets[:, None]).reshape(-1)
        mapped = Ragged(tokens, offsets)
        return MaxSimIndex.over(mapped, params.distance, MaxSimParams(on_disk=True)), True
    if params.is_multi:
        exact = create_multi_index("maxsim", params.size, params.distance)
        exact.add(batch.tokens[name])
        return exact, True
    if folder is not None:
        rows = MappedMatrix.holding(folder, batch.vectors[name])
        return FlatIndex.over(rows, params.distance, FlatParams(on_disk=True)), True
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
