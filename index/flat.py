"""Exact (brute-force) k-nearest-neighbour search in native code.

faiss's ``knn`` kernels use BLAS for inner products and L2 over batches and
SIMD loops otherwise, so the hot loop never runs in Python. Results follow the
faiss convention, batch first: ``ids (nq, k)`` padded with -1 and ``scores
(nq, k)`` in Qdrant's units, padded with the metric's worst score.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from index.base import IndexStats, KeepsVectorsAsGiven, SearchParams
from index.metrics import Distance, faiss_to_score
from index.native_threads import one_native_thread
from index.serialization import Buffer, pack, unpack

_INITIAL_CAPACITY = 1024
_FAISS: Any = faiss  # its bundled stubs miss the *_by_idx kernels

SUBSET_MAX_QUERIES = 8
"""Up to this many queries, a scan of the allowed rows reads them in place (faiss's
``*_by_idx`` kernels) instead of gathering them into a copy first. Gathering copies
every allowed row for each call: a tombstone made a single query against 40,000 rows of
50 dimensions copy 8 MB (1.17 ms of CPU against 0.39 ms in place; a tenth of the rows
allowed: 0.19 against 0.10; four queries, half the rows: 1.61 against 0.99). For
batches faiss's blocked kernel over the copy wins or ties (100 queries, half the rows:
17 against 24 ms; every row: 34 both)."""


def live_mask(deleted: np.ndarray | None, allowed: np.ndarray | None) -> np.ndarray | None:
    """The rows a search may return: allowed and not tombstoned; None = every row.
    ``deleted`` None: the caller knows no row is tombstoned (``Tombstones``)."""
    if deleted is None:
        return allowed
    if allowed is None:
        return None if not deleted.any() else np.logical_not(deleted)
    both: np.ndarray = allowed & ~deleted
    return both


class Tombstones:
    """The deleted rows of an index that only appends (HNSW, two-stage, MUVERA's graph),
    and whether there are any: every search asks, and scanning the flags to learn that
    none is set cost ~15 µs a query at 390k rows."""

    __slots__ = ("_any", "flags")

    def __init__(self, flags: np.ndarray | None = None) -> None:
        self.flags = np.zeros(0, dtype=bool) if flags is None else flags
        self._any = bool(self.flags.any())

    @classmethod
    def from_bytes(cls, data: Buffer, count: int) -> Tombstones:
        """What ``to_bytes`` wrote for ``count`` rows."""
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:count]
        return cls(bits.astype(bool))

    def to_bytes(self) -> bytes:
        return np.packbits(self.flags).tobytes()

    def grow(self, rows: int) -> None:
        """``rows`` new rows, none deleted."""
        self.flags = np.concatenate([self.flags, np.zeros(rows, dtype=bool)])

    def delete(self, rows: np.ndarray) -> None:
        self.flags[rows] = True
        self._any = self._any or len(rows) > 0

    def live(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """``live_mask`` of these flags, without scanning them when none is set."""
        return live_mask(self.flags if self._any else None, allowed)

    @property
    def nbytes(self) -> int:
        return int(self.flags.nbytes)


def exact_search(
    xb: np.ndarray,
    xq: np.ndarray,
    k: int,
    distance: Distance,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``xq`` against the rows of ``xb`` (only those ``allowed``, a boolean
    mask over them), best first.

    ``xb`` and ``xq`` must already be prepared for the metric (normalised for
    Cosine). Returned ids index ``xb``.
    """
    nq = xq.shape[0]
    ids = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), distance.worst_score, dtype=np.float32)
    rows = None if allowed is None else np.flatnonzero(allowed)
    nb = xb.shape[0] if rows is None else len(rows)
    if nb == 0 or nq == 0 or k == 0:
        return ids, scores
    kk = min(k, nb)
    queries = np.ascontiguousarray(xq, dtype=np.float32)
    # one query: waking the OpenMP team costs more than it saves (native_threads.py)
    with one_native_thread() if nq == 1 else nullcontext():
        if rows is None:
            raw, found = faiss.knn(queries, _rows(xb), kk, metric=distance.faiss_metric)
        elif nq <= SUBSET_MAX_QUERIES and distance is not Distance.MANHATTAN:
            raw, found = _knn_in_place(queries, _rows(xb), kk, distance, rows)
        else:
            raw, found = faiss.knn(queries, _rows(xb[rows]), kk, metric=distance.faiss_metric)
            found = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    ids[:, :kk] = found
    scores[:, :kk] = faiss_to_score(raw, distance)
    return ids, scores


def _rows(xb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(xb, dtype=np.float32)


def _knn_in_place(
    xq: np.ndarray, xb: np.ndarray, k: int, distance: Distance, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """faiss's exact kernel over ``rows`` of ``xb`` read where they lie (every query the
    same subset); the ids it returns are rows of ``xb``. faiss has no L1 kernel of this
    kind (the caller gathers for Manhattan)."""
    nq, dim = xq.shape
    subset = np.ascontiguousarray(rows, dtype=np.int64)
    raw = np.empty((nq, k), dtype=np.float32)
    found = np.empty((nq, k), dtype=np.int64)
    by_ip = distance.higher_is_better
    kernel = _FAISS.knn_inner_products_by_idx if by_ip else _FAISS.knn_L2sqr_by_idx
    kernel(
        faiss.swig_ptr(xq), faiss.swig_ptr(xb), faiss.swig_ptr(subset), dim, nq, len(xb),
        len(subset), k, faiss.swig_ptr(raw), faiss.swig_ptr(found), 0,
    )  # fmt: skip
    return raw, found


@dataclass(frozen=True, slots=True)
class FlatParams:
    """The exact backend has no search knobs: every query scans every allowed row.

    on_disk: read back from a memory-mapped file, the rows stay in that file (a
      zero-copy view): the kernel pages them in on demand instead of the process heap
      holding a copy (Qdrant's ``on_disk`` vectors). A later ``add`` copies them back.
    """

    on_disk: bool = False


class FlatIndex(KeepsVectorsAsGiven):
    """Exact search over a growable float32 matrix; the reference every other backend
    is measured against, and the right choice below a few thousand points."""

    kind: ClassVar[str] = "flat"
    multi_vector: ClassVar[bool] = False
    approximate: ClassVar[bool] = False
    maps_originals: ClassVar[bool] = False

    def __init__(self, dim: int, distance: Distance, params: FlatParams | None = None) -> None:
        self.dim = dim
        self.distance = distance
        self.params = params or FlatParams()
        self._data = np.zeros((_INITIAL_CAPACITY, dim), dtype=np.float32)
        self._count = 0
        self._deleted = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self._mapped = False
        """``_data`` is a read-only view of a memory-mapped file (``on_disk``)."""

    @property
    def rows_on_disk(self) -> bool:
        return self.params.on_disk

    @property
    def file_backed(self) -> bool:
        """Whether the rows live in a memory-mapped file, not process memory."""
        return self._mapped

    @classmethod
    def over(cls, rows: np.ndarray, distance: Distance, params: FlatParams) -> Self:
        """An index reading ``rows`` in place (no copy). With ``on_disk`` the caller
        hands over rows in a memory-mapped file, which then count as mapped."""
        index = cls(rows.shape[1], distance, params)
        if not params.on_disk:
            index.add(rows)
            return index
        index._data, index._count, index._mapped = rows, len(rows), True
        index._deleted = np.zeros(len(rows), dtype=bool)
        return index

    def add(self, vectors: np.ndarray) -> None:
        needed = self._count + vectors.shape[0]
        if needed > self._data.shape[0] or self._mapped:
            capacity = max(needed, 2 * self._data.shape[0])
            data = np.zeros((capacity, self.dim), dtype=np.float32)
            data[: self._count] = self._data[: self._count]
            deleted = np.zeros(capacity, dtype=bool)
            deleted[: self._count] = self._deleted[: self._count]
            self._data, self._deleted, self._mapped = data, deleted, False
        self._data[self._count : needed] = vectors
        self._count = needed

    def delete(self, rows: np.ndarray) -> None:
        self._deleted[rows] = True

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = live_mask(self._deleted[: self._count], allowed)
        return exact_search(self.vectors(), queries, k, self.distance, mask)

    def vectors(self) -> np.ndarray:
        view = self._data[: self._count]
        view.flags.writeable = False
        return view

    def to_bytes(self) -> bytes:
        header = {"kind": self.kind, "dim": self.dim, "distance": self.distance.value}
        header |= {"count": self._count, "params": asdict(self.params)}
        deleted = np.packbits(self._deleted[: self._count]).tobytes()
        return pack(header, [self.vectors().tobytes(), deleted])

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self:
        """An index from ``to_bytes``; with ``on_disk`` from a memory-mapped file (a
        ``memoryview``), its rows stay a view of that file. Files written before
        ``params`` was saved read as in-memory."""
        header, (vectors, deleted) = unpack(data)
        params = FlatParams(**header.get("params", {}))
        index = cls(header["dim"], Distance(header["distance"]), params)
        count = header["count"]
        rows = np.frombuffer(vectors, dtype=np.float32).reshape(count, index.dim)
        if params.on_disk and isinstance(vectors, memoryview) and count:
            index = cls.over(rows, index.distance, params)
        else:
            index.add(rows)
        bits = np.unpackbits(np.frombuffer(deleted, dtype=np.uint8))[:count]
        index._deleted[:count] = bits.astype(bool)
        return index

    def stats(self) -> IndexStats:
        """Bytes in process memory; mapped rows are reported as ``vectors_mapped``."""
        parts = {"vectors": self._data.nbytes, "tombstones": self._deleted.nbytes}
        if self._mapped:
            parts |= {"vectors": 0, "vectors_mapped": self._data.nbytes}
        in_memory = parts["vectors"] + parts["tombstones"]
        return IndexStats(count=self._count, memory_bytes=in_memory, parts=parts)
