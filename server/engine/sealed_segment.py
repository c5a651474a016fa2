"""A sealed segment: fixed rows, tombstones, and one index backend per named vector.

Rows never move once sealed, so a background build can read a sealed segment's
vectors without holding the collection lock; deletes and overwrites only flip
the ``live`` flag (and tell the index, which masks the row in native code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.base import KeepsVectorsAsGiven, SearchParams
from index.flat import exact_search
from index.graph_walk import CustomScore, exact_custom
from index.hnsw_faiss import HnswIndex
from index.multivector import Ragged
from index.registry import AnyIndex, is_multi_vector, is_sparse
from index.sparse import SparseRowsIndex, SparseVector
from server.engine.id_column import IdColumn
from server.engine.index_spec import SegmentSpec
from server.engine.payload_column import PayloadReader, payload_column
from server.engine.payload_index import PayloadIndexes
from server.engine.point_ids import PointId
from server.engine.segment import PayloadSchema, SealedParts, SegmentRows
from server.engine.tenant_layout import ValueGraph, ValueGraphs, merge_top


class SealedSegment(SegmentRows):
    def __init__(
        self,
        segment_id: int,
        parts: SealedParts,
        live: np.ndarray | None = None,
        spec: SegmentSpec | None = None,
        schema: PayloadSchema | None = None,
        payload_indexes: PayloadIndexes | None = None,
        payload_reader: PayloadReader | None = None,
        value_graphs: ValueGraphs | None = None,
        rows: tuple[IdColumn, np.ndarray] | None = None,
    ) -> None:
        """``payload_indexes``, when given, already index exactly these rows (sealing
        hands over the appendable segment's, and ``parts.payloads`` holds what they
        were given); otherwise they are built from ``schema`` and the full payloads in
        ``parts``. With ``payload_reader`` (``on_disk_payload``) the payloads are read
        from the point store when needed, not kept (``payload_column``). ``rows``: the
        id column and versions of ``parts`` already made (mapped from the file workers
        share, ``segment_rows.py``). ``value_graphs``: its per-value graphs
        (``tenant_layout.py``), if built."""
        super().__init__(payload_reader=payload_reader)
        self.value_graphs = value_graphs or ValueGraphs()
        self.segment_id = segment_id
        self.spec = spec
        """The index spec its indexes were built with; None while still exact (flat)."""
        self.indexes: dict[str, AnyIndex] = dict(parts.indexes)
        self.present = parts.present
        self._whole: dict[str, bool] = {}
        """Per vector name: whether every row holds it. A sealed segment's rows never
        change, and scanning 390k flags for it cost every search ~15 µs."""
        count = len(parts.ids)
        self._live = np.ones(count, dtype=bool) if live is None else live.copy()
        if payload_indexes is None:
            payload_indexes = PayloadIndexes(schema or {})
            payload_indexes.build(parts.payloads)
        self.payload_indexes = payload_indexes
        # rows never move: ids, versions and the id lookup live in arrays, not one
        # Python object per point (id_column.py)
        if rows is None:
            self._id_column = IdColumn(parts.ids)
            self._version_array = np.array(parts.versions, dtype=np.int64).reshape(count)
        else:
            self._id_column, self._version_array = rows
        self._payloads = payload_column(payload_reader, self._id_column)
        self._payloads.keep_keys(payload_indexes.top_keys(), [])
        self._payloads.extend(parts.payloads)
        self._live &= _last_copy(self._id_column, self._live)
        dead = np.flatnonzero(~self._live)
        if len(dead):
            for index in self.indexes.values():
                index.delete(dead)
        self._live_count = int(self._live.sum())

    def __len__(self) -> int:
        return self._live_count

    def live_mask(self) -> np.ndarray:
        return self._live

    def deleted_fraction(self) -> float:
        total = self.row_count()
        return 0.0 if total == 0 else 1.0 - self._live_count / total

    def vector_present(self, name: str) -> np.ndarray:
        present = self.present.get(name)
        return np.zeros(self.row_count(), dtype=bool) if present is None else present

    def vectors(self, row: int) -> dict[str, np.ndarray]:
        """One row's vectors as the indexes hold them (decoded for compressed secondaries;
        ``Collection`` substitutes the exact stored ones where ``lossy`` says so)."""
        out: dict[str, np.ndarray] = {}
        for name, index in self.indexes.items():
            if not self.present[name][row] or is_sparse(index):
                continue
            if is_multi_vector(index):
                out[name] = index.items(np.array([row])).item(0)
            else:
                out[name] = index.row_vectors(np.array([row]))[0]
        return out

    def sparse_vectors(self, row: int) -> dict[str, SparseVector]:
        return {
            name: index.items(np.array([row])).item(0)
            for name, index in self.indexes.items()
            if is_sparse(index) and self.present[name][row]
        }

    def sparse_index(self, name: str) -> SparseRowsIndex:
        index = self.indexes[name]
        assert is_sparse(index)
        return index

    def lossy(self, name: str) -> bool:
        index = self.indexes.get(name)
        return index is not None and not index.lossless

    def has_vector(self, row: int, name: str) -> bool:
        present = self.present.get(name)
        return present is not None and bool(present[row])

    def has_graph(self, name: str) -> bool:
        """Whether an approximate structure can answer (the planner's "graph" paths):
        a graph over vectors or codes, or MUVERA's encodings for a multi-vector."""
        index = self.indexes.get(name)
        return index is not None and index.approximate

    def search(
        self,
        name: str,
        queries: np.ndarray | Ragged | list[SparseVector],
        k: int,
        mask: np.ndarray | None,
        params: SearchParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        present = self.present[name]
        allowed = mask
        if not self._every_row_holds(name):
            allowed = present if mask is None else mask & present
        index = self.indexes[name]
        if is_multi_vector(index):
            assert isinstance(queries, Ragged)
            return index.search(queries, k, params=params, allowed=allowed)
        if is_sparse(index):
            assert isinstance(queries, list)
            return index.search(queries, k, params=params, allowed=allowed)
        assert isinstance(queries, np.ndarray)
        return index.search(queries, k, params=params, allowed=allowed)

    def _every_row_holds(self, name: str) -> bool:
        whole = self._whole.get(name)
        if whole is None:
            whole = self._whole[name] = bool(self.present[name].all())
        return whole

    def value_graph(
        self, name: str, pinned: list[tuple[str, Any]]
    ) -> tuple[str, ValueGraph] | None:
        """The per-value graph of vector ``name`` for one of the ``pinned`` (field,
        value) conditions of a filter, with its ``field=value`` label."""
        return self.value_graphs.find(name, pinned) if self.value_graphs else None

    def search_value_graph(
        self,
        name: str,
        graph: ValueGraph,
        queries: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        ef: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A walk of one value's graph over the allowed rows; allowed rows the graph
        does not hold (their payload changed since the build) are scored exactly."""
        allowed = (self._live if mask is None else mask) & self.vector_present(name)
        rows, scores, outside = graph.search(queries, k, allowed, ef)
        if not outside.any():
            return rows, scores
        more, more_scores = self.search(name, queries, k, outside, SearchParams(exact=True))
        return merge_top(rows, scores, more, more_scores, k, graph.index.distance)

    def row_range(self, name: str) -> bool:
        """Whether rows of dense vector ``name`` can be read as one contiguous block."""
        return isinstance(self.indexes.get(name), KeepsVectorsAsGiven)

    def search_range(
        self, name: str, queries: np.ndarray, k: int, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` over rows ``start:stop``, every one of them allowed (a
        co-located tenant's range): scored as a slice of the rows, with no gather."""
        index = self.indexes[name]
        assert isinstance(index, KeepsVectorsAsGiven) and not is_multi_vector(index)
        found, scores = exact_search(index.row_range(start, stop), queries, k, index.distance)
        return np.where(found >= 0, found + start, -1), scores

    def custom_search(
        self,
        name: str,
        customs: list[CustomScore],
        k: int,
        mask: np.ndarray | None,
        params: SearchParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each custom score of a dense vector: a walk of the HNSW
        graph with the score itself; an exact scan of the rows for every other backend
        (or ``params.exact``). Float64 scores, bigger is better."""
        present = self.present[name]
        allowed = mask if present.all() else (present if mask is None else mask & present)
        index = self.indexes[name]
        if isinstance(index, HnswIndex):
            return index.search_custom(customs, k, params=params, allowed=allowed)
        assert not is_multi_vector(index) and not is_sparse(index)
        rows = np.flatnonzero(self._live if allowed is None else allowed & self._live)
        found, scores = exact_custom(index.row_vectors(rows), index.distance, customs, k)
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1), scores

    def row_of(self, point_id: PointId) -> int | None:
        """The live row holding ``point_id``, if this segment has it."""
        for row in self._id_column.rows_of(point_id).tolist():
            if self._live[row]:
                return int(row)
        return None

    @property
    def ids(self) -> Sequence[PointId]:
        return self._id_column

    @property
    def versions(self) -> np.ndarray:
        return self._version_array

    def row_count(self) -> int:
        return len(self._id_column)

    def version(self, row: int) -> int:
        return int(self._version_array[row])

    def set_payload(self, row: int, payload: dict[str, Any], version: int) -> None:
        self._set_payload_only(row, payload)
        self._version_array[row] = version

    def sort_keys(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._id_column.sort_keys(rows)

    def bookkeeping_bytes(self) -> dict[str, int]:
        """Memory of the per-row arrays around the indexes (``stats.memory_by_part``)."""
        present = sum(mask.nbytes for mask in self.present.values())
        return {
            "ids": self._id_column.nbytes,
            "versions": self._version_array.nbytes,
            "live_and_present": self._live.nbytes + present,
            "payloads": self._payloads.nbytes,
            "value_graphs": self.value_graphs.memory_bytes(),
        }

    def delete(self, point_id: PointId) -> bool:
        row = self.row_of(point_id)
        if row is None:
            return False
        self._live[row] = False
        self._live_count -= 1
        rows = np.array([row])
        for index in self.indexes.values():
            index.delete(rows)
        return True

    def parts(self, rows: np.ndarray) -> SealedParts:
        """A copy of ``rows`` (payloads shared, read-only) for building a new segment."""
        picked = rows.tolist()
        return SealedParts(
            ids=self._id_column.take(rows),
            payloads=self._payloads.many(picked),
            versions=self._version_array[rows].tolist(),
            indexes={},
            present={name: mask[rows].copy() for name, mask in self.present.items()},
        )


def _last_copy(ids: IdColumn, live: np.ndarray) -> np.ndarray:
    """Rows to keep live: a merged segment may list an id twice (a tombstoned copy and
    a live one); if two copies are live, the later row wins."""
    order = ids.order[live[ids.order]]  # live rows by key, rows ascending within a key
    kind, hi, lo = ids.sort_keys(order)
    same_as_next = (kind[:-1] == kind[1:]) & (hi[:-1] == hi[1:]) & (lo[:-1] == lo[1:])
    keep = np.ones(len(live), dtype=bool)
    keep[order[:-1][same_as_next]] = False
    return keep
