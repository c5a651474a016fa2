"""Search compressed, re-rank with full vectors: the machinery every compressed backend shares.

A two-stage index keeps two representations of each row:

* a **primary** faiss index over compact codes (scalar-quantized, product-quantized,
  binary, RaBitQ, or LeanVec's projected and quantized vectors), whose graph walk and
  code distances run in C++ with the filter checked there too (``IDSelectorBitmap``);
* **secondary** full-dimensional vectors (``index/rerank.py``) used to re-score the
  candidates the primary returns: ``ceil(k * oversampling)``, or by default at least the
  search beam (``ef``), so recall keeps rising with ef (``_rerank_depth``).

Subclasses say how rows become codes (``_encode_rows`` / ``_encode_queries``), which
faiss index holds them (``_new_primary``), how a primary distance reads as a score
(``_primary_scores``) and the default oversampling. Everything else — tombstones,
filters, exact and ``ignore`` paths, re-ranking, stats and serialisation — lives here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import faiss
import numpy as np

from index.base import IndexStats, SearchParams
from index.faiss_mapping import Mapped, mapped_parts, read_hnsw
from index.flat import Tombstones, exact_search
from index.hnsw_faiss import hnsw_graph_bytes, search_hnsw
from index.metrics import Distance
from index.rerank import SecondaryFormat, SecondaryVectors, rerank
from index.serialization import Buffer, IndexFormatError, pack, unpack

_FAISS: Any = faiss


def primary_placement(on_disk: bool, graph_on_disk: bool, always_ram: bool | None) -> Mapped:
    """Which parts of the primary index stay in a memory-mapped segment file, by
    Qdrant's rule: the graph's links with ``hnsw_config.on_disk``; the codes with the
    vector's ``on_disk`` unless quantization's ``always_ram`` is true (codes in RAM,
    originals mapped). The originals themselves are always read from the file
    (``maps_originals``)."""
    return Mapped(graph=graph_on_disk, codes=on_disk and not always_ram)


class TwoStageIndex(ABC):
    """The shared body of every compressed backend (a :class:`index.base.VectorIndex`)."""

    kind: ClassVar[str]
    multi_vector: ClassVar[bool] = False
    approximate: ClassVar[bool] = True
    maps_originals: ClassVar[bool] = True
    """``from_bytes`` keeps the secondary vectors as zero-copy views of the buffer."""

    def __init__(self, dim: int, distance: Distance, secondary: SecondaryFormat) -> None:
        self.dim = dim
        self.distance = distance
        self._secondary = SecondaryVectors(dim, secondary)
        self._primary: Any = None
        self._model_bytes = 0
        """Trained state (codebooks, ranges, centroids): the empty trained primary's size."""
        self._builder: Any = None
        """While rows are added: an ``IndexHNSWFlat`` growing the float graph, moved
        into the primary (``_sync_graph``) before the index is searched or saved."""
        self._deleted = Tombstones()
        self._file: Buffer | None = None
        """The mapped blob the primary's links or codes point into, kept open."""

    # -- hooks ---------------------------------------------------------------

    @abstractmethod
    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        """Learn whatever the codes need from a sample and return an empty, trained
        primary faiss index."""

    @abstractmethod
    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        """Rows as the primary index takes them (projected, padded, bit-packed...)."""

    @abstractmethod
    def _encode_queries(self, queries: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """The primary's raw distances as approximate Qdrant scores (``rescore: false``)."""

    @abstractmethod
    def _default_oversampling(self) -> float: ...

    @abstractmethod
    def _default_ef(self) -> int: ...

    @abstractmethod
    def _params_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def _placement(self) -> Mapped:
        """What of the primary a memory-mapped file keeps (``primary_placement``)."""

    def _extra_state(self) -> tuple[dict[str, Any], list[bytes]]:
        """Learned state beside the faiss index (a mean, a projection), for ``to_bytes``."""
        return {}, []

    def _load_extra_state(self, header: dict[str, Any], blobs: list[Buffer]) -> None:
        return None

    def _float_graph(self) -> tuple[int, int, int] | None:
        """``(m, ef_construct, faiss metric)`` to build the graph on the full vectors
        and search it with the codes (Qdrant's way), or None to build it on the codes.

        Coarse codes make poor graphs: on GloVe-50, HNSW built over 16x product codes
        reached recall@10 0.48 after re-ranking 160 candidates, the same codes on a
        graph built from the floats 0.97 (docs/adr/0005-quantization.md)."""
        return None

    # -- VectorIndex ------------------------------------------

    @property
    def rows_on_disk(self) -> bool:
        """Whatever the vector's ``on_disk``, the originals are mapped (``maps_originals``)."""
        return False

    @property
    def count(self) -> int:
        return len(self._secondary)

    @property
    def is_trained(self) -> bool:
        return self._primary is not None

    def train(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> None:
        if len(vectors) == 0:
            raise ValueError("cannot train on zero vectors")
        self._primary = self._fit(np.ascontiguousarray(vectors, dtype=np.float32), queries)
        self._model_bytes = len(self._serialize_primary()) + self._extra_model_bytes()

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return
        if self._primary is None:
            self.train(vectors)
        graph = self._float_graph()
        if graph is None:
            self._primary.add(self._encode_rows(vectors))
        else:
            self._grow_float_graph(vectors, *graph)
        self._secondary.append(vectors)
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
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        mask = self._deleted.live(allowed)
        self._sync_graph()
        if params.exact or params.ignore_quantization or self._primary is None:
            return exact_search(self._secondary.matrix(), queries, k, self.distance, mask)
        nq = len(queries)
        if self.count == 0 or k == 0:
            empty = np.full((nq, k), -1, dtype=np.int64)
            return empty, np.full((nq, k), self.distance.worst_score, dtype=np.float32)
        wanted = min(self.count, self._rerank_depth(k, params))
        raw, found = self._search_primary(queries, wanted, params.ef, mask)
        if params.rescore is False:
            return self._unscored(raw[:, :k], found[:, :k], queries, k)
        return rerank(self._secondary, queries, found, k, self.distance)

    def _rerank_depth(self, k: int, params: SearchParams) -> int:
        """Candidates re-ranked: ``k * oversampling`` when the query names it; by default
        at least the whole beam, so a larger ``ef`` keeps raising recall. A fixed
        ``k * 4`` stopped LeanVec (D/4 dims) at recall@10 0.93 on MiniLM-384 at any ef:
        the true neighbours were in the beam but ranked past 40 by the coarse codes."""
        oversampling = params.oversampling or self._default_oversampling()
        depth = max(k, math.ceil(k * max(oversampling, 1.0)))
        if params.oversampling is None:
            depth = max(depth, params.ef or self._default_ef())
        return depth

    def vectors(self) -> np.ndarray:
        return self._secondary.matrix()

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        """Some rows decoded, without decoding the whole matrix."""
        return self._secondary.gather(rows)

    @property
    def lossless(self) -> bool:
        """Whether ``vectors()`` returns the rows exactly as added (float32 secondary)."""
        return self._secondary.format == "float32"

    def same_rows(self, vectors: np.ndarray) -> np.ndarray:
        """Which rows hold exactly these vectors, as stored (see ``SecondaryVectors``)."""
        return self._secondary.same_rows(vectors)

    def stats(self) -> IndexStats:
        self._sync_graph()
        codes = 0 if self._primary is None else self.count * self._code_bytes()
        graph = 0 if self._primary is None else hnsw_graph_bytes(self._primary.hnsw)
        parts = {
            "codes": codes,
            "graph": graph,
            "model": self._model_bytes,
            "originals": 0,
            "originals_mapped": 0,
            "tombstones": self._deleted.nbytes,
        } | self._mapped_primary()
        parts["codes"] -= parts.get("codes_mapped", 0)
        parts["graph"] -= parts.get("graph_mapped", 0)
        # a turbo4 vector's rows are codes themselves: no float originals exist
        held = "stored_codes" if self._secondary.format == "turbo4" else "originals"
        parts[held + ("_mapped" if self._secondary.mapped else "")] = self._secondary.nbytes
        in_memory = sum(v for k, v in parts.items() if not k.endswith("_mapped"))
        return IndexStats(count=self.count, memory_bytes=in_memory, parts=parts)

    def to_bytes(self) -> bytes:
        self._sync_graph()
        extra_header, extra_blobs = self._extra_state()
        header = {
            "kind": self.kind,
            "dim": self.dim,
            "distance": self.distance.value,
            "params": self._params_dict(),
            "count": self.count,
            "secondary": self._secondary.format,
            "trained": self._primary is not None,
            "model_bytes": self._model_bytes,
            "extra": extra_header,
        }
        primary = b"" if self._primary is None else self._serialize_primary()
        blobs = [primary, *self._secondary.to_blobs(), self._deleted.to_bytes()]
        return pack(header, blobs + extra_blobs)

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self:
        header, blobs = unpack(data)
        if header.get("kind") != cls.kind:
            raise IndexFormatError(f"expected a {cls.kind} index, got {header.get('kind')!r}")
        index = cls._from_header(header)
        count = header["count"]
        index._secondary = SecondaryVectors.from_blobs(
            header["dim"], header["secondary"], count, blobs[1:3]
        )
        index._deleted = Tombstones.from_bytes(blobs[3], count)
        index._load_extra_state(header["extra"], blobs[4:])
        if header["trained"]:
            index._primary = index._deserialize_primary(blobs[0])
            index._model_bytes = header["model_bytes"]
        return index

    def _mapped_primary(self) -> dict[str, int]:
        """``codes_mapped`` / ``graph_mapped`` bytes of a primary read in place."""
        if self._primary is None or self._file is None:
            return {}
        where = mapped_parts(self._primary, binary=self._binary_primary())
        links = int(self._primary.hnsw.neighbors.size()) * 4
        return {
            "codes_mapped": self.count * self._code_bytes() if where.codes else 0,
            "graph_mapped": links if where.graph else 0,
        }

    @classmethod
    @abstractmethod
    def _from_header(cls, header: dict[str, Any]) -> Self:
        """A new empty index with the header's dim, distance and params."""

    # -- internals -------------------------------------------------------------

    def _grow_float_graph(
        self, vectors: np.ndarray, m: int, ef_construct: int, metric: int
    ) -> None:
        """Extend the float graph (restarting it from the primary's graph and the stored
        originals after a sync or a reload) and append the codes without links."""
        if self._builder is None:
            self._builder = _FAISS.IndexHNSWFlat(self.dim, m, metric)
            self._builder.hnsw.efConstruction = ef_construct
            if self.count:
                self._builder.hnsw = self._primary.hnsw
                self._builder.storage.add(self._secondary.matrix())
                self._builder.ntotal = self.count
        self._builder.add(vectors)
        self._primary.storage.add(self._encode_rows(vectors))

    def _sync_graph(self) -> None:
        builder = self._builder
        if builder is None:
            return
        self._primary.hnsw = builder.hnsw
        self._primary.ntotal = builder.ntotal
        self._builder = None

    def _serialize_primary(self) -> bytes:
        if isinstance(self._primary, _FAISS.IndexBinary):
            return bytes(_FAISS.serialize_index_binary(self._primary).tobytes())
        return bytes(_FAISS.serialize_index(self._primary).tobytes())

    def _deserialize_primary(self, blob: Buffer) -> Any:
        """The primary, its links and codes left in a mapped ``blob`` as ``_placement``
        says (a later ``add`` works on a copy: builds clone through ``bytes``)."""
        placement = self._placement()
        if placement.any and isinstance(blob, memoryview):
            self._file = blob
        return read_hnsw(blob, placement, binary=self._binary_primary())

    def _binary_primary(self) -> bool:
        return False

    def _extra_model_bytes(self) -> int:
        """Learned arrays kept outside faiss (a mean, a projection)."""
        return 0

    def _code_bytes(self) -> int:
        return int(_FAISS.downcast_index(self._primary.storage).code_size)

    def _search_primary(
        self, queries: np.ndarray, wanted: int, ef: int | None, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        beam = max(ef or self._default_ef(), wanted)
        return search_hnsw(self._primary, self._encode_queries(queries), wanted, beam, mask)

    def _unscored(
        self, raw: np.ndarray, found: np.ndarray, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.where(found >= 0, self._primary_scores(raw, queries), self.distance.worst_score)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        padded = np.full((len(queries), k), self.distance.worst_score, dtype=np.float32)
        ids[:, : found.shape[1]] = found
        padded[:, : found.shape[1]] = scores
        return ids, padded
