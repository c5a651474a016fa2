"""Point writes of one collection: upsert, delete, payload and vector rewrites
(Qdrant's ``segments_updater``).

Each write is validated first, committed to the point store in one transaction,
then applied to the segments: old copies in sealed segments become tombstones and
new rows go to the appendable segment. Called with the collection's write lock held
(``facade.Collection``); sealing, ``on_change`` and the wait for the fsync (group
commit: after the lock is released, so readers and the next writer go on) stay there.

A vector update or delete (``change_vectors``) is an upsert of the merged point: its
other vectors and its payload are read back and written again with the change, so it
takes the same durable path (one transaction in the point store, then the segments)
and a sealed segment's old copy becomes a tombstone like any overwrite.
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
from server.engine.segment_set import AnySegment, SegmentSet
from server.engine.sparse_vector import SparseVector
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
ExactVectors = Callable[[AnySegment, int], dict[str, np.ndarray]]
"""A row's dense and multi-vectors as written (``records.RecordReader.exact_vectors``)."""


@dataclass(slots=True)
class Upsert:
    """Points to write, deduplicated (last write of an id wins) and validated."""

    ids: list[PointId]
    vectors: PointVectors
    payloads: list[dict[str, Any]]
    update_mode: str = "upsert"
    update_filter: Filter | None = None


@dataclass(slots=True)
class VectorChange:
    """Named vectors to set (``given``: each point's names marked ``present``) or to
    remove (``dropped``) on existing points; the points' other vectors and payloads stay.
    ``update_filter`` leaves out the points it does not match."""

    ids: list[PointId]
    given: PointVectors | None = None
    dropped: frozenset[str] = frozenset()
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
        op_id = self.store.commit(WriteBatch(put_points=_stored(batch, known)), durable=False)
        for point_id, found in zip(points.ids, located, strict=True):
            if found is not None and found[0] is not self.segments.appendable:
                found[0].delete(point_id)
        self.segments.appendable.upsert(batch, op_id)
        return op_id

    def delete(self, selection: PointsSelection) -> int:
        ids = self.resolve(selection, must_exist=False)
        op_id = self.store.commit(
            WriteBatch(delete_pids=[point_id_to_text(i) for i in ids]), durable=False
        )
        for point_id in ids:
            self.segments.delete(point_id)
        return op_id

    def rewrite_payloads(self, selection: PointsSelection, change: PayloadChange) -> int:
        """Replace each selected point's payload by ``change(old payload)``."""
        ids = self.resolve(selection, must_exist=selection.ids is not None)
        located = [self.segments.locate(i) for i in ids]
        new = [change(seg.payload(row)) for seg, row in filter(None, located)]
        encoded = [(point_id_to_text(i), _encode_payload(p)) for i, p in zip(ids, new, strict=True)]
        op_id = self.store.commit(WriteBatch(put_payloads=encoded), durable=False)
        for (segment, row), payload in zip(filter(None, located), new, strict=True):
            segment.set_payload(row, payload, op_id)
        return op_id

    def change_vectors(
        self, change: VectorChange, config: CollectionConfig, exact: ExactVectors
    ) -> tuple[int, PointId | None]:
        """Upsert each changed point merged with its current vectors and payload; the
        operation id and the first id that names no point (the others are written
        anyway, as Qdrant does, and the caller answers 404 for it)."""
        chosen: list[int] = []
        located: list[tuple[AnySegment, int]] = []
        missing: PointId | None = None
        for i, point_id in enumerate(change.ids):
            found = self.segments.locate(point_id)
            if found is None:
                missing = point_id if missing is None else missing
            elif change.update_filter is None or change.update_filter.matches(
                point_id, found[0].payload(found[1]), partial(found[0].has_vector, found[1])
            ):
                chosen.append(i)
                located.append(found)
        given = None
        if change.given is not None:
            given = change.given.take(np.array(chosen, dtype=np.int64))
        current = [(exact(seg, row), seg.sparse_vectors(row)) for seg, row in located]
        merged = merged_vectors(config, current, given, change.dropped)
        ids = [change.ids[i] for i in chosen]
        payloads = [seg.payload(row) for seg, row in located]
        return self.upsert(Upsert(ids, merged, payloads)), missing

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


def merged_vectors(
    config: CollectionConfig,
    current: Sequence[tuple[dict[str, np.ndarray], dict[str, SparseVector]]],
    given: PointVectors | None,
    dropped: frozenset[str],
) -> PointVectors:
    """Each point's current vectors (dense and multi, sparse) with ``given`` ones set
    over them and ``dropped`` names removed."""
    count = len(current)
    dense: dict[str, np.ndarray] = {}
    tokens: dict[str, Ragged] = {}
    present: dict[str, np.ndarray] = {}
    for name, params in config.vectors.items():
        new = _given_mask(given, name, count)
        old = [None if name in dropped else vectors.get(name) for vectors, _ in current]
        present[name] = new | np.array([v is not None for v in old], dtype=bool)
        if params.is_multi:
            empty = np.zeros((0, params.size), np.float32)
            items = [empty if v is None else v for v in old]
            for i in np.flatnonzero(new).tolist():
                assert given is not None
                items[i] = given.tokens[name].item(i)
            tokens[name] = Ragged.from_arrays(items, params.size)
            continue
        matrix = np.zeros((count, params.size), dtype=np.float32)
        for i, vector in enumerate(old):
            if vector is not None:
                matrix[i] = vector
        if given is not None and new.any():
            matrix[new] = given.dense[name][new]
        dense[name] = matrix
    sparse = {name: _merged_sparse(name, current, given, dropped) for name in config.sparse_vectors}
    present |= {name: rows.lengths() > 0 for name, rows in sparse.items()}
    return PointVectors(dense, tokens, present, sparse)


def _given_mask(given: PointVectors | None, name: str, count: int) -> np.ndarray:
    mask = None if given is None else given.present.get(name)
    return np.zeros(count, dtype=bool) if mask is None else mask


def _merged_sparse(
    name: str,
    current: Sequence[tuple[dict[str, np.ndarray], dict[str, SparseVector]]],
    given: PointVectors | None,
    dropped: frozenset[str],
) -> SparseRows:
    items: list[SparseVector | None] = [
        None if name in dropped else sparse.get(name) for _, sparse in current
    ]
    for i in np.flatnonzero(_given_mask(given, name, len(current))).tolist():
        assert given is not None
        items[i] = given.sparse[name].item(i)
    return SparseRows.of(items)


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
