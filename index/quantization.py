"""Qdrant's quantization methods (and RaBitQ) as two-stage HNSW backends on faiss.

Each method keeps an HNSW graph over compact codes, walks it in C++ with the codes'
own distance, and re-ranks ``ceil(k * oversampling)`` candidates with the original
float32 vectors (``index/two_stage.py``; the graph itself is grown from the float
vectors, see ``_float_graph``):

=======  =====================================  ========================  ======================
method   faiss primary                          code bytes / vector       default oversampling
=======  =====================================  ========================  ======================
scalar   ``IndexHNSWSQ`` (8-bit per dimension)  ``d`` (1/4 of float32)    2
product  ``IndexHNSWPQ`` (8-bit sub-codes)      ``4d / compression``      2 x compression (x16: 32)
binary   ``IndexBinaryHNSW`` (sign bits)        ``ceil(d / 8)``           max(4, 4096 / d)
rabitq   ``IndexHNSWRaBitQ``                    <= 1/8 of float32         4 (>= 3 bits), 8 (2),
                                                                          max(8, 6400 / d) (1)
turbo    ``IndexHNSWPQ``, one coordinate (or    ``ceil(d * bits / 8)``    max(2..6, 200..3200 / d)
         pair) per sub-code, fixed Lloyd-Max                              (``_TURBO_OVERSAMPLING``)
         centroids after a random rotation
=======  =====================================  ========================  ======================

The defaults are the smallest oversampling that reached recall@10 >= 0.95 after
re-ranking on the test set (``bench/reference/quantization.json``) and on GloVe-50;
the first full benchmark run (390k GloVe vectors) measured product x16 at 16 candidates
per result 0.924 and 1-bit RaBitQ at 64 0.929, hence 2 x compression and 6400 / d. Binary
codes of low-dimensional vectors are coarse (50 sign bits cannot tell GloVe's
neighbours apart), hence an oversampling that grows as the dimension shrinks. Binary
codes the vector minus the training mean (RaBitQ centres on its own): sign bits of
uncentred embeddings, which crowd into a few orthants, carry little information.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Self

import faiss
import numpy as np

from index.faiss_mapping import Mapped
from index.metrics import Distance
from index.rerank import SecondaryFormat
from index.serialization import Buffer
from index.turbo import codebook, layout, padded_dim, rotation
from index.two_stage import TwoStageIndex, primary_placement

_FAISS: Any = faiss

QuantizationMethod = Literal["scalar", "product", "binary", "rabitq", "turbo"]
COMPRESSIONS = (4, 8, 16, 32, 64)


@dataclass(frozen=True, slots=True)
class QuantizedParams:
    """Knobs of the quantized HNSW backends.

    m, ef_construct: the graph, as for float HNSW (``hnsw_config``).
    ef_search: default beam width when a query gives no ``hnsw_ef``; always at least
      the number of candidates fetched.
    quantile (scalar): clip each dimension's range to this central quantile before
      choosing the 8-bit steps (Qdrant's ``quantile``; 0.99 ignores 1% outliers);
      None uses the full min..max range.
    compression (product): float32 bytes / code bytes, 4..64; higher saves memory
      and needs more oversampling.
    oversampling: candidates fetched per result before re-ranking; None = the
      method's measured default.
    always_ram: Qdrant's flag: true keeps the codes in RAM even when ``on_disk`` maps
      the vector (``two_stage.primary_placement`` has the whole rule).
    on_disk: the vector's ``on_disk``: read back from a memory-mapped file, the codes
      stay in it unless ``always_ram``. (The originals are read from it whatever this says.)
    graph_on_disk: ``hnsw_config.on_disk``: the graph's links stay in the file.
    rabitq_bits (rabitq): bits per dimension, 1..9; None = the most within 1/8 of float32.
    turbo_bits (turbo): bits per coordinate, 1, 1.5, 2, 4 or 8 (Qdrant's ``bits1`` ..
      ``bits8``); None = 4, Qdrant's default. Fewer bits need more oversampling.
    storage (turbo): ``"turbo4"`` for a vector whose ``datatype`` is turbo4: the rows
      re-ranked against are held as their TurboQuant codes and norms (the stored value
      is the decoded code), not as float32 originals. None keeps float32 originals.
    """

    m: int = 16
    ef_construct: int = 100
    ef_search: int = 128
    quantile: float | None = None
    compression: int = 16
    oversampling: float | None = None
    always_ram: bool | None = None
    rabitq_bits: int | None = None
    turbo_bits: float | None = None
    storage: SecondaryFormat | None = None
    on_disk: bool = False
    graph_on_disk: bool = False


class _QuantizedHnsw(TwoStageIndex):
    """Shared by the four methods: originals kept as float32, an HNSW primary."""

    method: ClassVar[QuantizationMethod]

    def __init__(self, dim: int, distance: Distance, params: QuantizedParams | None = None) -> None:
        params = params or QuantizedParams()
        super().__init__(dim, distance, params.storage or "float32")
        self.params = params
        check_supported(self.method, distance, self.params)

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> Self:
        return cls(header["dim"], Distance(header["distance"]), QuantizedParams(**header["params"]))

    def _params_dict(self) -> dict[str, Any]:
        return asdict(self.params)

    def _placement(self) -> Mapped:
        params = self.params
        return primary_placement(params.on_disk, params.graph_on_disk, params.always_ram)

    def _default_ef(self) -> int:
        return self.params.ef_search

    def _default_oversampling(self) -> float:
        bits = self.bits if isinstance(self, RaBitQIndex | TurboQuantizedIndex) else 1
        return self.params.oversampling or default_oversampling(
            self.method, self.dim, self.params.compression, bits
        )

    def _graph(self, primary: Any) -> Any:
        primary.hnsw.efConstruction = self.params.ef_construct
        return primary

    def _metric(self) -> int:
        return self.distance.faiss_metric

    def _float_graph(self) -> tuple[int, int, int] | None:
        return self.params.m, self.params.ef_construct, self._builder_metric()

    def _builder_metric(self) -> int:
        """L2 for codes compared by L2 or Hamming: a graph built with inner products
        came back empty-handed when walked with those distances (faiss 1.15)."""
        return self.distance.faiss_metric

    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        return vectors

    def _encode_queries(self, queries: np.ndarray) -> np.ndarray:
        return self._encode_rows(queries)

    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        if self.distance.higher_is_better:
            return raw
        rooted: np.ndarray = np.sqrt(np.maximum(raw, 0.0))
        return rooted


class ScalarQuantizedIndex(_QuantizedHnsw):
    kind: ClassVar[str] = "hnsw_sq8"
    method: ClassVar[QuantizationMethod] = "scalar"

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        primary = _FAISS.IndexHNSWSQ(
            self.dim, _FAISS.ScalarQuantizer.QT_8bit, self.params.m, self._metric()
        )
        if self.params.quantile is not None:
            quantizer = _FAISS.downcast_index(primary.storage).sq
            quantizer.rangestat = _FAISS.ScalarQuantizer.RS_quantiles
            quantizer.rangestat_arg = (1.0 - self.params.quantile) / 2
        primary.train(vectors)
        return self._graph(primary)


class ProductQuantizedIndex(_QuantizedHnsw):
    """Sub-vectors of ``compression / 4`` dimensions, each coded in one byte; the
    dimension is zero-padded to a multiple of that (zeros change no score)."""

    kind: ClassVar[str] = "hnsw_pq"
    method: ClassVar[QuantizationMethod] = "product"

    @property
    def _padded_dim(self) -> int:
        sub = max(1, self.params.compression // 4)
        return math.ceil(self.dim / sub) * sub

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        sub = max(1, self.params.compression // 4)
        nbits = min(8, int(math.log2(max(len(vectors), 2))))  # k-means needs 2^nbits rows
        primary = _FAISS.IndexHNSWPQ(
            self._padded_dim, self._padded_dim // sub, self.params.m, nbits, self._metric()
        )
        primary.train(self._encode_rows(vectors))
        return self._graph(primary)

    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        if self._padded_dim == self.dim:
            return vectors
        padded = np.zeros((len(vectors), self._padded_dim), dtype=np.float32)
        padded[:, : self.dim] = vectors
        return padded


class _Centred(_QuantizedHnsw):
    """Methods that code the vector minus the training mean."""

    def __init__(self, dim: int, distance: Distance, params: QuantizedParams | None = None) -> None:
        super().__init__(dim, distance, params)
        self._mean = np.zeros(dim, dtype=np.float32)

    def _extra_state(self) -> tuple[dict[str, Any], list[bytes]]:
        return {"mean": True}, [self._mean.tobytes()]

    def _load_extra_state(self, header: dict[str, Any], blobs: list[Buffer]) -> None:
        self._mean = np.frombuffer(blobs[0], dtype=np.float32).copy()

    def _extra_model_bytes(self) -> int:
        return self._mean.nbytes


class BinaryQuantizedIndex(_Centred):
    """One sign bit per (centred) dimension, Hamming distance in the graph."""

    kind: ClassVar[str] = "hnsw_binary"
    method: ClassVar[QuantizationMethod] = "binary"

    @property
    def _bits(self) -> int:
        return math.ceil(self.dim / 8) * 8

    def _binary_primary(self) -> bool:
        return True

    def _builder_metric(self) -> int:
        return int(_FAISS.METRIC_L2)

    def _code_bytes(self) -> int:
        return self._bits // 8

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        self._mean = vectors.mean(axis=0).astype(np.float32)
        return self._graph(_FAISS.IndexBinaryHNSW(self._bits, self.params.m))

    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        signs = np.zeros((len(vectors), self._bits), dtype=bool)
        signs[:, : self.dim] = (vectors - self._mean) > 0
        packed: np.ndarray = np.packbits(signs, axis=1)
        return packed

    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """SimHash: the angle between two vectors is about pi * (differing bits / bits)."""
        cosine = np.cos(np.pi * raw.astype(np.float32) / self.dim)
        if self.distance.higher_is_better:
            return cosine
        rooted: np.ndarray = np.sqrt(np.maximum(2.0 - 2.0 * cosine, 0.0))
        return rooted


class RaBitQIndex(_QuantizedHnsw):
    """faiss's RaBitQ codes are L2-only: Cosine works on the normalised vectors
    (L2 order = cosine order), Euclid directly; Dot is refused at configuration."""

    kind: ClassVar[str] = "hnsw_rabitq"
    method: ClassVar[QuantizationMethod] = "rabitq"

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        primary = _FAISS.IndexHNSWRaBitQ(self.dim, self.params.m, self.bits)
        primary.train(vectors)  # RaBitQ centres on its own trained centroid
        return self._graph(primary)

    @property
    def bits(self) -> int:
        """Bits per dimension: the most whose codes (plus 8 bytes of per-vector factors)
        stay within 1/8 of float32: 1 at 50 dims, 3 at 384."""
        if self.params.rabitq_bits is not None:
            return self.params.rabitq_bits
        return rabitq_bits_within(self.dim, budget=self.dim * 4 // 8)

    def _builder_metric(self) -> int:
        return int(_FAISS.METRIC_L2)

    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        squared = np.maximum(raw, 0.0)
        if self.distance.higher_is_better:  # unit vectors: |q - x|^2 = 2 - 2 cos
            cosine: np.ndarray = 1.0 - squared / 2.0
            return cosine
        rooted: np.ndarray = np.sqrt(squared)
        return rooted


class TurboQuantizedIndex(_QuantizedHnsw):
    """TurboQuant codes (``index/turbo.py``): rows rotated by a fixed random orthogonal
    matrix, then each coordinate (each pair at 1.5 bits) coded against the Lloyd-Max
    codebook of its known law, scored against the rotated query by faiss's table look-up.

    faiss's code distance has no per-vector factor, so each metric brings its rows to
    the codebook's scale its own way (docs/adr/0018-turbo-quantization.md):

    * Cosine: rows are unit vectors already, TurboQuant exactly;
    * Dot: each row gets one more coordinate ``sqrt(S^2 - |x|^2)`` and is divided by
      ``S``, the largest norm at training (the classic reduction of inner-product search
      to unit vectors): every row is a unit vector whose own norm lives in its codes, and
      ``S`` times the code score estimates ``<q, x>``;
    * Euclid: rows are coded as they are against the codebook scaled by ``S``, their
      root-mean-square norm at training, so the code distance is ``|q - x|^2`` directly.
      (The same lift for Euclid needs an inner-product walk of the L2-built graph, which
      faiss 1.15 answers empty, or L2 over non-unit reconstructions, which measured worse.)
    """

    kind: ClassVar[str] = "hnsw_turbo"
    method: ClassVar[QuantizationMethod] = "turbo"

    def __init__(self, dim: int, distance: Distance, params: QuantizedParams | None = None) -> None:
        super().__init__(dim, distance, params)
        self._rotation = np.eye(self._rotated_dim, dtype=np.float32)
        self._scale = 1.0
        """``S`` (see the class docstring); 1 for Cosine."""

    @property
    def bits(self) -> float:
        return self.params.turbo_bits or 4.0

    @property
    def _lifts(self) -> int:
        """Extra coordinates a row gets: its norm's slack under Dot."""
        return 1 if self.distance is Distance.DOT else 0

    @property
    def _rotated_dim(self) -> int:
        return padded_dim(self.dim + self._lifts, self.bits)

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        sub, code_bits = layout(self.bits)
        rotated_dim = self._rotated_dim
        self._rotation = rotation(rotated_dim)
        squared = np.einsum("ij,ij->i", vectors, vectors)
        if self.distance is Distance.DOT:
            self._scale = float(np.sqrt(squared.max())) or 1.0
        elif self.distance is Distance.EUCLID:
            self._scale = float(np.sqrt(squared.mean())) or 1.0
        centroids = codebook(rotated_dim, self.bits)
        if self.distance is Distance.EUCLID:
            centroids = centroids * np.float32(self._scale)
        primary = _FAISS.IndexHNSWPQ(
            rotated_dim, rotated_dim // sub, self.params.m, code_bits, self._metric()
        )
        quantizer = _FAISS.downcast_index(primary.storage).pq
        every = np.tile(centroids[None], (rotated_dim // sub, 1, 1))
        _FAISS.copy_array_to_vector(np.ascontiguousarray(every).ravel(), quantizer.centroids)
        quantizer.compute_sdc_table()
        primary.is_trained = primary.storage.is_trained = True
        return self._graph(primary)

    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        if not self._lifts:
            return self._rotated(vectors)
        slack = self._scale**2 - np.einsum("ij,ij->i", vectors, vectors)
        unit = np.hstack([vectors, np.sqrt(np.maximum(slack, 0.0))[:, None]]) / self._scale
        return self._rotated(unit.astype(np.float32))

    def _encode_queries(self, queries: np.ndarray) -> np.ndarray:
        return self._rotated(queries)  # a lifted row's extra coordinate meets a 0

    def _rotated(self, rows: np.ndarray) -> np.ndarray:
        padded = np.zeros((len(rows), self._rotated_dim), dtype=np.float32)
        padded[:, : rows.shape[1]] = rows
        rotated: np.ndarray = np.ascontiguousarray(padded @ self._rotation.T)
        return rotated

    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        if self.distance is Distance.DOT:
            product: np.ndarray = raw * np.float32(self._scale)
            return product
        return super()._primary_scores(raw, queries)

    def _extra_state(self) -> tuple[dict[str, Any], list[bytes]]:
        return {"rotation": True, "scale": self._scale}, [self._rotation.tobytes()]

    def _load_extra_state(self, header: dict[str, Any], blobs: list[Buffer]) -> None:
        size = self._rotated_dim
        stored = np.frombuffer(blobs[0], dtype=np.float32).reshape(size, size)
        shared = rotation(size)  # the saved matrix is authoritative; share it when equal
        self._rotation = shared if np.array_equal(stored, shared) else stored.copy()
        self._scale = header["scale"]

    def _extra_model_bytes(self) -> int:
        return self._rotation.nbytes


QUANTIZED_BACKENDS: dict[QuantizationMethod, type[_QuantizedHnsw]] = {
    "scalar": ScalarQuantizedIndex,
    "product": ProductQuantizedIndex,
    "binary": BinaryQuantizedIndex,
    "rabitq": RaBitQIndex,
    "turbo": TurboQuantizedIndex,
}


def rabitq_bits_within(dim: int, budget: int) -> int:
    """The most RaBitQ bits per dimension (1..4) whose code fits ``budget`` bytes."""
    fitting = [
        bits
        for bits in range(1, 5)
        if _FAISS.RaBitQuantizer(dim, _FAISS.METRIC_L2, bits).code_size <= budget
    ]
    return max(fitting, default=1)


def default_oversampling(
    method: QuantizationMethod, dim: int, compression: int = 16, bits: float = 1
) -> float:
    """Candidates per result that reached recall@10 >= 0.95 after re-ranking, by method
    (``bits``: RaBitQ's or TurboQuant's bits per dimension)."""
    if method == "turbo":
        floor, per_dimension = _TURBO_OVERSAMPLING[bits]
        return max(floor, per_dimension / dim)
    if method == "scalar":
        return 2.0
    if method == "product":
        return 2.0 * compression
    if method == "binary":
        return max(4.0, 4096.0 / dim)
    if bits == 1:
        return max(8.0, 6400.0 / dim)
    return 8.0 if bits == 2 else 4.0


_TURBO_OVERSAMPLING = {
    8.0: (2.0, 0.0),
    4.0: (2.0, 200.0),
    2.0: (3.0, 800.0),
    1.5: (4.0, 1600.0),
    1.0: (6.0, 3200.0),
}
"""TurboQuant candidates per result, ``max(floor, per_dimension / dim)`` by bits per
coordinate: few coordinates carry little information each at low bits, so (as for binary)
the need grows as the dimension shrinks. Measured to reach recall@10 >= 0.95 on GloVe-50
(1 bit: 64) and on the 384-d test embeddings (1 bit: 8); ADR 0018."""


def check_supported(
    method: QuantizationMethod, distance: Distance, params: QuantizedParams
) -> None:
    """Raise ValueError for a combination the codes cannot serve."""
    if distance is Distance.MANHATTAN:
        raise ValueError("quantization supports Cosine, Dot and Euclid, not Manhattan")
    if method == "rabitq" and distance is Distance.DOT:
        raise ValueError("rabitq quantization is L2-based: use Cosine or Euclid, not Dot")
    if method == "product" and params.compression not in COMPRESSIONS:
        raise ValueError(f"product compression must be one of {COMPRESSIONS}")
    if params.quantile is not None and not 0.5 < params.quantile <= 1.0:
        raise ValueError("scalar quantile must be in (0.5, 1]")
    if params.rabitq_bits is not None and not 1 <= params.rabitq_bits <= 9:
        raise ValueError("rabitq bits must be in 1..9")
    if params.turbo_bits is not None:
        layout(params.turbo_bits)
    if params.storage not in (None, "float32") and (method, params.storage) != ("turbo", "turbo4"):
        raise ValueError("only turbo quantization stores rows as codes (storage 'turbo4')")
    if params.oversampling is not None and params.oversampling < 1.0:
        raise ValueError("oversampling must be >= 1")
