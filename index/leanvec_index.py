"""The LeanVec backend: an HNSW graph over projected, quantized vectors, re-ranked in full.

Primary vectors are the database rows mapped to ``dims`` dimensions (by default as
many as keep 90% of the data's variance, chosen at training) by a learned
LeanVec projection (``index/leanvec.py``: PCA for ``variant="id"``, a query-aware
pair of maps for ``"ood"``) and scalar-quantized by faiss to 8 or 4 bits per
dimension. Unlike the quantized backends, the graph is *built* on the primary
vectors too: with fewer dimensions and a quarter of the bytes per dimension, insertion
is cheaper, which is where LeanVec's faster builds come from. Candidates are
re-ranked with secondary vectors kept as float32, float16 or int8
(``index/rerank.py``).

faiss's 8/4-bit scalar quantizer stands in for the paper's LVQ (per-vector step
and offset): faiss has no LVQ distance inside its graph search, and an HNSW
walked with a Python distance would break the "hot loops in native code" rule.

Inner-product and cosine collections use ``<A^T q, B^T (x - mu)>``, whose order
equals ``<q, x>``'s; Euclid collections are served by the ID variant only, as an
orthonormal projection of the centred vectors (``||(q - mu) A - (x - mu) A||``).
An OOD index trained without queries falls back to ID and says so in ``stats``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Self

import faiss
import numpy as np

from index.faiss_mapping import Mapped
from index.leanvec import LeanVecModel, Solver, Variant, train_id, train_ood
from index.metrics import Distance
from index.rerank import SECONDARY_FORMATS, SecondaryFormat
from index.serialization import Buffer
from index.two_stage import TwoStageIndex, primary_placement

_FAISS: Any = faiss

OOD_TOLERANCE = 1e-4
"""(``ood_solver="frank_wolfe"``) Frank-Wolfe stops when the loss changes by less than
this (relative). The paper's
~1e-3 stopped early on the Debian MiniLM set: held-out error 7.0% below PCA's at d=96
and 9.3% at 192 with 8,000 training synopses; 1e-4 gave 8.3% and 11.7% (29 and 54
iterations, under a second each)."""

MIN_TRAINING_QUERIES = 64
"""Fewer queries than this cannot estimate a D x D query moment: train ID instead."""


@dataclass(frozen=True, slots=True)
class LeanVecParams:
    """Knobs of the LeanVec backend.

    dims: primary dimensions d; None = chosen from the data at training: the fewest
      principal directions keeping 90% of the centred variance
      (``index.leanvec.KEPT_VARIANCE``; about 0.45 D on MiniLM-384, 0.7 D on GloVe-50).
      Fewer make the graph cheaper to build and walk and the candidates coarser: a fixed
      D/4 (the paper uses D/4 .. D/2) never reached recall@10 0.95 on either set.
    variant: "id" learns from the database only; "ood" also from a sample of queries
      (for queries unlike the data: short text against long documents, text against
      images); without queries it trains as "id".
    primary_bits: 8 or 4 bits per primary dimension (faiss scalar quantizer).
    secondary: how full vectors are kept for re-ranking: float32, float16 or int8.
    rerank_factor: candidates per result re-ranked with the secondary vectors; by
      default the whole search beam (ef) is re-ranked when it is larger, so a larger ef
      keeps raising recall (``TwoStageIndex._rerank_depth``).
    ood_solver: how "ood" fits its maps: "closed_form" (default: the unconstrained
      optimum, faster and lower held-out error, see index/leanvec.py) or the paper's
      "frank_wolfe".
    m, ef_construct, ef_search: the graph, as for HNSW.
    on_disk: the vector's ``on_disk``: read back from a memory-mapped file, the primary
      codes stay in it (LeanVec has no ``always_ram``; the secondaries are always mapped).
    graph_on_disk: ``hnsw_config.on_disk``: the graph's links stay in the file.
    """

    dims: int | None = None
    variant: Variant = "id"
    primary_bits: Literal[8, 4] = 8
    secondary: SecondaryFormat = "float32"
    rerank_factor: float = 4.0
    ood_solver: Solver = "closed_form"
    m: int = 16
    ef_construct: int = 100
    ef_search: int = 128
    on_disk: bool = False
    graph_on_disk: bool = False


class LeanVecIndex(TwoStageIndex):
    kind: ClassVar[str] = "leanvec"

    def __init__(self, dim: int, distance: Distance, params: LeanVecParams | None = None) -> None:
        self.params = params or LeanVecParams()
        check_params(dim, distance, self.params)
        super().__init__(dim, distance, self.params.secondary)
        self.model: LeanVecModel | None = None

    @property
    def dims(self) -> int | None:
        """Primary dimensions: the trained model's, else the requested ones (None until a
        default index is trained)."""
        return self.params.dims if self.model is None else self.model.dim_out

    @property
    def trained_variant(self) -> Variant | None:
        return None if self.model is None else self.model.variant

    @classmethod
    def _from_header(cls, header: dict[str, Any]) -> Self:
        return cls(header["dim"], Distance(header["distance"]), LeanVecParams(**header["params"]))

    def _params_dict(self) -> dict[str, Any]:
        return asdict(self.params)

    def _placement(self) -> Mapped:
        return primary_placement(self.params.on_disk, self.params.graph_on_disk, None)

    def _default_ef(self) -> int:
        return self.params.ef_search

    def _default_oversampling(self) -> float:
        return self.params.rerank_factor

    def _fit(self, vectors: np.ndarray, queries: np.ndarray | None) -> Any:
        usable = queries is not None and len(queries) >= MIN_TRAINING_QUERIES
        if self.params.variant == "ood" and usable:
            assert queries is not None
            self.model = train_ood(
                vectors, queries, self.params.dims, solver=self.params.ood_solver, tol=OOD_TOLERANCE
            )
        else:
            self.model = train_id(vectors, self.params.dims)
        kind = (
            _FAISS.ScalarQuantizer.QT_8bit
            if self.params.primary_bits == 8
            else (_FAISS.ScalarQuantizer.QT_4bit)
        )
        primary = _FAISS.IndexHNSWSQ(
            self.model.dim_out, kind, self.params.m, self.distance.faiss_metric
        )
        primary.hnsw.efConstruction = self.params.ef_construct
        primary.train(self._encode_rows(vectors))
        return primary

    def _encode_rows(self, vectors: np.ndarray) -> np.ndarray:
        assert self.model is not None
        return self.model.project_data(vectors)

    def _encode_queries(self, queries: np.ndarray) -> np.ndarray:
        assert self.model is not None
        if self.distance is Distance.EUCLID:
            return self.model.project_data(queries)  # centred, same map: an orthogonal projection
        return self.model.project_queries(queries)

    def _primary_scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        assert self.model is not None
        if self.distance is Distance.EUCLID:
            rooted: np.ndarray = np.sqrt(np.maximum(raw, 0.0))
            return rooted
        shifted: np.ndarray = raw + (queries @ self.model.mean)[:, None]  # <q, mu> added back
        return shifted

    def _extra_state(self) -> tuple[dict[str, Any], list[bytes]]:
        if self.model is None:
            return {"model": False}, []
        return {"model": True}, [self.model.to_bytes()]

    def _load_extra_state(self, header: dict[str, Any], blobs: list[Buffer]) -> None:
        self.model = LeanVecModel.from_bytes(blobs[0]) if header.get("model") else None

    def _extra_model_bytes(self) -> int:
        if self.model is None:
            return 0
        maps = self.model.query_map.nbytes
        if self.model.data_map is not self.model.query_map:
            maps += self.model.data_map.nbytes
        return maps + self.model.mean.nbytes


def check_params(dim: int, distance: Distance, params: LeanVecParams) -> None:
    """Raise ValueError for settings the backend cannot serve."""
    if distance is Distance.MANHATTAN:
        raise ValueError("leanvec supports Cosine, Dot and Euclid, not Manhattan")
    if distance is Distance.EUCLID and params.variant == "ood":
        raise ValueError("leanvec variant 'ood' approximates inner products: use Cosine or Dot")
    if params.dims is not None and not 1 <= params.dims <= dim:
        raise ValueError(f"leanvec dims must be in 1..{dim}, got {params.dims}")
    if params.primary_bits not in (4, 8):
        raise ValueError("leanvec primary_bits must be 8 or 4")
    if params.secondary not in SECONDARY_FORMATS:
        raise ValueError(f"leanvec secondary must be one of {', '.join(SECONDARY_FORMATS)}")
    if params.rerank_factor < 1:
        raise ValueError("leanvec rerank_factor must be >= 1")
    if params.variant not in ("id", "ood"):
        raise ValueError("leanvec variant must be 'id' or 'ood'")
    if params.ood_solver not in ("closed_form", "frank_wolfe"):
        raise ValueError("leanvec ood_solver must be 'closed_form' or 'frank_wolfe'")
