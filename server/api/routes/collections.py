"""Collection management: create, inspect, update, delete, payload indexes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from index.metrics import Distance
from server.api.access import visible_collections
from server.api.deps import CollectionDep, EngineDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.routes.common import update_result
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    CreateCollection,
    CreateFieldIndex,
    HnswConfigDiff,
    IndexConfigIn,
    OptimizersConfigDiff,
    UpdateCollection,
    VectorParamsIn,
)
from server.engine.config import (
    DEFAULT_VECTOR,
    CollectionConfig,
    HnswConfig,
    IndexConfig,
    OptimizersConfig,
)
from server.engine.engine import validate_collection_name
from server.engine.quantization_config import check_backend, check_for_vectors
from server.errors import BadRequest, UnsupportedFeature
from server.settings import Settings

router = APIRouter(tags=["collections"], route_class=OrjsonRoute)

PAYLOAD_INDEX_TYPES = frozenset(
    {"keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"}
)


@router.get("/collections")
async def list_collections(request: Request, engine: EngineDep) -> Response:
    names = visible_collections(request, engine.names())
    return ok(request, {"collections": [{"name": n} for n in names]})


@router.put("/collections/{name}")
async def create_collection(
    request: Request, name: str, body: CreateCollection, engine: EngineDep, settings: SettingsDep
) -> Response:
    validate_collection_name(name)
    config = _config_from_request(body, settings)
    await run_cpu(request, engine.create, name, config)
    return ok(request, True)


@router.get("/collections/{name}")
async def get_collection_info(request: Request, collection: CollectionDep) -> Response:
    return ok(request, await run_cpu(request, collection.info))


@router.get("/collections/{name}/exists")
async def collection_exists(request: Request, name: str, engine: EngineDep) -> Response:
    return ok(request, {"exists": engine.exists(name)})


@router.patch("/collections/{name}")
async def update_collection(
    request: Request, body: UpdateCollection, collection: CollectionDep, engine: EngineDep
) -> Response:
    for field in ("vectors", "sparse_vectors"):
        if getattr(body, field):
            raise UnsupportedFeature(f"changing `{field}` of an existing collection")
    config = collection.config
    changes: dict[str, Any] = {}
    if body.quantization_config is not None:
        changes["quantization_config"] = _quantization(body.quantization_config, config)
    if body.hnsw_config is not None:
        changes["hnsw_config"] = _merged(config.hnsw_config, body.hnsw_config)
    if body.optimizers_config is not None:
        changes["optimizers_config"] = _merged(config.optimizers_config, body.optimizers_config)
    if body.params:
        changes |= _collection_params(body.params)
    if body.metadata is not None:
        changes["metadata"] = (config.metadata or {}) | body.metadata
    if body.strict_mode_config is not None:
        changes["strict_mode_config"] = body.strict_mode_config
    if body.index is not None:
        changes["index"] = _index_config(config.index, body.index)
    if body.multivector is not None:
        changes["multivector"] = config.multivector.model_dump() | body.multivector.model_dump(
            exclude_none=True
        )
    updated = config.with_updates(**changes)
    check_backend(updated)
    await run_cpu(request, collection.update_config, updated)
    engine.config_changed(collection)
    return ok(request, True)


@router.delete("/collections/{name}")
async def delete_collection(request: Request, name: str, engine: EngineDep) -> Response:
    return ok(request, await run_cpu(request, engine.delete, name))


@router.put("/collections/{name}/index")
async def create_payload_index(
    request: Request, body: CreateFieldIndex, collection: CollectionDep, wait: bool = False
) -> Response:
    schema = _field_schema(body.field_schema)
    config = collection.config
    updated = config.with_updates(payload_schema=config.payload_schema | {body.field_name: schema})
    op_id = await run_cpu(request, collection.update_config, updated)
    return update_result(request, op_id, wait)


@router.delete("/collections/{name}/index/{field_name:path}")
async def delete_payload_index(
    request: Request, field_name: str, collection: CollectionDep, wait: bool = False
) -> Response:
    config = collection.config
    remaining = {k: v for k, v in config.payload_schema.items() if k != field_name}
    updated = config.with_updates(payload_schema=remaining)
    op_id = await run_cpu(request, collection.update_config, updated)
    return update_result(request, op_id, wait)


def _config_from_request(body: CreateCollection, settings: Settings) -> CollectionConfig:
    if body.vectors is None:
        raise BadRequest(
            "Wrong input: `vectors` is required (sparse-only collections are not supported yet)"
        )
    if body.sparse_vectors:
        raise UnsupportedFeature("sparse vectors")
    if body.init_from is not None:
        raise UnsupportedFeature("init_from")
    named = isinstance(body.vectors, dict)
    vectors = body.vectors if isinstance(body.vectors, dict) else {DEFAULT_VECTOR: body.vectors}
    if named and not vectors:
        raise BadRequest("Wrong input: `vectors` must name at least one vector")
    for name, params in vectors.items():
        _check_vector_params(name, params, settings)
    config = CollectionConfig(
        vectors={name: params.model_dump(exclude={"memory"}) for name, params in vectors.items()},
        named_vectors=named,
    )
    if body.sharding_method not in (None, "auto"):
        raise UnsupportedFeature(f"sharding_method {body.sharding_method!r} (only 'auto')")
    changes: dict[str, Any] = {}
    if body.hnsw_config is not None:
        changes["hnsw_config"] = _merged(HnswConfig(), body.hnsw_config)
    if body.optimizers_config is not None:
        changes["optimizers_config"] = _merged(OptimizersConfig(), body.optimizers_config)
    for field in (
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
        "on_disk_payload",
    ):
        value = getattr(body, field)
        if value is not None:
            changes[field] = value
    if body.metadata is not None:
        changes["metadata"] = body.metadata
    if body.strict_mode_config is not None:
        changes["strict_mode_config"] = body.strict_mode_config
    if body.index is not None:
        changes["index"] = _index_config(IndexConfig(), body.index)
    if body.multivector is not None:
        changes["multivector"] = body.multivector.model_dump(exclude_none=True)
    if body.quantization_config is not None:
        changes["quantization_config"] = _quantization(body.quantization_config, config)
    updated = config.with_updates(**changes) if changes else config
    check_backend(updated)
    return updated


def _check_vector_params(name: str, params: VectorParamsIn, settings: Settings) -> None:
    label = f"vector {name!r}" if name else "vector"
    if params.size > settings.max_vector_size:
        raise BadRequest(
            f"Wrong input: {label} size {params.size} exceeds "
            f"the limit of {settings.max_vector_size}"
        )
    if params.multivector_config is not None:
        _check_multivector(label, params)
    if params.quantization_config is not None:
        raise UnsupportedFeature(
            "per-vector `quantization_config` (set `quantization_config` on the collection)"
        )
    if params.datatype not in (None, "float32"):
        raise UnsupportedFeature(f"datatype {params.datatype!r} (vectors are stored as float32)")


def _check_multivector(label: str, params: VectorParamsIn) -> None:
    """Qdrant's ``multivector_config``: MaxSim is the only comparator it defines; Quiver
    computes it from inner products, so the vector must use Cosine or Dot."""
    assert params.multivector_config is not None
    comparator = params.multivector_config.get("comparator")
    if set(params.multivector_config) != {"comparator"} or comparator != "max_sim":
        raise BadRequest(
            f'Wrong input: {label}: `multivector_config` must be {{"comparator": "max_sim"}}, '
            f"got {params.multivector_config}"
        )
    if params.distance not in (Distance.COSINE, Distance.DOT):
        raise UnsupportedFeature(
            f"{label}: multi-vectors with the {params.distance.value} distance "
            "(MaxSim is offered for Cosine and Dot)"
        )


def _merged(
    current: HnswConfig | OptimizersConfig, diff: HnswConfigDiff | OptimizersConfigDiff
) -> dict[str, Any]:
    known = type(current).model_fields
    updates = {k: v for k, v in diff.model_dump(exclude_none=True).items() if k in known}
    return current.model_dump() | updates


def _collection_params(params: dict[str, Any]) -> dict[str, Any]:
    allowed = {
        "replication_factor",
        "write_consistency_factor",
        "on_disk_payload",
        "read_fan_out_factor",
    }
    unknown = set(params) - allowed
    if unknown:
        raise BadRequest(f"Wrong input: unknown collection params: {', '.join(sorted(unknown))}")
    return {k: v for k, v in params.items() if k != "read_fan_out_factor" and v is not None}


def _quantization(raw: dict[str, Any] | str, config: CollectionConfig) -> dict[str, Any] | None:
    """A new ``quantization_config``: Qdrant's object, or ``"Disabled"`` to remove it."""
    if raw == "Disabled":
        return None
    if not isinstance(raw, dict):
        raise BadRequest('Wrong input: `quantization_config` must be an object or "Disabled"')
    check_for_vectors(raw, [params.distance for params in config.vectors.values()])
    return raw


def _index_config(current: IndexConfig, diff: IndexConfigIn) -> dict[str, Any]:
    return current.model_dump() | diff.model_dump(exclude_none=True)


def _field_schema(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        raise BadRequest("Wrong input: `field_schema` is required")
    schema = {"type": raw} if isinstance(raw, str) else dict(raw)
    kind = schema.get("type")
    if kind not in PAYLOAD_INDEX_TYPES:
        raise BadRequest(
            f"Wrong input: unknown payload index type {kind!r}; "
            f"expected one of {', '.join(sorted(PAYLOAD_INDEX_TYPES))}"
        )
    return schema
