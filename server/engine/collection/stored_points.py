"""Every point of the point store, read once at open and held as columns.

Opening a collection (a restart, a snapshot install, a replica catching up) rebuilds
its segments from the point store, the truth: each saved segment is checked against
the stored vectors and takes its payloads and versions from there. Read as one
object and one dict per point, that cost more than half of opening
(~11 µs a point); here one query fills columns (``PointStore.load_columns``), each
dense vector name becomes one float32 matrix in a single ``frombuffer``, and a
segment's rows are gathered with numpy fancy indexing. Only payloads are parsed per
point, and only for the rows a segment or the appendable tail takes.

Every array has one extra row past the last point, empty (zeros, not present,
version 0): ``rows_of`` gives -1 for an id the store no longer holds, and -1 picks
that row, so a segment row whose point was deleted needs no special case.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from index.multivector import Ragged
from index.sparse import SparseRows, SparseVector
from server.engine.config import CollectionConfig
from server.engine.point_ids import point_id_from_text
from server.engine.segment import PointBatch
from server.storage.point_store import PointStore


class StoredPoints:
    """The point store's content, row-aligned: ``pids[i]`` has ``versions[i]`` etc."""

    def __init__(self, store: PointStore, config: CollectionConfig) -> None:
        self._config = config
        names = [*config.vectors, *config.sparse_vectors]
        columns = store.load_columns(names)
        self.pids = columns.pids
        self._row_of = dict(zip(columns.pids, range(len(columns.pids)), strict=True))
        self._payloads = columns.payloads
        count = len(columns.pids)
        self._versions = np.zeros(count + 1, dtype=np.int64)
        self._versions[:count] = columns.versions
        self._dense: dict[str, np.ndarray] = {}
        self._present: dict[str, np.ndarray] = {}
        self._blobs: dict[str, list[bytes | None]] = {}
        for name in names:
            blobs = columns.vectors.pop(name)
            self._present[name] = _present(blobs)
            params = config.vectors.get(name)
            if params is not None and not params.is_multi:
                self._dense[name] = _matrix(name, blobs, self._present[name], params.size)
            else:
                self._blobs[name] = [*blobs, None]

    def __len__(self) -> int:
        return len(self.pids)

    def rows_of(self, pids: Sequence[str]) -> np.ndarray:
        """The store row of each id, -1 (the empty row) where the store lacks it."""
        found = map(self._row_of.get, pids, [-1] * len(pids))
        return np.fromiter(found, dtype=np.int64, count=len(pids))

    def versions_at(self, rows: np.ndarray) -> list[int]:
        versions: list[int] = self._versions[rows].tolist()
        return versions

    def batch(self, pids: Sequence[str], rows: np.ndarray) -> PointBatch:
        """The points ``pids`` as a batch, their data from store rows ``rows`` (a point
        the store lacks, row -1, becomes an empty zero row)."""
        present = {name: mask[rows] for name, mask in self._present.items()}
        vectors = {name: matrix[rows] for name, matrix in self._dense.items()}
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
        payloads = [orjson.loads(self._payloads[r]) if r >= 0 else {} for r in wanted]
        ids = [point_id_from_text(pid) for pid in pids]
        return PointBatch(ids, vectors, present, payloads, tokens, sparse)


def _present(blobs: list[bytes | None]) -> np.ndarray:
    present = np.zeros(len(blobs) + 1, dtype=bool)
    present[: len(blobs)] = [b is not None for b in blobs]
    return present


def _matrix(name: str, blobs: list[bytes | None], present: np.ndarray, size: int) -> np.ndarray:
    """The stored float32 rows of one dense name as a matrix (plus the empty row),
    decoded in one ``frombuffer``; a row of the wrong length is a damaged store."""
    given = [b for b in blobs if b is not None]
    width = 4 * size
    if any(length != width for length in set(map(len, given))):
        raise ValueError(f"a stored vector {name!r} is not {size} float32 values")
    matrix = np.zeros((len(blobs) + 1, size), dtype=np.float32)
    if given:
        matrix[present] = np.frombuffer(b"".join(given), dtype=np.float32).reshape(-1, size)
    return matrix


def _token_sets(blobs: list[bytes | None], size: int) -> Ragged:
    empty = np.zeros((0, size), dtype=np.float32)
    sets = [empty if b is None else np.frombuffer(b, dtype=np.float32).reshape(-1, size)
            for b in blobs]  # fmt: skip
    return Ragged.from_arrays(sets, size)
