"""The one interface every vector index backend implements.

Rows are dense internal ids ``0 .. count-1`` in insertion order; the server maps
them to point ids. Results are batch-first, faiss-style: ``ids (nq, k)`` padded
with -1 and ``scores (nq, k)`` in Qdrant's units (similarity for Cosine / Dot,
distance for Euclid / Manhattan), padded with the metric's worst score.

``allowed`` is a boolean mask over rows (deleted rows and filtered-out rows are
False); backends check it in native code, never with a Python callback.
Serialisation is to and from ``bytes`` so that ``index/`` knows nothing of files.

One Protocol family: :class:`IndexBackend` (what every backend says about itself),
:class:`VectorIndex` for dense rows and ``index.multivector.MultiVectorIndex`` for ragged
token sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from index.metrics import Distance
from index.serialization import Buffer


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Per-query knobs. ``ef``: HNSW beam width (None = backend default);
    ``exact``: bypass the approximate structure and scan every allowed row.

    Two-stage backends (quantized codes, LeanVec) also read Qdrant's ``quantization``
    knobs: ``ignore`` answers from the full vectors only, ``rescore`` (default on)
    re-ranks candidates with the full vectors, ``oversampling`` fetches
    ``ceil(k * oversampling)`` candidates; ``rerank_factor`` is LeanVec's name for it.
    Other backends ignore them, as Qdrant does on collections without quantization."""

    ef: int | None = None
    exact: bool = False
    ignore_quantization: bool = False
    rescore: bool | None = None
    oversampling: float | None = None


@dataclass(frozen=True, slots=True)
class IndexStats:
    """``memory_bytes`` in RAM; ``parts`` splits it (e.g. graph / codes / originals)."""

    count: int
    memory_bytes: int
    parts: dict[str, int] | None = None


class IndexBackend(Protocol):
    """What every backend, dense or multi-vector, says about itself: the server asks
    these instead of checking classes (Qdrant's ``VectorIndex::is_index``)."""

    kind: ClassVar[str]
    multi_vector: ClassVar[bool]
    """Rows are ragged token sets (:class:`index.multivector.MultiVectorIndex`), not an
    ``(n, dim)`` matrix (:class:`VectorIndex`); see ``index.registry.is_multi_vector``."""
    approximate: ClassVar[bool]
    """A structure (a graph over vectors, codes or encodings) answers instead of an
    exhaustive scan, so the planner's graph strategies apply."""
    maps_originals: ClassVar[bool]
    """``from_bytes`` over a memory-mapped file leaves the full vectors in the file
    instead of copying them: a freshly written index is reopened from its file to drop
    the in-memory copy."""
    dim: int
    distance: Distance

    @property
    def rows_on_disk(self) -> bool:
        """Built for an ``on_disk`` vector: ``from_bytes`` over a memory-mapped file leaves
        the full rows in the file, so a freshly written index is reopened from it (as
        with ``maps_originals``, but chosen per vector rather than by the backend)."""
        ...

    def __init__(self, dim: int, distance: Distance, params: Any = None) -> None:
        """An empty index; ``params`` is the backend's own frozen params dataclass."""
        ...

    @property
    def lossless(self) -> bool:
        """Whether stored rows read back exactly as added (no float16 / int8 copy)."""
        ...

    def delete(self, rows: np.ndarray) -> None:
        """Tombstone rows: they are never returned again (graphs keep them as waypoints)."""
        ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self: ...

    def stats(self) -> IndexStats: ...


class VectorIndex(IndexBackend, Protocol):
    """A searchable set of dense vectors of one dimension and one metric.

    As in faiss, every backend has ``is_trained`` / ``train``: backends that learn
    nothing (flat, HNSW) are always trained and ``train`` does nothing."""

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (vectors already prepared for the metric: normalised for Cosine).

        Builds call this in chunks so a build can report progress and be cancelled."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def vectors(self) -> np.ndarray:
        """All stored rows as a read-only ``(count, dim)`` float32 view."""
        ...

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        """A float32 copy of some rows, without decoding the whole matrix."""
        ...

    def same_rows(self, vectors: np.ndarray) -> np.ndarray:
        """Per row: does the index hold exactly ``vectors[row]`` (as it would store it)?"""
        ...

    @property
    def is_trained(self) -> bool:
        """False for a backend that must learn from a sample (codebooks, projections)
        before its first ``add``."""
        ...

    def train(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> None:
        """Learn from up to ``TRAINING_SAMPLE`` rows and, for query-aware methods, a
        sample of queries; builds call it once on a fresh (or merge-cloned) index."""
        ...


TRAINING_SAMPLE = 100_000


class KeepsVectorsAsGiven:
    """What flat and HNSW-flat backends share: every vector is stored exactly as added, so
    rows come back unchanged (``lossless``), compare exactly, and there is nothing to
    train. A subclass provides ``vectors()``."""

    def vectors(self) -> np.ndarray:
        raise NotImplementedError

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        picked: np.ndarray = self.vectors()[rows]
        return picked

    def row_range(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as float32, a view where the storage is float32 (a tenant's
        co-located rows are scored without a gather)."""
        block: np.ndarray = self.vectors()[start:stop]
        return block

    def same_rows(self, vectors: np.ndarray) -> np.ndarray:
        same: np.ndarray = (self.vectors() == vectors).all(axis=1)
        return same

    @property
    def lossless(self) -> bool:
        return True

    @property
    def is_trained(self) -> bool:
        return True

    def train(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> None:
        """Nothing to learn: the index is built by ``add``."""
