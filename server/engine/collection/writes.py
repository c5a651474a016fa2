"""Point writes of one collection: upsert, delete, payload rewrites (Qdrant's
``segments_updater``).

Each write is validated first, committed to the point store in one durable
transaction, then applied to the segments: old copies in sealed segments become
tombstones and new rows go to the appendable segment. Called with the collection's
write lock held (``facade.Collection``); sealing and ``on_change`` stay there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import orjson

from index.multivector import Ragged
from index.sparse import SparseRows
from server.engine.config import CollectionConfig
from server.engine.filters import Filter
from server.engine.payload import check_payload
from server.engine.point_ids import PointId, point_id_to_text
from server.engine.requests import PointsSelection, VectorColumns
from server.engine.segment import PointBatch
from server.engine.segment_set import SegmentSet
from server.engine.vectors import (
    PointVectors,
    column_vectors,
    point_vectors,
    prepare_matrix,
    vector_name,
)
from server.errors import BadRequest, InvalidVector, PointNotFound
from server.storage.point_store import PointRows, PointStore, WriteBatch

PayloadChange = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(slots=True)
class Upsert:
    """Points to write, deduplicated (last write of an id wins) and validated."""

    ids: list[PointId]
    vectors: PointVectors
    payloads: list[dict[str, Any]]
    update_mode: str = "upsert"
    update_filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class Writer:
    """Applies writes to a collection's point store and segments."""

    segments: SegmentSet
    store: PointStore

    def upsert(self, points: Upsert) -> int:
        """Write the points ``update_mode`` / ``update_filter`` select; the operation id."""
        chosen = self._select_for_update(points)
        if len(chosen) < len(points.ids):
            points = Upsert(
                [points.ids[i] for i in chosen],
                points.vectors.take(np.array(chosen, dtype=np.int64)),
                [points.payloads[i] for i in chosen],
            )
        vectors = points.vectors
        batch = PointBatch(
            points.ids,
            vectors.dense,
            vectors.present,
            points.payloads,
            vectors.tokens,
            vectors.sparse,
        )
        located = [self.segments.locate(point_id) for point_id in points.ids]
        known = [found is not None for found in located]
        op_id = self.store.commit(WriteBatch(put_points=_stored(batch, known)))
        for point_id, found in zip(points.ids, located, strict=True):
            if found is not None and found[0] is not self.segments.appendable:
                found[0].delete(point_id)
        self.segments.appendable.upsert(batch, op_id)
        return op_id

    def delete(self, selection: PointsSelection) -> int:
        ids = self.resolve(selection, must_exist=False)
        op_id = self.store.commit(WriteBatch(delete_pids=[point_id_to_text(i) for i in ids]))
        for point_id in ids:
            self.segments.delete(point_id)
        return op_id

    def rewrite_payloads(self, selection: PointsSelection, change: PayloadChange) -> int:
        """Replace each selected point's payload by ``change(old payload)``."""
        ids = self.resolve(selection, must_exist=selection.ids is not None)
        located = [self.segments.locate(i) for i in ids]
        new = [change(seg.payload(row)) for seg, row in filter(None, located)]
        encoded = [(point_id_to_text(i), _encode_payload(p)) for i, p in zip(ids, new, strict=True)]
        op_id = self.store.commit(WriteBatch(put_payloads=encoded))
        for (segment, row), payload in zip(filter(None, located), new, strict=True):
            segment.set_payload(row, payload, op_id)
        return op_id

    def resolve(self, selection: PointsSelection, *, must_exist: bool) -> list[PointId]:
        """The ids a selection names; with ``must_exist`` a missing one is an error."""
        if selection.ids is None:
            return [
                segment.ids[int(row)]
                for segment in self.segments
                for row in self.segments.matching_rows(segment, selection.filter)
            ]
        ids = list(dict.fromkeys(selection.ids))
        if must_exist:
            for point_id in ids:
                if self.segments.locate(point_id) is None:
                    raise PointNotFound(point_id)
            return ids
        return [i for i in ids if self.segments.locate(i) is not None]

    def _select_for_update(self, points: Upsert) -> list[int]:
        """Indices of the points this upsert writes, per ``update_mode`` / ``update_filter``."""
        mode, update_filter = points.update_mode, points.update_filter
        if mode == "upsert" and update_filter is None:
            return list(range(len(points.ids)))
        chosen = []
        for i, point_id in enumerate(points.ids):
            found = self.segments.locate(point_id)
            if found is None:
                if mode != "update_only":
                    chosen.append(i)
                continue
            if mode == "insert_only":
                continue
            segment, row = found
            if update_filter is not None and not update_filter.matches(
                point_id, segment.payload(row), partial(segment.has_vector, row)
            ):
                continue
            chosen.append(i)
        return chosen


def last_occurrences(ids: Sequence[PointId]) -> list[int]:
    """Indices of the last occurrence of each id, in first-seen order (last write wins)."""
    last: dict[PointId, int] = {}
    for i, point_id in enumerate(ids):
        last[point_id] = i
    if len(last) == len(ids):
        return list(range(len(ids)))
    return sorted(last.values())


def upsert_vectors(
    config: CollectionConfig, vectors: Sequence[Any], keep: list[int]
) -> PointVectors:
    """The vectors of points ``keep``: batch columns prepared column by column, points'
    ``vector`` fields point by point."""
    if isinstance(vectors, VectorColumns):
        return column_vectors(vectors.take(keep), config)
    return point_vectors([vectors[i] for i in keep], config)


def bulk_vectors(
    config: CollectionConfig,
    matrices: dict[str, np.ndarray | SparseRows],
    keep: list[int],
    total: int,
) -> PointVectors:
    """Whole dense matrices (rows ``keep`` of ``total``) validated and prepared in one
    numpy pass; names the matrices leave out are absent zero rows. A sparse name comes
    as checked CSR rows, an empty row meaning no vector."""
    rows = np.asarray(keep, dtype=np.int64)
    dense: dict[str, np.ndarray] = {}
    given_sparse: dict[str, SparseRows] = {}
    for name, matrix in matrices.items():
        if isinstance(matrix, SparseRows):
            if name not in config.sparse_vectors:
                raise InvalidVector(f"Wrong input: Not existing sparse vector name: {name}")
            given_sparse[name] = matrix.take(rows) if len(keep) < total else matrix
            continue
        params = config.vectors[vector_name(config, name)]
        if params.is_multi:
            raise InvalidVector(f"Wrong input: bulk matrices are for dense vectors ({name!r})")
        dense[name] = prepare_matrix(
            matrix[rows] if len(keep) < total else matrix,
            params,
            f"vector {name!r}" if name else "vector",
        )
    count = len(keep)
    present = {n: np.full(count, n in dense) for n in config.vectors}
    for name, params in config.vectors.items():
        if name not in dense and not params.is_multi:
            dense[name] = np.zeros((count, params.size), dtype=np.float32)
    tokens = {
        n: Ragged.from_arrays([np.zeros((0, p.size), np.float32)] * count, p.size)
        for n, p in config.vectors.items()
        if p.is_multi
    }
    empty = SparseRows.of([None] * count)
    sparse = {n: given_sparse.get(n, empty) for n in config.sparse_vectors}
    present |= {n: sparse[n].lengths() > 0 for n in config.sparse_vectors}
    return PointVectors(dense, tokens, present, sparse)


def _encode_payload(payload: dict[str, Any]) -> bytes:
    check_payload(payload)
    try:
        return orjson.dumps(payload)
    except TypeError as exc:
        raise BadRequest(f"Payload cannot be stored as JSON: {exc}") from exc


def _stored(batch: PointBatch, known: Sequence[bool]) -> PointRows:
    """The rows to write; ``known[i]``: the point exists already (its old vectors go)."""
    pids = [point_id_to_text(i) for i in batch.ids]
    rows = PointRows(pids, [_encode_payload(p) for p in batch.payloads])
    rows.replaced = [pid for pid, old in zip(pids, known, strict=True) if old]
    for name, matrix in batch.vectors.items():
        present = batch.present[name]
        picked = range(len(pids)) if present.all() else np.flatnonzero(present).tolist()
        rows.vectors.extend((pids[i], name, matrix[i].tobytes()) for i in picked)
    for name, sets in batch.tokens.items():
        for i in np.flatnonzero(batch.present[name]).tolist():
            rows.vectors.append((pids[i], name, sets.item(i).tobytes()))
    for name, sparse in batch.sparse.items():
        for i in np.flatnonzero(batch.present[name]).tolist():
            rows.vectors.append((pids[i], name, sparse.item(i).to_bytes()))
    return rows
