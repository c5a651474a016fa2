"""A collection's configuration: what was asked at create time, with Qdrant's defaults.

Stored as JSON inside the collection's database (see ``storage/point_store.py``)
and reported back, in Qdrant's shape, by ``GET /collections/{name}``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from index.datatypes import NARROW_DATATYPES, TURBO_DATATYPES, Datatype
from index.insertion_order import InsertionOrder
from index.metrics import Distance
from server.engine.index_spec import (
    FlatSpec,
    HnswSpec,
    IndexSpec,
    LeanVecSpec,
    LeanVecSpecParams,
    MuveraSpec,
    MuveraSpecParams,
    QuantizedSpec,
    QuantizedSpecParams,
    VectorOverride,
)
from server.engine.knobs import (
    MAX_COUNT,
    MAX_FACTOR,
    MAX_M,
    MAX_THREADS,
    GraphParams,
    LeanVecKnobs,
    MuveraKnobs,
    in_range,
)
from server.engine.quantization_config import QuantizationConfig, parse_quantization
from server.engine.tenant_layout import graph_fields, tenant_field

DEFAULT_MIN_EF = 128
MAX_SEGMENTS = 256
"""``default_segment_number``: each segment is one more graph a query walks."""
MAX_SHARDS = 64
"""Largest ``shard_number`` (each shard is a whole engine, a Ray actor in cluster
mode), and of the replication factors Quiver records."""
MAX_TOKENS = 65_536
"""Vectors of one multi-vector point (each is MaxSim-scored against every query token)."""

DEFAULT_VECTOR = ""
"""Name of the single unnamed vector (Qdrant's ``vector: [...]`` form)."""

MemoryTier = Literal["pinned", "cached", "cold"]
MEMORY_TIERS: tuple[MemoryTier, ...] = ("pinned", "cached", "cold")
"""Qdrant 1.19's ``memory`` placement of vectors, graphs and payload indexes."""


def resolved_on_disk(memory: str | None, on_disk: bool | None) -> bool:
    """Whether data is mapped from its file rather than held in process memory: Qdrant's
    rule, ``memory`` overrides ``on_disk`` when both are set (``pinned``: in RAM;
    ``cold`` and ``cached``: mapped). The one place every placement reads it from.
    ``cached`` is placed as ``cold``: no pre-read of its own (opening a segment reads
    its index files once anyway, for their checksum)."""
    return bool(on_disk) if memory is None else memory != "pinned"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VectorParams(_Frozen):
    size: int = Field(ge=1)
    distance: Distance
    hnsw_config: dict[str, Any] | None = None
    quantization_config: dict[str, Any] | None = None
    on_disk: bool | None = None
    datatype: str | None = None
    multivector_config: dict[str, Any] | None = None
    """Qdrant's ``{"comparator": "max_sim"}``: each point holds a set of vectors of
    ``size`` dimensions, scored by MaxSim (``index/multivector.py``)."""
    memory: MemoryTier | None = None

    @property
    def is_multi(self) -> bool:
        return self.multivector_config is not None

    @property
    def mapped(self) -> bool:
        """The effective ``on_disk`` (``memory`` overrides it): rows in a mapped file."""
        return resolved_on_disk(self.memory, self.on_disk)


class SparseIndexParams(_Frozen):
    """Qdrant's sparse ``index`` knobs. Quiver's sparse index is always an exact inverted
    index; ``on_disk`` keeps a sealed segment's rows and posting lists in its
    memory-mapped file, the other knobs are kept and reported back as given."""

    full_scan_threshold: Annotated[int | None, Field(ge=0)] = None
    on_disk: bool | None = None
    datatype: Literal["float32", "float16", "uint8"] | None = None


class SparseVectorParams(_Frozen):
    """One named sparse vector (Qdrant's ``SparseVectorParams``); ``modifier: "idf"``
    weights each query term by its inverse document frequency over the live points."""

    index: SparseIndexParams | None = None
    modifier: Literal["none", "idf"] | None = None

    @property
    def idf(self) -> bool:
        return self.modifier == "idf"


class HnswConfig(GraphParams):
    """Graph parameters; used by the HNSW backend (exact search ignores them).
    ``m`` and ``ef_construct`` are declared once, in ``knobs.GraphParams``."""

    full_scan_threshold: Annotated[int, in_range(10, MAX_COUNT)] = 10_000
    max_indexing_threads: Annotated[int, in_range(0, MAX_THREADS)] = 0
    on_disk: bool = False
    payload_m: Annotated[int | None, in_range(0, MAX_M)] = None
    memory: MemoryTier | None = None
    """Overrides ``on_disk`` when set (``resolved_on_disk``)."""


class OptimizersConfig(_Frozen):
    deleted_threshold: Annotated[float, in_range(0.0, 1.0)] = 0.2
    vacuum_min_vector_number: Annotated[int, in_range(100, MAX_COUNT)] = 1000
    default_segment_number: Annotated[int, in_range(0, MAX_SEGMENTS)] = 0
    max_segment_size: Annotated[int | None, in_range(1, MAX_COUNT)] = None
    memmap_threshold: Annotated[int | None, in_range(0, MAX_COUNT)] = None
    indexing_threshold: Annotated[int, in_range(0, MAX_COUNT)] = 20_000
    flush_interval_sec: Annotated[int, in_range(0, 86_400)] = 5
    max_optimization_threads: Annotated[int | None, in_range(0, MAX_THREADS)] = None


class IndexConfig(MuveraKnobs, LeanVecKnobs):
    """Quiver extension (``"index"`` on create / PATCH): which backend serves sealed
    segments, in which order a build inserts vectors (see ADR 0003), LeanVec's knobs
    (``knobs.LeanVecKnobs``) and MUVERA's (``knobs.MuveraKnobs``); each backend
    ignores the others' knobs. One flat object on the wire, as before.

    ``muvera`` serves multi-vectors through Fixed Dimensional Encodings in an ``inner``
    single-vector index (dense vectors of the same collection use that inner backend);
    ``secondary`` is also the storage of the token sets MUVERA re-ranks with. With any
    other type, multi-vectors are searched by exact MaxSim."""

    type: Literal["flat", "hnsw", "leanvec", "muvera"] = "hnsw"
    insertion_order: InsertionOrder = "none"
    training_generation: int = 0
    """Bumped when new LeanVec training queries should be learned: a spec change, so
    every segment is retrained and rebuilt in the background."""


class MultiVectorConfig(_Frozen):
    """Quiver extension (``"multivector"`` on create / PATCH): ingest rules for every
    multi-vector of the collection. Changes apply to points written afterwards.

    max_vectors_per_point: a point or query with more vectors is refused (400).
    pool_factor / max_tokens_per_doc: optional token pooling at ingest
      (``index/pooling.py``): each point's vectors are clustered and replaced by the
      cluster means, keeping ``ceil(n / pool_factor)`` of them, at most
      ``max_tokens_per_doc``. Queries are never pooled."""

    max_vectors_per_point: Annotated[int, Field(ge=1), in_range(1, MAX_TOKENS)] = 2048
    pool_factor: Annotated[float | None, Field(ge=1.0), in_range(1.0, MAX_FACTOR)] = None
    max_tokens_per_doc: Annotated[int | None, Field(ge=1), in_range(1, MAX_TOKENS)] = None


class WalConfig(_Frozen):
    wal_capacity_mb: Annotated[int, in_range(1, 65_536)] = 32
    wal_segments_ahead: Annotated[int, in_range(0, 64)] = 0


class CollectionConfig(_Frozen):
    """Everything that defines a collection, in the form persisted on disk."""

    vectors: dict[str, VectorParams]
    named_vectors: bool
    hnsw_config: HnswConfig = HnswConfig()
    optimizers_config: OptimizersConfig = OptimizersConfig()
    wal_config: WalConfig = WalConfig()
    quantization_config: QuantizationConfig | None = None
    shard_number: Annotated[int, in_range(1, MAX_SHARDS)] = 1
    replication_factor: Annotated[int, in_range(1, MAX_SHARDS)] = 1
    write_consistency_factor: Annotated[int, in_range(1, MAX_SHARDS)] = 1
    on_disk_payload: bool = True
    strict_mode_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    payload_schema: dict[str, dict[str, Any]] = {}
    index: IndexConfig = IndexConfig()
    multivector: MultiVectorConfig = MultiVectorConfig()
    sparse_vectors: dict[str, SparseVectorParams] = {}
    """Named sparse vectors, beside (never under the same name as) the dense ones."""

    def vector(self, name: str | None) -> VectorParams | None:
        return self.vectors.get(name or DEFAULT_VECTOR)

    def distance_of(self, name: str) -> Distance:
        """The metric of a named vector; sparse vectors score by dot product."""
        return Distance.DOT if name in self.sparse_vectors else self.vectors[name].distance

    def index_spec(self) -> IndexSpec:
        """What a sealed segment's index must be built with; a change means a rebuild.
        Dense vectors with their own ``hnsw_config`` / ``quantization_config`` carry
        an override (``vector_overrides``).

        ``hnsw_config.m == 0`` disables the graph, as in Qdrant."""
        spec = self._collection_spec()
        overrides = vector_overrides(self, spec)
        layout = self.tenant_layout()
        update: dict[str, Any] = {"vectors": overrides} if overrides else {}
        update |= {"layout": layout} if layout else {}
        return spec.model_copy(update=update) if update else spec

    def tenant_layout(self) -> dict[str, Any]:
        """How builds lay out rows and per-value graphs (``tenant_layout.py``): the
        ``is_tenant`` field rows are grouped by, and per dense vector with ``payload_m`` >
        0 the graph ``m`` and the least rows a value needs for its own graph."""
        layout: dict[str, Any] = {}
        tenant = tenant_field(self.payload_schema)
        if tenant is not None:
            layout["tenant"] = tenant
        fields = graph_fields(self.payload_schema)
        graphs = {}
        for name, params in self.vectors.items():
            own = {k: v for k, v in (params.hnsw_config or {}).items() if v is not None}
            payload_m = own.get("payload_m", self.hnsw_config.payload_m)
            if fields and not params.is_multi and payload_m:
                threshold_kb = own.get("full_scan_threshold", self.hnsw_config.full_scan_threshold)
                min_rows = math.ceil(int(threshold_kb) * 1024 / (4 * params.size))
                graphs[name] = {"m": int(payload_m), "min_rows": min_rows}
        if graphs:
            layout["payload_graphs"] = {
                "fields": fields,
                "vectors": graphs,
                "ef_construct": self.hnsw_config.ef_construct,
            }
        return layout

    def _collection_spec(self) -> IndexSpec:
        order = self.index.insertion_order
        kind = self.index.type if self.hnsw_config.m > 0 else "flat"
        graph = {"m": self.hnsw_config.m, "ef_construct": self.hnsw_config.ef_construct}
        quantization = self.quantization_config
        if kind == "flat":
            return FlatSpec(insertion_order=order)
        if kind == "hnsw" and quantization is None:
            return HnswSpec(params=GraphParams(**graph), insertion_order=order)
        if kind == "hnsw" and quantization is not None:
            params = QuantizedSpecParams(**graph, **quantization.backend_params())
            return QuantizedSpec(
                type=quantization.backend_kind, params=params, insertion_order=order
            )
        if kind == "leanvec":
            lean = LeanVecSpecParams(**graph, **self.index.leanvec_params())
            training = self.index.training_generation
            return LeanVecSpec(params=lean, training=training, insertion_order=order)
        storage = self.index.secondary
        muvera = MuveraSpecParams(**graph, **self.index.muvera_params(), storage=storage)
        return MuveraSpec(params=muvera, insertion_order=order)

    def default_ef(self) -> int:
        """Search beam width when a query gives no ``hnsw_ef``. Qdrant uses ef_construct;
        Quiver uses at least 128, which reaches recall@10 >= 0.95 on GloVe-50 (a hard
        set: ef 100 measured 0.949) without the user tuning anything."""
        return max(DEFAULT_MIN_EF, self.hnsw_config.ef_construct)

    def with_updates(self, **changes: Any) -> CollectionConfig:
        return self.model_validate(self.model_dump() | changes)


def compact_storage(params: VectorParams) -> Datatype | None:
    """The element type this vector's rows are held in, when narrower than float32."""
    for datatype in NARROW_DATATYPES:
        if params.datatype == datatype:
            return datatype
    return None


def stored_datatypes(config: CollectionConfig) -> dict[str, Datatype]:
    """Dense and multi-vector names held narrower than float32: the appendable tail's
    column types."""
    types = {name: compact_storage(p) for name, p in config.vectors.items()}
    return {name: datatype for name, datatype in types.items() if datatype is not None}


def vector_overrides(config: CollectionConfig, spec: IndexSpec) -> dict[str, VectorOverride]:
    """Per dense vector with its own ``hnsw_config`` / ``quantization_config`` (Qdrant's
    per-vector params, set at create or by PATCH) or a float16 / uint8 / turbo4
    ``datatype`` (held compactly by the graph): the backend it is built with, where that differs
    from the collection's ``spec``. Only an ``hnsw`` collection has them (other index
    types refuse per-vector params; their rows hold the typed values as float32).
    Multi-vectors' own params are ``multi_overrides``'s. An ``on_disk`` vector of a
    ``flat`` collection (or of ``m: 0``) gets an exact index that keeps its rows in the
    segment's memory-mapped file."""
    overrides = multi_overrides(config, spec) | {
        name: VectorOverride(type="sparse", params={"on_disk": True})
        for name, params in config.sparse_vectors.items()
        if params.index is not None and params.index.on_disk
    }  # Qdrant's sparse `index.on_disk`: rows and postings mapped (index/sparse.py)
    if config.index.type == "flat":
        return overrides | {
            name: VectorOverride(type="flat", params={"on_disk": True})
            for name, params in config.vectors.items()
            if params.mapped and not params.is_multi
        }
    if config.index.type in ("leanvec", "muvera"):
        return overrides | _placed_dense(config, spec)
    if config.index.type != "hnsw":
        return overrides
    base = (spec.type, spec.backend_params())
    for name, params in config.vectors.items():
        storage = compact_storage(params)
        turbo = params.datatype if params.datatype in TURBO_DATATYPES else None
        disk = disk_knobs(config, params)
        own = (params.hnsw_config, params.quantization_config, storage, disk or None, turbo)
        if params.is_multi or own == (None, None, None, None, None):
            continue
        graph = GraphParams.model_validate(
            {"m": config.hnsw_config.m, "ef_construct": config.hnsw_config.ef_construct}
            | {k: v for k, v in (params.hnsw_config or {}).items() if k in ("m", "ef_construct")}
        )
        quantization = config.quantization_config
        if params.quantization_config is not None:
            quantization = parse_quantization(params.quantization_config)
        if graph.m == 0:
            built: tuple[str, dict[str, Any]] = ("flat", _hnsw_rows(None, params.mapped))
        elif turbo is not None:  # the codes are the storage; no other quantizer (as Qdrant)
            turbo_params = {"turbo_bits": 4.0, "storage": turbo} | disk
            built = ("hnsw_turbo", graph.model_dump() | turbo_params)
        elif quantization is None:
            built = ("hnsw", graph.model_dump() | _hnsw_rows(storage, None) | disk)
        else:
            built = (quantization.backend_kind, graph.model_dump() | quantization.backend_params())
            built[1].update(disk)
        if built != base:
            overrides[name] = VectorOverride(type=built[0], params=built[1])
    return overrides


def disk_knobs(config: CollectionConfig, params: VectorParams) -> dict[str, bool]:
    """Qdrant's placement flags as backend knobs, only those set: ``on_disk`` (the
    vector's: rows, and codes unless ``always_ram``) and ``graph_on_disk`` (the vector's
    own ``hnsw_config.on_disk``, else the collection's: the graph's links). What each
    backend then maps is its own rule (``index.two_stage.primary_placement``)."""
    graph = config.hnsw_config.model_dump() | (params.hnsw_config or {})
    graph_mapped = resolved_on_disk(graph.get("memory"), graph.get("on_disk"))
    return ({"on_disk": True} if params.mapped else {}) | (
        {"graph_on_disk": True} if graph_mapped else {}
    )


def _placed_dense(config: CollectionConfig, spec: IndexSpec) -> dict[str, VectorOverride]:
    """A LeanVec or MUVERA collection's dense vectors placed on disk: the collection's
    backend and params plus the knobs (a ``muvera`` collection's dense vectors are built
    with its inner backend, which takes them: ``segment_build._new_index``)."""
    return {
        name: VectorOverride(type=spec.type, params=spec.backend_params() | disk)
        for name, params in config.vectors.items()
        if not params.is_multi and (disk := disk_knobs(config, params))
    }


def _hnsw_rows(storage: Datatype | None, on_disk: bool | None) -> dict[str, Any]:
    """How a graph holds its rows: their element type, and whether they stay in the
    segment's memory-mapped file (``on_disk``) instead of process memory."""
    return ({"storage": storage} if storage else {}) | ({"on_disk": True} if on_disk else {})


def _token_storage(params: VectorParams) -> dict[str, Any]:
    """MaxSim token storage of a float16 / uint8 multi-vector (its values exactly), or
    of a turbo4 one (each token's code and norm)."""
    typed = params.datatype in NARROW_DATATYPES or params.datatype in TURBO_DATATYPES
    return {"storage": params.datatype} if typed else {}


def multi_overrides(config: CollectionConfig, spec: IndexSpec) -> dict[str, VectorOverride]:
    """Per multi-vector with its own ``hnsw_config`` / ``quantization_config``: the
    MaxSim index it is built with, where that differs from the collection's.

    Multi-vectors are scored exactly (``maxsim``) in an ``hnsw`` collection and through
    a MUVERA graph in a ``muvera`` one. Their own ``hnsw_config`` sets that graph's
    ``m`` / ``ef_construct``, and ``m: 0`` turns it off (exact MaxSim: Qdrant's advice
    for a re-ranking-only ColBERT vector); their own ``quantization_config`` keeps the
    tokens as float16 (half the memory; the originals stay in the point store), or as
    uint8 for a ``uint8`` datatype; ``on_disk`` keeps the tokens in the segment's
    memory-mapped file. A vector given an override keeps its datatype's token storage."""
    if config.index.type not in ("hnsw", "muvera"):  # exact MaxSim; only on_disk is its own
        return {
            name: VectorOverride(type="maxsim", params=_token_storage(params) | {"on_disk": True})
            for name, params in config.vectors.items()
            if params.is_multi and params.mapped
        }
    base: tuple[str, dict[str, Any]] = ("maxsim", {})
    if spec.type == "muvera":
        base = ("muvera", spec.backend_params())
    overrides = {}
    for name, params in config.vectors.items():
        disk = disk_knobs(config, params)
        own = (params.hnsw_config, params.quantization_config, disk or None)
        if not params.is_multi or own == (None, None, None):
            continue
        kind, knobs = base[0], dict(base[1])
        own_m = (params.hnsw_config or {}).get("m")
        if own_m == 0:
            kind, knobs = "maxsim", {}
        elif kind == "muvera":
            graph = {key: knobs[key] for key in ("m", "ef_construct")}
            graph |= {k: v for k, v in (params.hnsw_config or {}).items() if k in graph}
            knobs |= GraphParams.model_validate(graph).model_dump()
        if params.quantization_config is not None:
            knobs["storage"] = "float16"
        knobs |= _token_storage(params)
        if params.mapped:
            knobs["on_disk"] = True
        if kind == "muvera" and disk.get("graph_on_disk"):
            knobs["graph_on_disk"] = True  # the encodings' graph and codes
        if (kind, knobs) != base:
            overrides[name] = VectorOverride(type=kind, params=knobs)
    return overrides
