"""Full-dimensional vectors kept beside compressed codes, and exact re-ranking with them.

Every two-stage backend (scalar / product / binary / RaBitQ quantization, LeanVec)
searches a compressed structure for ``k * oversampling`` candidates and re-ranks them
here with the full vectors, so the final order and scores are exact for the candidates
found. The stored form is a trade-off the user picks:

* ``float32``: exact scores, 4 bytes a dimension;
* ``float16``: half the memory, scores within ~1e-3 relative;
* ``int8``: a quarter, one float32 scale per vector (symmetric ``max |x| / 127``),
  scores within ~1% — enough to order candidates that a coarser code already found;
* ``turbo4``: TurboQuant codes, 4 bits a dimension plus a float32 norm: the storage of
  a ``datatype: turbo4`` vector, whose stored value *is* the decoded code, so
  scores against it are exact for what the vector holds (``index/turbo.py``).

Re-ranking gathers the candidates' rows and scores them with one batched matrix
product per block of queries; no Python loop runs per candidate.
"""

from __future__ import annotations

import mmap
from typing import Any, Literal

import faiss
import numpy as np

from index.metrics import Distance
from index.serialization import Buffer
from index.turbo import (
    STORAGE_BITS,
    decode_storage,
    encode_storage,
    storage_products,
    storage_width,
)

SecondaryFormat = Literal["float32", "float16", "int8", "turbo4"]
SECONDARY_FORMATS: tuple[SecondaryFormat, ...] = ("float32", "float16", "int8", "turbo4")

_FAISS: Any = faiss

_QUERY_BLOCK = 256
"""Queries re-ranked per matrix product: bounds the gathered block to
``_QUERY_BLOCK x candidates x dim`` floats."""

_DTYPES: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "float16": np.float16,
    "int8": np.int8,
    "turbo4": np.uint8,
}


class SecondaryVectors:
    """A growable store of full vectors in one of ``SECONDARY_FORMATS``."""

    def __init__(self, dim: int, fmt: SecondaryFormat = "float32") -> None:
        if fmt not in SECONDARY_FORMATS:
            raise ValueError(f"unknown secondary format {fmt!r}; expected {SECONDARY_FORMATS}")
        self.dim = dim
        self.format: SecondaryFormat = fmt
        self._width = storage_width(dim, STORAGE_BITS[fmt]) if fmt in STORAGE_BITS else dim
        """Stored values a row: its dimension, or its code bytes for ``turbo4``."""
        self._data = np.zeros((0, self._width), dtype=_DTYPES[fmt])
        self._scales = np.zeros(0, dtype=np.float32)
        self._count = 0
        self.mapped = False
        """True while the rows are read in place from a memory-mapped segment file
        (page cache, evictable) rather than held in process memory."""

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._count * (self._data.itemsize * self._width + self._scale_bytes())

    def append(self, vectors: np.ndarray) -> None:
        encoded, scales = self._encode(np.ascontiguousarray(vectors, dtype=np.float32))
        needed = self._count + len(encoded)
        if needed > len(self._data):
            capacity = max(needed, 2 * len(self._data), 1024)
            data = np.zeros((capacity, self._width), dtype=self._data.dtype)
            data[: self._count] = self._data[: self._count]
            grown = np.zeros(capacity, dtype=np.float32)
            grown[: self._count] = self._scales[: self._count]
            self._data, self._scales = data, grown
            self.mapped = False
        self._data[self._count : needed] = encoded
        self._scales[self._count : needed] = scales
        self._count = needed

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows decoded to float32, shape ``rows.shape + (dim,)``."""
        picked = self._data[rows]
        if self.format in STORAGE_BITS:
            scales = self._scales[rows]
            return decode_storage(picked, scales, self.dim, STORAGE_BITS[self.format])
        decoded: np.ndarray = picked.astype(np.float32, copy=self.format != "float32")
        if self.format == "int8":
            decoded *= self._scales[rows][..., None]
        return decoded

    def products(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``<query, row>`` for rows ``(nq, c)`` of a turbo4 store, from the codes."""
        bits = STORAGE_BITS[self.format]
        return storage_products(self._data[rows], self._scales[rows], queries, self.dim, bits)

    def norms(self, rows: np.ndarray) -> np.ndarray:
        """Each row's norm, kept beside a turbo4 store's codes."""
        picked: np.ndarray = self._scales[rows]
        return picked

    def raw_rows(self) -> np.ndarray:
        """The stored rows as they are (C-contiguous, possibly a read-only file view)."""
        return self._data[: self._count]

    def matrix(self) -> np.ndarray:
        """Every row as float32: a read-only view for float32, a decoded copy otherwise."""
        if self.format == "float32":
            view = self._data[: self._count]
            view.flags.writeable = False
            return view
        return self.gather(np.arange(self._count))

    def to_blobs(self) -> list[bytes]:
        return [self._data[: self._count].tobytes(), self._scales[: self._count].tobytes()]

    @classmethod
    def from_blobs(
        cls, dim: int, fmt: SecondaryFormat, count: int, blobs: list[Buffer]
    ) -> SecondaryVectors:
        """Rows read in place, without a copy: from a memory-mapped file they stay in the
        page cache; the first ``append`` copies them into process memory."""
        store = cls(dim, fmt)
        store._data = np.frombuffer(blobs[0], dtype=_DTYPES[fmt]).reshape(count, store._width)
        store._scales = np.frombuffer(blobs[1], dtype=np.float32)
        store._count = count
        store.mapped = isinstance(blobs[0], memoryview) and isinstance(blobs[0].obj, mmap.mmap)
        return store

    def same_rows(self, vectors: np.ndarray) -> np.ndarray:
        """Per row: does ``vectors`` encode to exactly what is stored? (Lossy formats
        cannot compare decoded floats with the originals.)"""
        encoded, scales = self._encode(np.ascontiguousarray(vectors, dtype=np.float32))
        stored = self._data[: self._count]
        same: np.ndarray = (encoded == stored).all(axis=1) & (scales == self._scales[: self._count])
        return same

    def _scale_bytes(self) -> int:
        return 0 if self.format in ("float32", "float16") else 4

    def _encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ones = np.ones(len(vectors), dtype=np.float32)
        if self.format == "float32":
            return vectors, ones
        if self.format == "float16":
            return vectors.astype(np.float16), ones
        if self.format in STORAGE_BITS:  # codes and norms (``index/turbo.py``)
            return encode_storage(vectors, STORAGE_BITS[self.format])
        peak = np.abs(vectors).max(axis=1) if vectors.size else np.zeros(len(vectors))
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
        return codes, scales


def _faiss_scores(
    store: SecondaryVectors, queries: np.ndarray, rows: np.ndarray, distance: Distance
) -> np.ndarray | None:
    """Scores of ``rows (nq, c)`` computed in faiss, reading the stored float32 rows in
    place (no gathered copy): ``fvec_inner_products_by_idx`` / ``fvec_L2sqr_by_idx``.
    None where faiss has no kernel (float16 / int8 storage, Manhattan)."""
    if store.format != "float32" or distance is Distance.MANHATTAN or len(store) == 0:
        return None
    data = store.raw_rows()
    xq = np.ascontiguousarray(queries, dtype=np.float32)
    ids = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(ids.shape, dtype=np.float32)
    kernel = (
        _FAISS.fvec_inner_products_by_idx if distance.higher_is_better else _FAISS.fvec_L2sqr_by_idx
    )
    kernel(
        _FAISS.swig_ptr(out), _FAISS.swig_ptr(xq), _FAISS.swig_ptr(data), _FAISS.swig_ptr(ids),
        store.dim, ids.shape[0], ids.shape[1],
    )  # fmt: skip
    if distance is Distance.EUCLID:
        np.sqrt(np.maximum(out, 0.0), out=out)
    return out


def _code_scores(
    store: SecondaryVectors, queries: np.ndarray, rows: np.ndarray, distance: Distance
) -> np.ndarray | None:
    """Scores of a turbo4 store's rows without decoding them: inner products in the
    rotated space, and for Euclid ``|q|^2 + |x|^2 - 2<q, x>`` with the kept norms.
    None for Manhattan (no inner-product form)."""
    if distance is Distance.MANHATTAN:
        return None
    products = store.products(queries, rows)
    if distance.higher_is_better:
        return products
    squared = np.einsum("qd,qd->q", queries, queries)[:, None] + store.norms(rows) ** 2
    rooted: np.ndarray = np.sqrt(np.maximum(squared - 2 * products, 0.0))
    return rooted


def exact_scores(vectors: np.ndarray, queries: np.ndarray, distance: Distance) -> np.ndarray:
    """Scores of ``vectors (nq, c, d)`` against ``queries (nq, d)`` in Qdrant's units."""
    if distance.higher_is_better:
        scores: np.ndarray = np.matmul(vectors, queries[:, :, None])[:, :, 0]
        return scores
    difference = vectors - queries[:, None, :]
    if distance is Distance.EUCLID:
        squared = np.einsum("qcd,qcd->qc", difference, difference)
        rooted: np.ndarray = np.sqrt(np.maximum(squared, 0.0))
        return rooted
    manhattan: np.ndarray = np.abs(difference).sum(axis=2)
    return manhattan


def rerank(
    store: SecondaryVectors,
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    distance: Distance,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of each query's ``candidates`` (rows, -1 padded) by exact score."""
    nq = len(queries)
    ids = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), distance.worst_score, dtype=np.float32)
    if nq == 0 or k == 0 or candidates.shape[1] == 0:
        return ids, scores
    for start in range(0, nq, _QUERY_BLOCK):
        block = slice(start, start + _QUERY_BLOCK)
        found = candidates[block]
        valid = found >= 0
        safe = np.maximum(found, 0)
        exact = _faiss_scores(store, queries[block], safe, distance)
        if exact is None and store.format in STORAGE_BITS:
            exact = _code_scores(store, queries[block], safe, distance)
        if exact is None:
            exact = exact_scores(store.gather(safe), queries[block], distance)
        key = np.where(valid, -exact if distance.higher_is_better else exact, np.inf)
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        width = order.shape[1]
        picked_valid = np.take_along_axis(valid, order, axis=1)
        ids[block, :width] = np.where(picked_valid, np.take_along_axis(found, order, axis=1), -1)
        scores[block, :width] = np.where(
            picked_valid, np.take_along_axis(exact, order, axis=1), distance.worst_score
        )
    return ids, scores
