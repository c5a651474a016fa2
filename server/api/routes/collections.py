"""Collection management: create, inspect, update, delete, payload indexes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api import render
from server.api.access import visible_collections
from server.api.deps import CollectionDep, EngineDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.routes.common import update_result
from server.api.routing import OrjsonRoute
from server.api.schemas import CreateCollection, CreateFieldIndex, UpdateCollection, Wire
from server.engine import strict_mode
from server.engine.config import CollectionConfig
from server.engine.config_requests import config_from_request, patched_config
from server.engine.engine import Engine, validate_collection_name
from server.engine.protocols import CollectionHandle
from server.errors import BadRequest

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
    config = config_from_request(_given(body), settings.max_vector_size)
    await run_cpu(request, engine.create, name, config)
    return ok(request, True)


@router.get("/collections/{name}")
async def get_collection_info(request: Request, collection: CollectionDep) -> Response:
    return ok(request, render.collection_info(await run_cpu(request, collection.info)))


@router.get("/collections/{name}/exists")
async def collection_exists(request: Request, name: str, engine: EngineDep) -> Response:
    return ok(request, {"exists": engine.exists(name)})


@router.patch("/collections/{name}")
async def update_collection(
    request: Request, body: UpdateCollection, collection: CollectionDep, engine: EngineDep
) -> Response:
    updated = patched_config(collection.config, _given(body))
    await run_cpu(request, _apply_config, engine, collection, updated)
    return ok(request, True)


@router.delete("/collections/{name}")
async def delete_collection(request: Request, name: str, engine: EngineDep) -> Response:
    return ok(request, await run_cpu(request, engine.delete, name))


@router.put("/collections/{name}/index")
async def create_payload_index(
    request: Request, body: CreateFieldIndex, collection: CollectionDep, wait: bool = False
) -> Response:
    schema = _field_schema(body.field_schema)
    strict_mode.check_new_index(collection, body.field_name)
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


def _given(body: Wire) -> dict[str, Any]:
    """The fields a request set to something (None means "not given", as in Qdrant)."""
    return {name: value for name, value in body if value is not None}


def _apply_config(engine: Engine, collection: CollectionHandle, config: CollectionConfig) -> None:
    """Store a new config and queue the rebuilds it needs (both write SQLite)."""
    collection.update_config(config)
    engine.config_changed(collection)


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
