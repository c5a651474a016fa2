"""Every point of the point store, read once at open and held as columns.

Opening a collection (a restart, a snapshot install, a replica catching up) rebuilds
its segments from the point store, the truth: each saved segment is checked against
the stored vectors and takes its payloads and versions from there. Read as one
object and one dict per point, that cost more than half of opening
(~11 µs a point); here each column comes as one string from one aggregate
(``PointStore.load_columns``): the ids and the payloads as JSON arrays parsed in one
call each, each dense vector name concatenated into one float32 matrix in a single
``frombuffer``; a segment's rows are then gathered with numpy fancy indexing and
``map`` over the columns, with no Python loop per point.

Every array has one extra row past the last point, empty (zeros, not present,
version 0): ``rows_of`` gives -1 for an id the store no longer holds, and -1 picks
that row, so a segment row whose point was deleted needs no special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.multivector import Ragged
from index.sparse import SparseRows, SparseVector
from server.engine.config import CollectionConfig
from server.engine.point_ids import PointId, point_id_from_text
from server.engine.segment import PointBatch
from server.storage.point_store import PointStore, VectorColumn, wrong_width


class StoredPoints:
    """The point store's content, row-aligned: ``pids[i]`` has ``versions[i]`` etc."""

    def __init__(
        self, store: PointStore, config: CollectionConfig, *, dense_data: bool = True
    ) -> None:
        """``dense_data`` False: the dense vectors are not read, only which points hold
        one; ``read_dense`` then reads those of the rows that need them (an installed
        snapshot's live rows are kept without their vectors, ``recovery.py``)."""
        self._config = config
        self._store = store
        names = [*config.vectors, *config.sparse_vectors]
        self._widths = {n: 4 * p.size for n, p in config.vectors.items() if not p.is_multi}
        widths = self._widths
        skipped = [] if dense_data else list(widths)
        columns = store.load_columns([n for n in names if n not in skipped], widths)
        for name in skipped:
            columns.vectors[name] = VectorColumn(store.vector_pids(name), b"")
        self.pids = columns.pids
        count = len(columns.pids)
        self._row_of = dict(zip(columns.pids, range(count), strict=True))
        self._ids: list[PointId] = [int(p) if p.isdigit() else p for p in columns.pids]
        self._ids.append(0)  # the empty row's, replaced by ``batch``
        self._payloads: list[dict[str, Any]] = columns.payloads
        self._payloads.append({})
        self._versions = np.zeros(count + 1, dtype=np.int64)
        self._versions[:count] = columns.versions
        self._dense: dict[str, np.ndarray] = {}
        self._present: dict[str, np.ndarray] = {}
        self._blobs: dict[str, list[bytes | None]] = {}
        for name in names:
            column = columns.vectors.pop(name)
            rows = self._rows_holding(column.pids)
            self._present[name] = np.zeros(count + 1, dtype=bool)
            self._present[name][rows] = True
            if name in skipped:
                self._dense[name] = np.zeros((count + 1, widths[name] // 4), dtype=np.float32)
            elif isinstance(column.data, bytes):
                self._dense[name] = _matrix(column.data, rows, count, widths[name] // 4)
            else:
                self._blobs[name] = _spread(column.data, self.rows_of(column.pids), count)

    def __len__(self) -> int:
        return len(self.pids)

    def _rows_holding(self, pids: list[str]) -> np.ndarray | slice:
        """The rows of a vector column's ids: a slice when every point has one (both
        lists are in the store's key order, so then they are equal)."""
        if pids == self.pids:
            return slice(0, len(pids))
        return self.rows_of(pids)

    def rows_of(self, pids: Sequence[str]) -> np.ndarray:
        """The store row of each id, -1 (the empty row) where the store lacks it."""
        found = map(self._row_of.get, pids, [-1] * len(pids))
        return np.fromiter(found, dtype=np.int64, count=len(pids))

    def read_dense(self, rows: np.ndarray) -> None:
        """Read the dense vectors of the points at ``rows`` (after ``dense_data`` False);
        a stored vector of the wrong width is a damaged store (ValueError), as at open."""
        for name, matrix in self._dense.items():
            wanted = rows[self._present[name][rows]]
            pids = list(map(self.pids.__getitem__, wanted.tolist()))
            found = self._store.vectors_of(pids, name)
            data = list(map(found.get, pids, [b""] * len(pids)))
            width = self._widths[name]
            if set(map(len, data)) - {width}:
                raise wrong_width(name, width)
            matrix[wanted] = np.frombuffer(b"".join(data), dtype=np.float32).reshape(-1, width // 4)

    def version_array(self, rows: np.ndarray) -> np.ndarray:
        versions: np.ndarray = self._versions[rows]
        return versions

    def versions_at(self, rows: np.ndarray) -> list[int]:
        versions: list[int] = self.version_array(rows).tolist()
        return versions

    def batch(self, pids: Sequence[str], rows: np.ndarray, *, dense: bool = True) -> PointBatch:
        """The points ``pids`` as a batch, their data from store rows ``rows`` (a point
        the store lacks, row -1, becomes an empty zero row). Payload dicts are shared
        with the columns: segments replace a payload, never change one in place.
        ``dense`` False: without the dense vectors (a segment kept whole, ``recovery``)."""
        present = {name: mask[rows] for name, mask in self._present.items()}
        vectors = {name: matrix[rows] for name, matrix in self._dense.items()} if dense else {}
        wanted = rows.tolist()
        tokens: dict[str, Ragged] = {}
        sparse: dict[str, SparseRows] = {}
        for name, blobs in self._blobs.items():
            picked = [blobs[r] for r in wanted]
            if name in self._config.sparse_vectors:
                sparse[name] = SparseRows.of(
                    [None if b is None else SparseVector.from_bytes(b) for b in picked]
                )
            else:
                tokens[name] = _token_sets(picked, self._config.vectors[name].size)
        payloads = list(map(self._payloads.__getitem__, wanted))
        ids = list(map(self._ids.__getitem__, wanted))
        for i in np.flatnonzero(rows < 0).tolist():  # the empty row: a point the store lacks
            payloads[i], ids[i] = {}, point_id_from_text(pids[i])
        return PointBatch(ids, vectors, present, payloads, tokens, sparse)


def _matrix(data: bytes, rows: np.ndarray | slice, count: int, size: int) -> np.ndarray:
    """One dense name's stored float32 rows as a matrix (plus the empty row), from
    its concatenated bytes in one ``frombuffer``."""
    matrix = np.zeros((count + 1, size), dtype=np.float32)
    matrix[rows] = np.frombuffer(data, dtype=np.float32).reshape(-1, size)
    return matrix


def _spread(blobs: list[bytes], rows: np.ndarray, count: int) -> list[bytes | None]:
    """Per-point blobs placed at their store rows (None elsewhere, and the empty row)."""
    spread: list[bytes | None] = [None] * (count + 1)
    for row, blob in zip(rows.tolist(), blobs, strict=True):
        spread[row] = blob
    return spread


def _token_sets(blobs: list[bytes | None], size: int) -> Ragged:
    empty = np.zeros((0, size), dtype=np.float32)
    sets = [empty if b is None else np.frombuffer(b, dtype=np.float32).reshape(-1, size)
            for b in blobs]  # fmt: skip
    return Ragged.from_arrays(sets, size)
