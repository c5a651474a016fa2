"""The backends a segment can be built with, and how to build or reload each one.

Users pick them through ``"index": {"type": "flat" | "hnsw" | "leanvec"}`` and, for
the quantized HNSW kinds, ``quantization_config``. A test asserts this registry
equals the documented list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import TypeIs

from index.base import VectorIndex
from index.flat import FlatIndex, FlatParams
from index.hnsw_faiss import HnswIndex, HnswParams
from index.leanvec_index import LeanVecIndex, LeanVecParams
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, MultiVectorIndex
from index.muvera_index import MuveraIndex, MuveraIndexParams
from index.quantization import QUANTIZED_BACKENDS, QuantizedParams
from index.serialization import Buffer, IndexFormatError, unpack
from index.sparse import SparseIndex, SparseParams, SparseRowsIndex

BACKENDS: dict[str, tuple[type[VectorIndex], type[Any]]] = {
    "flat": (FlatIndex, FlatParams),
    "hnsw": (HnswIndex, HnswParams),
    **{cls.kind: (cls, QuantizedParams) for cls in QUANTIZED_BACKENDS.values()},
    "leanvec": (LeanVecIndex, LeanVecParams),
}
"""Backend name -> (index class, params dataclass)."""

MULTI_BACKENDS: dict[str, tuple[type[MultiVectorIndex], type[Any]]] = {
    "maxsim": (MaxSimIndex, MaxSimParams),
    "muvera": (MuveraIndex, MuveraIndexParams),
}
"""Multi-vector backends (ragged token sets): exact MaxSim, and MUVERA in front of it."""

AnyIndex = VectorIndex | MultiVectorIndex | SparseRowsIndex
"""Any backend a segment may hold for one named vector."""


def is_multi_vector(index: AnyIndex) -> TypeIs[MultiVectorIndex]:
    """Whether ``index`` holds token sets; asks the backend (``multi_vector``), so the
    caller gets the right part of the family without checking a class."""
    return index.multi_vector


def is_sparse(index: AnyIndex) -> TypeIs[SparseRowsIndex]:
    """Whether ``index`` holds sparse rows (its ``kind``)."""
    return index.kind == SparseIndex.kind


def create_sparse_index(params: Mapping[str, Any] | None = None) -> SparseRowsIndex:
    """A new, empty exact sparse index (the only sparse backend); ``params`` are
    ``SparseParams``'s (``on_disk``)."""
    index: SparseRowsIndex = SparseIndex(params=SparseParams(**(params or {})))
    return index


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def create_index(
    kind: str, dim: int, distance: Distance, params: Mapping[str, Any] | None = None
) -> VectorIndex:
    """A new, empty index of ``kind``; unknown keys in ``params`` are a ValueError."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown index type {kind!r}; expected one of {backend_names()}")
    index_class, params_class = BACKENDS[kind]
    index: VectorIndex = index_class(dim, distance, params_class(**(params or {})))
    return index


def create_multi_index(
    kind: str, dim: int, distance: Distance, params: Mapping[str, Any] | None = None
) -> MultiVectorIndex:
    """A new, empty multi-vector index (``maxsim`` or ``muvera``)."""
    if kind not in MULTI_BACKENDS:
        raise ValueError(f"unknown multi-vector index type {kind!r}")
    index_class, params_class = MULTI_BACKENDS[kind]
    index: MultiVectorIndex = index_class(dim, distance, params_class(**(params or {})))
    return index


def index_from_bytes(data: Buffer, *, map_graph: bool = False) -> AnyIndex:
    """``map_graph``: an HNSW graph read from a memory-mapped file keeps its rows and
    links in that file (``HnswIndex.from_bytes(mapped=True)``); other kinds ignore it."""
    header, _ = unpack(data)
    kind = header.get("kind")
    if kind == SparseIndex.kind:
        return SparseIndex.from_bytes(data)
    if map_graph and kind == HnswIndex.kind:
        return HnswIndex.from_bytes(data, mapped=True)
    known = BACKENDS | MULTI_BACKENDS
    if kind not in known:
        raise IndexFormatError(f"unknown index type {kind!r} in serialised index")
    index: AnyIndex = known[kind][0].from_bytes(data)
    return index
