"""Point reads of one collection: retrieve, scroll, a point's stored vector, and the
``Record`` each hit or point becomes (Qdrant's ``segments_retriever``).

Called with the collection's read lock held (``facade.Collection``). Vectors come from
the segments, except the compressed secondaries of sealed segments (float16 / int8
LeanVec), whose exact copy is read from the point store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.base import VectorIndex
from index.registry import is_multi_vector, is_sparse
from server.engine.collection.row_lookup import live_rows
from server.engine.config import CollectionConfig
from server.engine.filters import Filter
from server.engine.ordering import OrderBy
from server.engine.payload import JsonPath, PayloadSelector
from server.engine.point_ids import PointId, point_id_to_text
from server.engine.requests import VectorSelector
from server.engine.results import Record, ScrollPage, VectorOutput
from server.engine.sealed_segment import SealedSegment
from server.engine.segment_set import AnySegment, SegmentSet
from server.engine.sparse_vector import SparseVector, sparse_wire
from server.errors import InvalidVector, PointNotFound
from server.storage.point_store import PointStore


@dataclass(frozen=True, slots=True)
class RecordReader:
    """Turns segment rows into ``Record``s with the payload and vectors a request asks."""

    store: PointStore
    config: CollectionConfig

    def record(
        self,
        segment: AnySegment,
        row: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> Record:
        return Record(
            segment.ids[row],
            with_payload.apply(segment.payload(row)),
            self.vector_output(segment, row, with_vector),
        )

    def vector_output(
        self, segment: AnySegment, row: int, with_vector: VectorSelector
    ) -> VectorOutput:
        if with_vector is False:
            return None
        vectors: dict[str, Any] = {
            name: vector.tolist() for name, vector in self.exact_vectors(segment, row).items()
        }
        sparse = segment.sparse_vectors(row) if self.config.sparse_vectors else {}
        if not self.config.named_vectors and not sparse:
            return next(iter(vectors.values()), None)
        vectors |= {name: sparse_wire(vector) for name, vector in sparse.items()}
        names = vectors.keys() if with_vector is True else with_vector
        return {name: vectors[name] for name in names if name in vectors}

    def exact_vectors(self, segment: AnySegment, row: int) -> dict[str, np.ndarray]:
        """A row's vectors as written: compressed secondaries (float16 / int8 LeanVec)
        are replaced by the exact copy in the point store."""
        vectors = segment.vectors(row)
        if isinstance(segment, SealedSegment):
            pid = point_id_to_text(segment.ids[row])
            for name in [n for n in vectors if segment.lossy(n)]:
                stored = self.store.vectors_of([pid], name).get(pid)
                if stored is not None:
                    params = self.config.vectors[name]
                    vectors[name] = _decoded(stored, params.size)
                    if not params.is_multi:
                        vectors[name] = vectors[name][0]
        return vectors


def retrieve(
    segments: SegmentSet,
    reader: RecordReader,
    ids: Sequence[PointId],
    with_payload: PayloadSelector,
    with_vector: VectorSelector,
) -> list[Record]:
    """The points of ``ids`` that exist, in the order asked."""
    found = [segments.locate(i) for i in ids]
    return [reader.record(s, row, with_payload, with_vector) for s, row in filter(None, found)]


def payload_values(segments: SegmentSet, ids: Sequence[PointId], path: JsonPath) -> list[list[Any]]:
    """The values under ``path`` of each point of ``ids`` (arrays flattened, as filters
    see them; none for a point that is gone), without building a record per point:
    grouped search reads its ``group_by`` key of every candidate this way. An indexed
    key is read from the values the segment keeps in memory for its indexes; any other
    from the payloads, one batched read per segment."""
    found: dict[PointId, list[Any]] = {}
    pending = list(ids)
    for segment in segments:  # a point is live in one segment only
        rows, missed = live_rows(segment, pending)
        for (point_id, _), payload in zip(rows, _payloads_for(segment, rows, path), strict=True):
            found[point_id] = path.values(payload)
        pending = missed
        if not pending:
            break
    return [found.get(point_id, []) for point_id in ids]


def _payloads_for(
    segment: AnySegment, rows: Sequence[tuple[PointId, int]], path: JsonPath
) -> list[dict[str, Any]]:
    """Payloads of ``rows`` holding at least ``path``'s top-level key: the kept copy of
    the indexed keys when that key is one (no store read), else the stored payloads."""
    if not rows:
        return []
    kept_keys = segment.payload_indexes.top_keys()
    first = path.items[0]
    if kept_keys is None or (isinstance(first, str) and first in kept_keys):
        kept = segment.payloads.kept
        return [kept(row) for _, row in rows]
    return segment.payloads_at([row for _, row in rows])


def scroll(
    segments: SegmentSet,
    reader: RecordReader,
    flt: Filter | None,
    page: tuple[int, PointId | None],
    with_payload: PayloadSelector,
    with_vector: VectorSelector,
) -> ScrollPage:
    """One page (``limit``, start ``offset``) of matching points in id order."""
    limit, offset = page
    picked = segments.scroll(flt, limit, offset)
    records = [reader.record(s, r, with_payload, with_vector) for s, r in picked[:limit]]
    next_offset = picked[limit][0].ids[picked[limit][1]] if len(picked) > limit else None
    return ScrollPage(records, next_offset)


def scroll_ordered(
    segments: SegmentSet,
    reader: RecordReader,
    flt: Filter | None,
    page: tuple[OrderBy, int],
    with_payload: PayloadSelector,
    with_vector: VectorSelector,
) -> ScrollPage:
    """One ``order_by`` page: records with their order values, no next offset."""
    order, limit = page
    picked = segments.ordered(flt, order, limit)
    found = [reader.record(s, r, with_payload, with_vector) for s, r, _ in picked]
    return ScrollPage(found, None, [value for _, _, value in picked])


def sample(
    segments: SegmentSet,
    reader: RecordReader,
    flt: Filter | None,
    limit: int,
    with_payload: PayloadSelector,
    with_vector: VectorSelector,
) -> list[Record]:
    """Up to ``limit`` matching points drawn at random (fresh entropy per call)."""
    picked = segments.sample(flt, limit, np.random.default_rng())
    return [reader.record(s, r, with_payload, with_vector) for s, r in picked]


def stored_vector(
    segments: SegmentSet, reader: RecordReader, point_id: PointId, name: str
) -> np.ndarray:
    """The stored vector ``name`` of a point, for queries that name a point."""
    segment, row = _holding(segments, point_id, name)
    return reader.exact_vectors(segment, row)[name]


def stored_vectors(
    segments: SegmentSet, reader: RecordReader, point_ids: Sequence[PointId], name: str
) -> list[np.ndarray]:
    """The stored vectors ``name`` of several points, as :func:`stored_vector`: a query
    by example names a few, and the rows one sealed segment holds exactly (its index
    is lossless and not multi-vector) are read in one call."""
    located = [_holding(segments, point_id, name) for point_id in point_ids]
    out = [np.empty(0, dtype=np.float32)] * len(located)
    batched: dict[int, list[int]] = {}
    for i, (segment, row) in enumerate(located):
        if _exact_dense(segment, name) is None:
            out[i] = reader.exact_vectors(segment, row)[name]
        else:
            batched.setdefault(id(segment), []).append(i)
    for at in batched.values():
        index = _exact_dense(located[at[0]][0], name)
        assert index is not None
        rows = np.array([located[i][1] for i in at])
        for i, vector in zip(at, index.row_vectors(rows), strict=True):
            out[i] = vector
    return out


def _holding(segments: SegmentSet, point_id: PointId, name: str) -> tuple[AnySegment, int]:
    """Where a point lives, refused when it is gone or lacks vector ``name``."""
    found = segments.locate(point_id)
    if found is None:
        raise PointNotFound(point_id)
    if not found[0].has_vector(found[1], name):
        raise InvalidVector(f"Wrong input: point {point_id} has no vector {name!r}")
    return found


def _exact_dense(segment: AnySegment, name: str) -> VectorIndex | None:
    """A sealed segment's index of ``name`` when it holds plain rows exactly as written."""
    if not isinstance(segment, SealedSegment):
        return None
    index = segment.indexes[name]
    if is_multi_vector(index) or is_sparse(index) or not index.lossless:
        return None
    return index


def stored_sparse(segments: SegmentSet, point_id: PointId, name: str) -> SparseVector:
    """The stored sparse vector ``name`` of a point, for queries that name a point."""
    found = segments.locate(point_id)
    if found is None:
        raise PointNotFound(point_id)
    segment, row = found
    vector = segment.sparse_vectors(row).get(name)
    if vector is None:
        raise InvalidVector(f"Wrong input: point {point_id} has no vector {name!r}")
    return vector


def _decoded(data: bytes, dim: int) -> np.ndarray:
    """Stored float32 bytes as ``(n, dim)`` rows (one row for a dense vector)."""
    return np.frombuffer(data, dtype=np.float32).reshape(-1, dim).copy()
