"""The one interface every vector index backend implements.

Rows are dense internal ids ``0 .. count-1`` in insertion order; the server maps
them to point ids. Results are batch-first, faiss-style: ``ids (nq, k)`` padded
with -1 and ``scores (nq, k)`` in Qdrant's units (similarity for Cosine / Dot,
distance for Euclid / Manhattan), padded with the metric's worst score.

``allowed`` is a boolean mask over rows (deleted rows and filtered-out rows are
False); backends check it in native code, never with a Python callback.
Serialisation is to and from ``bytes`` so that ``index/`` knows nothing of files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, Self, runtime_checkable

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


class VectorIndex(Protocol):
    """A searchable set of vectors of one dimension and one metric."""

    kind: ClassVar[str]
    dim: int
    distance: Distance

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (vectors already prepared for the metric: normalised for Cosine).

        Builds call this in chunks so a build can report progress and be cancelled."""
        ...

    def delete(self, rows: np.ndarray) -> None:
        """Tombstone rows: they are never returned again (graphs keep them as waypoints)."""
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

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self: ...

    def stats(self) -> IndexStats: ...


@runtime_checkable
class TrainableIndex(Protocol):
    """A backend that learns from a sample before its first ``add`` (codebooks,
    projections). Builds call ``train`` once with up to ``TRAINING_SAMPLE`` rows and,
    for query-aware methods, a sample of queries; a clone made for a merge is trained."""

    @property
    def is_trained(self) -> bool: ...

    def train(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> None: ...


TRAINING_SAMPLE = 100_000
