"""Point writes and reads: upsert, retrieve, delete, payload operations, scroll, count."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api import render
from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.inference import embed_upsert, vector_names
from server.api.routes.common import (
    check_limit,
    payload_selector,
    point_ids,
    selection,
    update_result,
    vector_selector,
)
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    CountRequest,
    DeletePayload,
    PointRequest,
    PointsBatch,
    PointsList,
    PointsSelector,
    ScrollRequest,
    SetPayload,
)
from server.engine import strict_mode
from server.engine.filters import parse_filter
from server.engine.ordering import parse_order_by
from server.engine.point_ids import parse_point_id
from server.engine.protocols import CollectionHandle
from server.engine.requests import VectorColumns
from server.errors import BadRequest
from server.settings import Settings

router = APIRouter(tags=["points"], route_class=OrjsonRoute)


@router.put("/collections/{name}/points")
async def upsert_points(
    request: Request,
    body: PointsList | PointsBatch,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    return update_result(
        request, await run_cpu(request, upsert_job(body, collection, settings)), wait
    )


@router.get("/collections/{name}/points/{point_id}")
async def get_point(request: Request, point_id: str, collection: CollectionDep) -> Response:
    parsed = parse_point_id(int(point_id) if point_id.isdigit() else point_id)
    strict_mode.check_read(collection, request.query_params, points=1)
    return ok(request, render.record(await run_cpu(request, collection.get_point, parsed)))


@router.post("/collections/{name}/points")
async def retrieve_points(
    request: Request, body: PointRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    ids = point_ids(body.ids, settings)
    with_payload = payload_selector(body.with_payload, True)
    with_vector = vector_selector(body.with_vector, False)
    strict_mode.check_read(collection, request.query_params, points=len(ids))
    records = await run_cpu(request, collection.retrieve, ids, with_payload, with_vector)
    return ok(request, render.records(records))


@router.post("/collections/{name}/points/delete")
async def delete_points(
    request: Request,
    body: PointsSelector,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    return update_result(
        request, await run_cpu(request, delete_job(body, collection, settings)), wait
    )


@router.post("/collections/{name}/points/payload")
async def set_payload(
    request: Request,
    body: SetPayload,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    job = set_payload_job(body, collection, settings)
    return update_result(request, await run_cpu(request, job), wait)


@router.put("/collections/{name}/points/payload")
async def overwrite_payload(
    request: Request,
    body: SetPayload,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    if body.key is not None:
        raise BadRequest("Wrong input: `key` is not allowed when overwriting a payload")
    chosen = selection(body.points, body.filter, settings)
    await run_cpu(request, strict_mode.check_write, collection, chosen, True)
    op_id = await run_cpu(request, collection.overwrite_payload, body.payload, chosen)
    return update_result(request, op_id, wait)


@router.post("/collections/{name}/points/payload/delete")
async def delete_payload(
    request: Request,
    body: DeletePayload,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    chosen = selection(body.points, body.filter, settings)
    await run_cpu(request, strict_mode.check_write, collection, chosen)
    op_id = await run_cpu(request, collection.delete_payload, body.keys, chosen)
    return update_result(request, op_id, wait)


@router.post("/collections/{name}/points/payload/clear")
async def clear_payload(
    request: Request,
    body: PointsSelector,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    chosen = selection(body.points, body.filter, settings)
    await run_cpu(request, strict_mode.check_write, collection, chosen)
    return update_result(request, await run_cpu(request, collection.clear_payload, chosen), wait)


@router.post("/collections/{name}/points/scroll")
async def scroll_points(
    request: Request, body: ScrollRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    limit = check_limit("limit", 10 if body.limit is None else body.limit, settings)
    offset = None if body.offset is None else parse_point_id(body.offset)
    flt = parse_filter(body.filter)
    with_payload = payload_selector(body.with_payload, True)
    with_vector = vector_selector(body.with_vector, False)
    strict_mode.check_read(collection, request.query_params, flt=flt, limit=limit)
    if body.order_by is not None:
        order = parse_order_by(body.order_by)
        if offset is not None:
            raise BadRequest(
                "Wrong input: `offset` cannot be used with `order_by` (page with "
                "`order_by.start_from`)"
            )
        page = await run_cpu(
            request, collection.scroll_ordered, flt, order, limit, with_payload, with_vector
        )
        return ok(request, render.scroll_page(page))
    page = await run_cpu(request, collection.scroll, flt, limit, offset, with_payload, with_vector)
    return ok(request, render.scroll_page(page))


@router.post("/collections/{name}/points/count")
async def count_points(
    request: Request, collection: CollectionDep, body: CountRequest | None = None
) -> Response:
    flt = parse_filter(body.filter if body is not None else None)
    exact = body is None or body.exact is not False  # Qdrant counts exactly by default
    strict_mode.check_read(collection, request.query_params, flt=flt, exact=exact)
    return ok(request, {"count": await run_cpu(request, collection.count, flt)})


WriteJob = Callable[[], int]
"""A write request's blocking part, run on a worker thread: strict-mode checks, then the
engine call; returns the operation id. The full routes and the lean path
(``api/fast_write.py``) build the same job, so they answer alike, in one thread hop."""


def upsert_job(
    body: PointsList | PointsBatch, collection: CollectionHandle, settings: Settings
) -> WriteJob:
    ids, vectors, payloads = upsert_columns(body, settings)
    update_filter = parse_filter(body.update_filter)

    def write() -> int:
        embed_upsert(vectors, vector_names(collection.config))  # documents -> sparse vectors
        strict_mode.check_upsert(collection, vectors)
        return collection.upsert(
            ids,
            vectors,
            payloads,
            update_mode=body.update_mode or "upsert",
            update_filter=update_filter,
        )

    return write


def delete_job(body: PointsSelector, collection: CollectionHandle, settings: Settings) -> WriteJob:
    chosen = selection(body.points, body.filter, settings)

    def write() -> int:
        strict_mode.check_write(collection, chosen)
        return collection.delete(chosen)

    return write


def set_payload_job(body: SetPayload, collection: CollectionHandle, settings: Settings) -> WriteJob:
    chosen = selection(body.points, body.filter, settings)

    def write() -> int:
        strict_mode.check_write(collection, chosen, True)
        return collection.set_payload(body.payload, chosen, body.key)

    return write


def upsert_columns(
    body: PointsList | PointsBatch, settings: SettingsDep
) -> tuple[list[Any], Sequence[Any], list[dict[str, Any] | None]]:
    """Both upsert forms as three parallel sequences (the batch form's vectors stay
    columns), validated for size and ids."""
    if isinstance(body, PointsList):
        raw_ids: list[Any] = [p.id for p in body.points]
        vectors: Sequence[Any] = [p.vector for p in body.points]
        payloads = [p.payload for p in body.points]
    else:
        batch = body.batch
        raw_ids = batch.ids
        vectors = _batch_vectors(batch.vectors, len(raw_ids))
        payloads = list(batch.payloads) if batch.payloads is not None else [None] * len(raw_ids)
        if len(payloads) != len(raw_ids):
            raise BadRequest(
                f"Wrong input: batch has {len(raw_ids)} ids but {len(payloads)} payloads"
            )
    ids = point_ids(raw_ids, settings)
    return ids, vectors, payloads


def _batch_vectors(
    raw: list[list[float]] | list[list[list[float]]] | dict[str, list[Any]], count: int
) -> VectorColumns:
    """The batch form's vectors as columns, which the collection prepares whole."""
    if isinstance(raw, list):
        if len(raw) != count:
            raise BadRequest(f"Wrong input: batch has {count} ids but {len(raw)} vectors")
        return VectorColumns({None: list(raw)}, count)
    columns: dict[str | None, list[Any]] = {}
    for name, column in raw.items():
        if len(column) != count:
            raise BadRequest(
                f"Wrong input: batch has {count} ids but {len(column)} vectors named {name!r}"
            )
        columns[name] = column
    return VectorColumns(columns, count)
