"""HNSW graph search on faiss's ``IndexHNSWFlat`` (or ``IndexHNSWSQ`` holding float16 /
uint8 values exactly, for a vector's ``datatype``: see ``index/datatypes.py``).

Chosen over hnswlib (docs/adr/0002-hnsw-backend.md) because faiss checks a filter
through an ``IDSelectorBitmap`` inside its C++ search loop, while hnswlib calls a
Python function for every visited node. Deleted rows are tombstones: they stay in
the graph as waypoints (so connectivity is kept) and are masked out of results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from index.base import IndexStats, KeepsVectorsAsGiven, SearchParams
from index.datatypes import BYTES_PER_VALUE, Datatype, decode_codes, is_compact, sq_type
from index.faiss_mapping import Mapped, mapped_parts, read_hnsw
from index.flat import Tombstones, exact_search
from index.graph_walk import CustomScore, HnswGraph, exact_custom, walk
from index.metrics import Distance, faiss_to_score
from index.serialization import Buffer, pack, unpack

_FAISS: Any = faiss


def hnsw_graph_bytes(hnsw: Any) -> int:
    """Links (int32), per-node levels (int32) and link offsets (size_t) of a faiss HNSW."""
    return (
        int(hnsw.neighbors.size()) * 4 + int(hnsw.levels.size()) * 4 + int(hnsw.offsets.size()) * 8
    )


def search_hnsw(
    index: Any, queries: np.ndarray, k: int, ef: int, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Any faiss HNSW index (float, code or binary) searched with beam ``ef``, the mask
    checked in C++ through an ``IDSelectorBitmap``; faiss's raw distances and ids."""
    bits = None
    if mask is None:
        search_params = _unfiltered_params(ef)
    else:
        bits = np.packbits(mask, bitorder="little")
        selector = _FAISS.IDSelectorBitmap(len(mask), _FAISS.swig_ptr(bits))
        search_params = _FAISS.SearchParametersHNSW(efSearch=ef, sel=selector)
    raw, found = index.search(queries, k, params=search_params)
    del bits  # the selector points into it: keep it alive until search returns
    return np.asarray(raw), np.asarray(found, dtype=np.int64)


@lru_cache(maxsize=256)
def _unfiltered_params(ef: int) -> Any:
    """faiss's search parameters for a beam of ``ef`` and no filter, made once: faiss
    only reads them, so every thread may share one (a new SWIG object per single-query
    search cost as much as the rest of this wrapper)."""
    return _FAISS.SearchParametersHNSW(efSearch=ef)


@dataclass(frozen=True, slots=True)
class HnswParams:
    """Graph knobs, with Qdrant's defaults.

    m: links per node (8-64); more links raise recall and memory (~8·m bytes a vector).
    ef_construct: beam width while building (64-512); higher builds slower, better graphs.
    ef_search: default beam width at query time when a request gives no ``hnsw_ef``;
      raised to at least ``k``.
    storage: the element type rows are held in (the vector's ``datatype``): float16
      halves the vector memory, uint8 quarters it; faiss scores the codes natively.
      Rows must already hold values of that type (``datatypes.to_datatype``), so the
      codes keep them exactly. Manhattan stays float32 (faiss's SQ has no L1 kernel).
    on_disk: read back from a memory-mapped file, the rows and the graph's links stay
      in that file (faiss's ``IO_FLAG_MMAP_IFC``): the kernel pages them in on demand
      instead of the process holding a copy (Qdrant's ``on_disk`` vectors).
    graph_on_disk: read back from a memory-mapped file, the graph's links stay in that
      file (Qdrant's ``hnsw_config.on_disk``); the rows follow ``on_disk``.
    """

    m: int = 16
    ef_construct: int = 100
    ef_search: int = 64
    storage: Datatype = "float32"
    on_disk: bool = False
    graph_on_disk: bool = False


class HnswIndex(KeepsVectorsAsGiven):
    """faiss ``IndexHNSWFlat`` (``IndexHNSWSQ`` for float16 / uint8 storage): a graph
    over the rows, tombstones as a bitmap."""

    kind: ClassVar[str] = "hnsw"
    multi_vector: ClassVar[bool] = False
    approximate: ClassVar[bool] = True
    maps_originals: ClassVar[bool] = False

    def __init__(self, dim: int, distance: Distance, params: HnswParams | None = None) -> None:
        self.dim = dim
        self.distance = distance
        self.params = params or HnswParams()
        # typed Any: faiss's bundled stubs miss much of the SWIG surface used here
        self._index: Any = _new_graph(dim, distance, self.params)
        self._index.hnsw.efConstruction = self.params.ef_construct
        self._deleted = Tombstones()
        self._graph: HnswGraph | None = None
        self._matrix: np.ndarray | None = None
        self._mapped: Buffer | None = None  # the file faiss's rows point into, kept open

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def rows_on_disk(self) -> bool:
        return self.params.on_disk or self.params.graph_on_disk

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._graph, self._matrix = None, None  # the storage may have moved
        self._deleted.grow(len(vectors))

    def delete(self, rows: np.ndarray) -> None:
        self._deleted.delete(rows)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        params = params or SearchParams()
        mask = self._deleted.live(allowed)
        if params.exact:
            return exact_search(self.vectors(), queries, k, self.distance, mask)
        worst = self.distance.worst_score
        if self.count == 0 or k == 0:
            shape = (queries.shape[0], k)
            return np.full(shape, -1, dtype=np.int64), np.full(shape, worst, dtype=np.float32)
        ef = max(params.ef or self.params.ef_search, k)
        xq = np.ascontiguousarray(queries, dtype=np.float32)
        raw, found = search_hnsw(self._index, xq, k, ef, mask)
        scores = np.where(found >= 0, faiss_to_score(raw, self.distance), worst)
        return found, scores.astype(np.float32, copy=False)

    def search_custom(
        self,
        customs: list[CustomScore],
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` rows for each custom score (``graph_walk.py``), found by a
        walk of this graph with beam ``ef``: rows ``(nq, k)`` padded with -1, float64
        scores (bigger is better) padded with -inf. ``params.exact`` scores every row."""
        params = params or SearchParams()
        mask = self._deleted.live(allowed)
        if params.exact:
            return exact_custom(self.vectors(), self.distance, customs, k, mask)
        if self._graph is None:  # links are fixed once built: read them out once
            self._graph = HnswGraph.of(self._index.hnsw)
        ef = max(params.ef or self.params.ef_search, k)
        return walk(self._graph, self.vectors(), self.distance, customs, k, ef, mask)

    @property
    def _compact(self) -> bool:
        return is_compact(self.params.storage) and self.distance is not Distance.MANHATTAN

    def vectors(self) -> np.ndarray:
        """float32 rows: for compact storage a decoded copy (never kept: it would double
        the memory the narrow type saves), else a read-only view of faiss's storage, made
        once until the next ``add`` (the SWIG calls behind it cost ~20 us: a query by
        example reads several rows)."""
        if self._compact:
            decoded = decode_codes(self._codes(), self.params.storage, self.dim)
            decoded.flags.writeable = False
            return decoded
        if self._matrix is None:
            storage: Any = faiss.downcast_index(self._index.storage)
            view = faiss.rev_swig_ptr(storage.get_xb(), self.count * self.dim)
            matrix: np.ndarray = np.asarray(view).reshape(self.count, self.dim)
            matrix.flags.writeable = False
            self._matrix = matrix
        return self._matrix

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        if not self._compact:
            return super().row_vectors(rows)
        width = self.dim * BYTES_PER_VALUE[self.params.storage]
        picked = self._codes().reshape(self.count, width)[rows]
        return decode_codes(picked, self.params.storage, self.dim)

    def row_range(self, start: int, stop: int) -> np.ndarray:
        if not self._compact:
            return super().row_range(start, stop)
        return self.row_vectors(np.arange(start, stop))

    def _codes(self) -> np.ndarray:
        """The SQ codes as a uint8 view (no copy) of faiss's storage."""
        storage: Any = faiss.downcast_index(self._index.storage)
        size = self.count * int(storage.code_size)
        if size == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.asarray(faiss.rev_swig_ptr(storage.codes.data(), size))

    def to_bytes(self) -> bytes:
        header = {
            "kind": self.kind,
            "dim": self.dim,
            "distance": self.distance.value,
            "params": asdict(self.params),
            "count": self.count,
        }
        graph = faiss.serialize_index(self._index).tobytes()
        return pack(header, [graph, self._deleted.to_bytes()])

    @classmethod
    def from_bytes(cls, data: Buffer, *, mapped: bool = False) -> Self:
        """``mapped``: leave the rows and links in ``data`` (a memory-mapped file) as
        ``on_disk`` does, whatever ``on_disk`` says: processes that map the same file
        then share one copy through the page cache (multi-process serving)."""
        header, (graph, deleted) = unpack(data)
        index = cls(header["dim"], Distance(header["distance"]), HnswParams(**header["params"]))
        params = index.params
        on_disk = mapped or params.on_disk  # rows and links, as shared graphs need
        parts = Mapped(graph=on_disk or params.graph_on_disk, codes=on_disk)
        index._index = read_hnsw(graph, parts)
        if parts.any and isinstance(graph, memoryview):
            index._mapped = graph
        index._deleted = Tombstones.from_bytes(deleted, header["count"])
        return index

    def stats(self) -> IndexStats:
        vectors = self.count * self.dim * self._bytes_per_value
        graph = hnsw_graph_bytes(self._index.hnsw)
        if not self.file_backed:
            parts = {"graph": graph, "vectors": vectors, "tombstones": self._deleted.nbytes}
            return IndexStats(count=self.count, memory_bytes=sum(parts.values()), parts=parts)
        where = mapped_parts(self._index)
        links = int(self._index.hnsw.neighbors.size()) * 4 if where.graph else 0
        rows = vectors if where.codes else 0
        parts = {"graph": graph - links, "vectors": vectors - rows}
        parts |= {"tombstones": self._deleted.nbytes}
        in_memory = sum(parts.values())
        parts |= {"graph_mapped": links, "vectors_mapped": rows}
        return IndexStats(count=self.count, memory_bytes=in_memory, parts=parts)

    @property
    def file_backed(self) -> bool:
        """Whether the rows or the links live in a memory-mapped file (``on_disk``,
        ``graph_on_disk``, or loaded ``mapped``), not process memory."""
        return self._mapped is not None

    @property
    def _bytes_per_value(self) -> int:
        return BYTES_PER_VALUE[self.params.storage] if self._compact else 4


def _new_graph(dim: int, distance: Distance, params: HnswParams) -> Any:
    """An empty faiss HNSW over float32 rows, or over exact float16 / uint8 SQ codes."""
    m = max(params.m, 2)
    if is_compact(params.storage) and distance is not Distance.MANHATTAN:
        return _FAISS.IndexHNSWSQ(dim, sq_type(params.storage), m, distance.faiss_metric)
    return faiss.IndexHNSWFlat(dim, m, distance.faiss_metric)
