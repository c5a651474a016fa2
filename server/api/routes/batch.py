"""``POST /collections/{name}/points/batch``: many point writes of any kind, in order.

Qdrant's semantics, which local mode (``QdrantClient(":memory:")``) shares: every
operation is parsed and validated first (shapes, ids, filters, vectors against the
config, strict mode as its own route checks it), so a malformed batch is a 4xx and
writes nothing. Then the operations run in
order, each its own durable write with its own operation id; the first that fails
(a missing point, an unknown vector name to delete) stops the batch and its error is
the answer, while the operations before it stay applied.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.inference import embed_upsert, vector_names
from server.api.routes.common import selection
from server.api.routes.points import upsert_columns
from server.api.routes.vectors import Write, prepare_delete_vectors, prepare_update_vectors
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    ClearPayloadOperation,
    DeleteOperation,
    DeletePayload,
    DeletePayloadOperation,
    DeleteVectorsOperation,
    OverwritePayloadOperation,
    PointsBatch,
    PointsList,
    PointsSelector,
    SetPayload,
    SetPayloadOperation,
    UpdateOperation,
    UpdateOperations,
    UpdateVectorsOperation,
    UpsertOperation,
)
from server.engine import strict_mode
from server.engine.filters import parse_filter
from server.engine.protocols import CollectionHandle
from server.engine.requests import PointsSelection
from server.errors import BadRequest
from server.settings import Settings

router = APIRouter(tags=["points"], route_class=OrjsonRoute)


@router.post("/collections/{name}/points/batch")
async def batch_update(
    request: Request,
    body: UpdateOperations,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    def run() -> list[int]:
        writes = [prepare(operation, collection, settings) for operation in body.operations]
        return [write() for write in writes]

    op_ids = await run_cpu(request, run)
    status = "completed" if wait else "acknowledged"
    return ok(request, [{"operation_id": op_id, "status": status} for op_id in op_ids])


def prepare(operation: UpdateOperation, collection: CollectionHandle, settings: Settings) -> Write:
    """One operation parsed and validated (strict mode as its own route checks it) into
    the write that applies it."""
    if isinstance(operation, UpsertOperation):
        return _prepare_upsert(operation.upsert, collection, settings)
    if isinstance(operation, UpdateVectorsOperation):
        return prepare_update_vectors(operation.update_vectors, collection, settings, check=True)
    if isinstance(operation, DeleteVectorsOperation):
        return prepare_delete_vectors(operation.delete_vectors, collection, settings)
    if isinstance(operation, DeleteOperation):
        chosen = _selected(operation.delete, collection, settings)
        return partial(collection.delete, chosen)
    if isinstance(operation, ClearPayloadOperation):
        chosen = _selected(operation.clear_payload, collection, settings)
        return partial(collection.clear_payload, chosen)
    if isinstance(operation, SetPayloadOperation):
        given = operation.set_payload
        chosen = _selected(given, collection, settings, adds_payload=True)
        return partial(collection.set_payload, given.payload, chosen, given.key)
    if isinstance(operation, OverwritePayloadOperation):
        given = operation.overwrite_payload
        if given.key is not None:
            raise BadRequest("Wrong input: `key` is not allowed when overwriting a payload")
        chosen = _selected(given, collection, settings, adds_payload=True)
        return partial(collection.overwrite_payload, given.payload, chosen)
    assert isinstance(operation, DeletePayloadOperation)
    removed = operation.delete_payload
    return partial(
        collection.delete_payload, removed.keys, _selected(removed, collection, settings)
    )


def _selected(
    body: PointsSelector | SetPayload | DeletePayload,
    collection: CollectionHandle,
    settings: Settings,
    *,
    adds_payload: bool = False,
) -> PointsSelection:
    """The points an operation selects (ids or a filter), checked against strict mode."""
    chosen = selection(body.points, body.filter, settings)
    strict_mode.check_write(collection, chosen, adds_payload)
    return chosen


def _prepare_upsert(
    body: PointsList | PointsBatch, collection: CollectionHandle, settings: Settings
) -> Write:
    ids, vectors, payloads = upsert_columns(body, settings)
    update_filter = parse_filter(body.update_filter)
    embed_upsert(vectors, vector_names(collection.config))
    strict_mode.check_upsert(collection, vectors)
    collection.check_vectors(list(vectors))
    return partial(
        collection.upsert,
        ids,
        vectors,
        payloads,
        update_mode=body.update_mode or "upsert",
        update_filter=update_filter,
    )
