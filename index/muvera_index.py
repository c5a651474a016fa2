"""The ``muvera`` multi-vector backend: FDE candidates from a single-vector index, exact
MaxSim re-ranking.

Each document's token set is encoded once into a Fixed Dimensional Encoding
(``index/muvera.py``) and added to an inner single-vector index (faiss HNSW, or flat for
an exact scan of the encodings) under inner product. A query is encoded the same way,
the inner index returns ``ceil(k · candidates_factor)`` candidates (the filter checked in
native code), and those are re-scored by exact MaxSim against the stored token sets
(:class:`index.multivector.MaxSimIndex`), so scores are always exact. ``params.exact``
skips the encodings and scans every allowed set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Literal, Self

import faiss
import numpy as np

from index.base import IndexStats, SearchParams
from index.faiss_mapping import Mapped, mapped_parts, read_hnsw
from index.flat import FlatIndex, FlatParams, Tombstones
from index.hnsw_faiss import HnswIndex, HnswParams, hnsw_graph_bytes, search_hnsw
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, Ragged, TokenStorage
from index.muvera import MuveraEncoder, MuveraParams
from index.serialization import Buffer, IndexFormatError, pack, unpack

InnerKind = Literal["hnsw_sq8", "hnsw", "flat"]
_FAISS: Any = faiss
SQ_RANGE_MARGIN = 0.25
"""8-bit ranges are learned from the first batch of encodings and widened by this share
of their width on each side, so later batches are rarely clipped."""


class CodeGraph:
    """faiss ``IndexHNSWSQ``: an HNSW graph walked over 8-bit codes of the encodings.

    Candidates only need a good order (MaxSim re-scores them exactly), and the codes are
    a quarter of the float encodings: on the 20k-document MiniLM benchmark the same
    recall as a float graph, 1.2x faster per query and 2x faster to build.

    ``on_disk``: read back from a memory-mapped file, the links and the codes stay in it."""

    def __init__(self, dim: int, m: int, ef_construct: int, *, on_disk: bool = False) -> None:
        self.dim = dim
        self.m = m
        self.ef_construct = ef_construct
        self.on_disk = on_disk
        self._index: Any = None
        self._deleted = Tombstones()
        self._file: Buffer | None = None

    @property
    def count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return
        if self._index is None:
            index = _FAISS.IndexHNSWSQ(
                self.dim,
                _FAISS.ScalarQuantizer.QT_8bit,
                max(self.m, 2),
                _FAISS.METRIC_INNER_PRODUCT,
            )
            index.hnsw.efConstruction = self.ef_construct
            quantizer = _FAISS.downcast_index(index.storage).sq
            quantizer.rangestat = _FAISS.ScalarQuantizer.RS_minmax
            quantizer.rangestat_arg = SQ_RANGE_MARGIN
            index.train(vectors)
            self._index = index
        self._index.add(vectors)
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
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        if self._index is None or k == 0:
            return ids, scores
        ef = max((params.ef if params else None) or k, k)
        mask = self._deleted.live(allowed)
        raw, found = search_hnsw(self._index, np.ascontiguousarray(queries), k, ef, mask)
        ids[:] = found
        scores[:] = np.where(found >= 0, raw, -np.inf)
        return ids, scores

    def to_bytes(self) -> bytes:
        graph = b"" if self._index is None else faiss.serialize_index(self._index).tobytes()
        header = {"dim": self.dim, "m": self.m, "ef_construct": self.ef_construct}
        header["on_disk"] = self.on_disk
        return pack(header | {"count": self.count}, [graph, self._deleted.to_bytes()])

    @classmethod
    def from_bytes(cls, data: Buffer) -> CodeGraph:
        header, (graph, deleted) = unpack(data)
        index = cls(
            header["dim"], header["m"], header["ef_construct"], on_disk=header.get("on_disk", False)
        )
        if len(graph):
            index._index = read_hnsw(graph, Mapped(graph=index.on_disk, codes=index.on_disk))
            index._file = graph if index.on_disk and isinstance(graph, memoryview) else None
        index._deleted = Tombstones.from_bytes(deleted, header["count"])
        return index

    def stats(self) -> IndexStats:
        """Bytes in the heap; read in place, links and codes are ``*_mapped``."""
        parts = {
            "graph": 0 if self._index is None else hnsw_graph_bytes(self._index.hnsw),
            "codes": self.count * self.dim,
            "tombstones": self._deleted.nbytes,
        }
        if self._index is not None and self._file is not None:
            where = mapped_parts(self._index)
            links = int(self._index.hnsw.neighbors.size()) * 4 if where.graph else 0
            codes = parts["codes"] if where.codes else 0
            parts |= {"graph": parts["graph"] - links, "codes": parts["codes"] - codes}
            parts |= {"graph_mapped": links, "codes_mapped": codes}
        in_memory = sum(v for k, v in parts.items() if not k.endswith("_mapped"))
        return IndexStats(count=self.count, memory_bytes=in_memory, parts=parts)


@dataclass(frozen=True, slots=True)
class MuveraIndexParams:
    """The encoder's knobs (see :class:`index.muvera.MuveraParams` for their trade-offs
    and the measured defaults) plus how candidates are found and re-ranked.

    candidates_factor: candidates per result re-ranked by exact MaxSim (k x factor; 2-20).
      FDE order alone is a rough ranking, so more candidates buy recall linearly in
      re-rank time; see bench/README.md for the measured curve.
    inner: "hnsw_sq8" (graph over 8-bit codes of the encodings: a quarter of the memory,
      the default), "hnsw" (graph over float encodings) or "flat" (exact scan of the
      float encodings: no graph; for small collections and for measuring).
    m, ef_construct: the inner HNSW graph's knobs.
    storage: token storage for re-ranking, "float32", "float16" (half the memory) or
      "uint8" (a quarter, for a ``uint8`` datatype's integer tokens).
    on_disk: the re-ranking tokens stay in the segment's memory-mapped file once read
      from it (``MaxSimParams.on_disk``).
    graph_on_disk: ``hnsw_config.on_disk``: the encodings' graph, and the encodings or
      their codes (they are the index, not the originals), stay in that file.
    """

    k_sim: int = 4
    d_proj: int | None = 16
    repetitions: int = 20
    fill_empty: bool = True
    final_dim: int | None = None
    seed: int = 42
    candidates_factor: float = 40.0
    inner: InnerKind = "hnsw_sq8"
    m: int = 16
    ef_construct: int = 100
    storage: TokenStorage = "float32"
    on_disk: bool = False
    graph_on_disk: bool = False

    def __post_init__(self) -> None:
        if self.candidates_factor < 1:
            raise ValueError(f"candidates_factor must be >= 1, got {self.candidates_factor}")
        if self.inner not in ("hnsw_sq8", "hnsw", "flat"):
            raise ValueError(f"inner must be 'hnsw_sq8', 'hnsw' or 'flat', got {self.inner!r}")
        self.encoder_params()  # validates the encoder's knobs

    def encoder_params(self) -> MuveraParams:
        return MuveraParams(
            self.k_sim, self.d_proj, self.repetitions, self.fill_empty, self.final_dim, self.seed
        )


class MuveraIndex:
    """FDE candidates from an inner index, re-scored by exact MaxSim."""

    kind: ClassVar[str] = "muvera"
    multi_vector: ClassVar[bool] = True
    approximate: ClassVar[bool] = True
    maps_originals: ClassVar[bool] = False

    def __init__(
        self, dim: int, distance: Distance, params: MuveraIndexParams | None = None
    ) -> None:
        self.dim = dim
        self.distance = distance
        self.params = params or MuveraIndexParams()
        self.encoder = MuveraEncoder(dim, self.params.encoder_params())
        self.tokens = MaxSimIndex(
            dim, distance, MaxSimParams(self.params.storage, self.params.on_disk)
        )
        self.inner: CodeGraph | HnswIndex | FlatIndex = self._new_inner()

    def _new_inner(self) -> CodeGraph | HnswIndex | FlatIndex:
        dim, mapped = self.encoder.output_dim, self.params.graph_on_disk
        if self.params.inner == "flat":
            return FlatIndex(dim, Distance.DOT, FlatParams(on_disk=mapped))
        if self.params.inner == "hnsw_sq8":
            return CodeGraph(dim, self.params.m, self.params.ef_construct, on_disk=mapped)
        graph = HnswParams(m=self.params.m, ef_construct=self.params.ef_construct, on_disk=mapped)
        return HnswIndex(dim, Distance.DOT, graph)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def rows_on_disk(self) -> bool:
        return self.params.on_disk or self.params.graph_on_disk

    @property
    def lossless(self) -> bool:
        return self.tokens.lossless

    def encode_documents(self, items: Ragged) -> np.ndarray:
        """FDEs of ``items``; a row without tokens gets a zero encoding (never searched)."""
        out = np.zeros((len(items), self.encoder.output_dim), dtype=np.float32)
        filled = np.flatnonzero(items.lengths > 0)
        if len(filled):
            some = items.take(filled)
            out[filled] = self.encoder.encode_documents(some.tokens, some.offsets)
        return out

    def add(self, items: Ragged) -> None:
        self.inner.add(self.encode_documents(items))
        self.tokens.add(items)

    def delete(self, rows: np.ndarray) -> None:
        self.tokens.delete(rows)
        self.inner.delete(rows)

    def search(
        self,
        queries: Ragged,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim scores of the best re-ranked candidates; ``params.oversampling``
        overrides ``candidates_factor`` per query, ``params.ef`` the graph's beam. Without
        ``oversampling`` the whole beam is re-ranked when it is wider than ``k x factor``,
        so a larger ef keeps raising recall, as in the two-stage backends: the default 40
        per result stopped at recall@10 0.90 on real MiniLM tokens (bench/results/muvera.md)."""
        params = params or SearchParams()
        if params.exact or params.ignore_quantization:
            return self.tokens.search(queries, k, allowed=allowed)
        ok = self.tokens.searchable(allowed)
        factor = params.oversampling or self.params.candidates_factor
        depth = max(k, math.ceil(k * factor))
        if params.oversampling is None and params.ef is not None:
            depth = max(depth, params.ef)
        wanted = min(int(ok.sum()), depth)
        if wanted == 0:
            return self.tokens.search(queries, k, allowed=ok)
        fde = self.encoder.encode_queries(queries.tokens, queries.offsets)
        inner_params = replace(params, ef=None if params.ef is None else max(params.ef, wanted))
        mask = None if ok.all() else ok  # no bitmap when every row may be returned
        candidates, _ = self.inner.search(fde, wanted, params=inner_params, allowed=mask)
        return self.tokens.rescore(queries, candidates, k)

    def items(self, rows: np.ndarray | None = None) -> Ragged:
        return self.tokens.items(rows)

    def same_rows(self, items: Ragged) -> np.ndarray:
        return self.tokens.same_rows(items)

    def to_bytes(self) -> bytes:
        header: dict[str, Any] = {
            "kind": self.kind,
            "dim": self.dim,
            "distance": self.distance.value,
            "params": asdict(self.params),
        }
        return pack(header, [self.tokens.to_bytes(), self.inner.to_bytes()])

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self:
        header, blobs = unpack(data)
        if len(blobs) != 2:
            raise IndexFormatError("muvera index data is truncated")
        index = cls(
            int(header["dim"]), Distance(header["distance"]), MuveraIndexParams(**header["params"])
        )
        index.tokens = MaxSimIndex.from_bytes(blobs[0])
        if index.params.inner == "flat":
            index.inner = FlatIndex.from_bytes(blobs[1])
        elif index.params.inner == "hnsw":
            index.inner = HnswIndex.from_bytes(blobs[1])
        else:
            index.inner = CodeGraph.from_bytes(blobs[1])
        return index

    def stats(self) -> IndexStats:
        tokens, inner = self.tokens.stats(), self.inner.stats()
        inner_parts = inner.parts or {"index": inner.memory_bytes}
        parts = dict(tokens.parts or {}) | {
            f"fde_{name}": size for name, size in inner_parts.items() if name != "tombstones"
        }
        in_memory = sum(v for k, v in parts.items() if not k.endswith("_mapped"))
        return IndexStats(count=tokens.count, memory_bytes=in_memory, parts=parts)
