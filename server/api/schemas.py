"""Wire models: request bodies in Qdrant's shapes (field names exactly as its OpenAPI).

Only shapes live here; meaning (ids, vectors, filters) is checked by the engine.
Filters and ``with_payload`` stay raw JSON and are parsed by the engine's own
parsers, which give messages that name the offending path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from index.metrics import Distance
from server.engine.knobs import MAX_FACTOR, MAX_HNSW_EF

ExtendedPointId = StrictInt | StrictStr | StrictFloat
"""Floats are accepted at the wire level only so the engine can reject them with
a message about point ids rather than a generic type error."""
RawFilter = dict[str, Any] | None
RawWithPayload = bool | list[str] | dict[str, Any] | None
RawWithVector = bool | list[str] | None
WithVector = Annotated[
    RawWithVector, Field(validation_alias=AliasChoices("with_vector", "with_vectors"))
]
"""``with_vector``, also read as ``with_vectors`` (Qdrant's serde alias)."""


class Wire(BaseModel):
    """Unknown fields are ignored, as Qdrant's serde models ignore them: a client written
    for a newer Qdrant (or sending a field Quiver does not know) still works. Filters and
    payload selectors, which Qdrant parses strictly, are checked by the engine's parsers."""

    model_config = ConfigDict(extra="ignore")


class VectorParamsIn(Wire):
    size: int = Field(ge=1)
    distance: Distance
    hnsw_config: dict[str, Any] | None = None
    quantization_config: dict[str, Any] | None = None
    on_disk: bool | None = None
    datatype: Literal["float32", "float16", "uint8", "turbo4", "turbo8", "turbo16"] | None = None
    multivector_config: dict[str, Any] | None = None
    memory: Any = None


ConfigSection = dict[str, Any] | None
"""A collection config section (``hnsw_config``, ``optimizers_config``, ``wal_config``,
``index``, ``multivector``): the knobs to set, checked against the engine's config
model (``server/engine/config.py``), where each knob and its range is declared once."""


class CreateCollection(Wire):
    vectors: VectorParamsIn | dict[str, VectorParamsIn] | None = None
    shard_number: int | None = None
    sharding_method: Any = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    on_disk_payload: bool | None = None
    payload: Any = None
    id_tracker: Any = None
    hnsw_config: ConfigSection = None
    wal_config: ConfigSection = None
    optimizers_config: ConfigSection = None
    quantization_config: dict[str, Any] | None = None
    sparse_vectors: dict[str, Any] | None = None
    strict_mode_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    init_from: Any = None
    index: ConfigSection = None
    multivector: ConfigSection = None


class UpdateCollection(Wire):
    index: ConfigSection = None
    multivector: ConfigSection = None
    vectors: dict[str, Any] | None = None
    optimizers_config: ConfigSection = None
    params: dict[str, Any] | None = None
    hnsw_config: ConfigSection = None
    quantization_config: dict[str, Any] | Literal["Disabled"] | None = None
    sparse_vectors: dict[str, Any] | None = None
    strict_mode_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class PointStruct(Wire):
    id: ExtendedPointId
    vector: list[float] | list[list[float]] | dict[str, Any] = Field(
        validation_alias=AliasChoices("vector", "vectors")
    )
    payload: dict[str, Any] | None = None


class PointsList(Wire):
    points: list[PointStruct]
    shard_key: Any = None
    update_filter: RawFilter = None
    update_mode: Literal["upsert", "insert_only", "update_only"] | None = None


class Batch(Wire):
    ids: list[ExtendedPointId]
    vectors: list[list[float]] | list[list[list[float]]] | dict[str, list[Any]]
    payloads: list[dict[str, Any] | None] | None = None


class PointsBatch(Wire):
    batch: Batch
    shard_key: Any = None
    update_filter: RawFilter = None
    update_mode: Literal["upsert", "insert_only", "update_only"] | None = None


class PointRequest(Wire):
    ids: list[ExtendedPointId]
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    shard_key: Any = None
    consistency: Any = None


class PointsSelector(Wire):
    points: list[ExtendedPointId] | None = None
    filter: RawFilter = None
    shard_key: Any = None


class SetPayload(Wire):
    payload: dict[str, Any]
    points: list[ExtendedPointId] | None = None
    filter: RawFilter = None
    key: str | None = None
    shard_key: Any = None


class DeletePayload(Wire):
    keys: list[str]
    points: list[ExtendedPointId] | None = None
    filter: RawFilter = None
    shard_key: Any = None


class ScrollRequest(Wire):
    offset: ExtendedPointId | None = None
    limit: int | None = Field(default=None, ge=1)  # Qdrant: a limit is 1 or more
    filter: RawFilter = None
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    order_by: Any = None
    shard_key: Any = None


class CountRequest(Wire):
    filter: RawFilter = None
    exact: bool | None = None
    shard_key: Any = None


class QuantizationSearchParams(Wire):
    """Qdrant's per-query quantization knobs (ignored on collections without it)."""

    ignore: bool | None = None
    rescore: bool | None = None
    oversampling: float | None = Field(default=None, ge=1.0, le=MAX_FACTOR)


class SearchParams(Wire):
    hnsw_ef: int | None = Field(default=None, ge=0, le=MAX_HNSW_EF)
    exact: bool | None = None
    quantization: QuantizationSearchParams | None = None
    rerank_factor: float | None = Field(default=None, ge=1.0, le=MAX_FACTOR)
    """Quiver extension (LeanVec's name for oversampling): candidates per result."""
    indexed_only: bool | None = None
    acorn: dict[str, Any] | None = None
    idf: Any = None


class QueryRequest(Wire):
    query: Any = None
    using: str | None = None
    prefetch: Any = None
    filter: RawFilter = None
    params: SearchParams | None = None
    score_threshold: float | None = None
    limit: int | None = Field(default=None, ge=1)
    offset: int | None = Field(default=None, ge=0)
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    lookup_from: Any = None
    shard_key: Any = None
    explain: bool | None = None
    """Quiver extension: return the plan chosen per segment beside the points."""
    strategy: Literal["exact", "graph", "post_filter"] | None = None
    """Quiver extension: force one search strategy instead of the planner's choice."""


class Prefetch(Wire):
    """One stage of a multi-stage query; ``prefetch`` stays raw and is validated one
    level at a time, so the depth bound is checked before any deep parsing."""

    query: Any = None
    using: str | None = None
    prefetch: Any = None
    filter: RawFilter = None
    params: SearchParams | None = None
    score_threshold: float | None = None
    limit: int | None = Field(default=None, ge=0)
    lookup_from: Any = None


class QueryRequestBatch(Wire):
    searches: list[QueryRequest]


class SearchRequest(Wire):
    vector: list[float] | dict[str, Any]
    filter: RawFilter = None
    params: SearchParams | None = None
    limit: int = Field(ge=1, validation_alias=AliasChoices("limit", "top"))
    offset: int | None = Field(default=None, ge=0)
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    score_threshold: float | None = None
    shard_key: Any = None


class SearchRequestBatch(Wire):
    searches: list[SearchRequest]


class CreateFieldIndex(Wire):
    field_name: str = Field(min_length=1)
    field_schema: str | dict[str, Any] | None = None


class SearchMatrixRequest(Wire):
    """Qdrant's ``SearchMatrixRequest`` (``/points/search/matrix/pairs|offsets``)."""

    sample: int | None = None
    limit: int | None = None
    filter: RawFilter = None
    using: str | None = None
    shard_key: Any = None


class PointVectors(Wire):
    """One point of ``UpdateVectors``: its id and the named vectors to set."""

    id: ExtendedPointId
    vector: list[float] | list[list[float]] | dict[str, Any] = Field(
        validation_alias=AliasChoices("vector", "vectors")
    )


class UpdateVectors(Wire):
    points: list[PointVectors]
    update_filter: RawFilter = None
    shard_key: Any = None


class DeleteVectors(Wire):
    points: list[ExtendedPointId] | None = None
    filter: RawFilter = None
    vector: list[str]
    shard_key: Any = None


class UpsertOperation(Wire):
    upsert: PointsList | PointsBatch


class DeleteOperation(Wire):
    delete: PointsSelector


class SetPayloadOperation(Wire):
    set_payload: SetPayload


class OverwritePayloadOperation(Wire):
    overwrite_payload: SetPayload


class DeletePayloadOperation(Wire):
    delete_payload: DeletePayload


class ClearPayloadOperation(Wire):
    clear_payload: PointsSelector


class UpdateVectorsOperation(Wire):
    update_vectors: UpdateVectors


class DeleteVectorsOperation(Wire):
    delete_vectors: DeleteVectors


UpdateOperation = (
    UpsertOperation
    | DeleteOperation
    | SetPayloadOperation
    | OverwritePayloadOperation
    | DeletePayloadOperation
    | ClearPayloadOperation
    | UpdateVectorsOperation
    | DeleteVectorsOperation
)
"""One operation of ``POST /points/batch``: an object with exactly one of these keys."""


class UpdateOperations(Wire):
    operations: list[UpdateOperation]


class DenseVectorConfig(Wire):
    """A new named dense vector: what defines its space (Qdrant 1.19)."""

    size: int = Field(ge=1)
    distance: Distance
    multivector_config: dict[str, Any] | None = None
    datatype: str | None = None


class SparseVectorConfig(Wire):
    modifier: Literal["none", "idf"] | None = None
    datatype: str | None = None


class DenseVectorNameConfig(Wire):
    dense: DenseVectorConfig


class SparseVectorNameConfig(Wire):
    sparse: SparseVectorConfig


class CreateAliasIn(Wire):
    collection_name: str
    alias_name: str


class DeleteAliasIn(Wire):
    alias_name: str


class RenameAliasIn(Wire):
    old_alias_name: str
    new_alias_name: str


class AliasOperation(Wire):
    """One of Qdrant's ``AliasOperations``: an object with exactly one of these keys."""

    create_alias: CreateAliasIn | None = None
    delete_alias: DeleteAliasIn | None = None
    rename_alias: RenameAliasIn | None = None


class ChangeAliases(Wire):
    """``POST /collections/aliases``: applied in order, all or nothing."""

    actions: list[AliasOperation]


class ShardTransferIn(Wire):
    """Qdrant's ``MoveShard`` / ``ReplicateShard`` / ``AbortShardTransfer``."""

    shard_id: int
    to_peer_id: int
    from_peer_id: int | None = None
    method: str | None = None


class DropReplicaIn(Wire):
    shard_id: int
    peer_id: int


class ClusterOperation(Wire):
    """Qdrant's ``ClusterOperations``: one of these per request."""

    replicate_shard: ShardTransferIn | None = None
    move_shard: ShardTransferIn | None = None
    abort_transfer: ShardTransferIn | None = None
    drop_replica: DropReplicaIn | None = None


CLUSTER_OPS = ("replicate_shard", "move_shard", "abort_transfer", "drop_replica")
