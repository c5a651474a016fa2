"""Quiver extension: ``POST /collections/{name}/points/bulk`` — a streamed bulk load.

The body (NDJSON or an Arrow IPC stream, decoded by ``api/ingest.py``) is consumed in a worker
thread that pulls the request's chunks from the event loop one at a time, so the body is
never held whole and a slow client only slows its own load.
"""

from __future__ import annotations

import logging

import anyio.from_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from server.api import ingest
from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.engine import strict_mode
from server.errors import BadRequest
from server.settings import Settings

router = APIRouter(tags=["points"], route_class=OrjsonRoute)
log = logging.getLogger(__name__)


@router.post("/collections/{name}/points/bulk")
async def bulk_load(
    request: Request,
    collection: CollectionDep,
    settings: SettingsDep,
    chunk_rows: int = Query(default=10_000, ge=1),
    wait: bool = True,
) -> Response:
    """Upsert a stream of points; each chunk of ``chunk_rows`` is one durable commit.
    ``wait`` is accepted for symmetry with upsert: every commit is durable anyway."""
    kind = ingest.format_of(request.headers.get("content-type", ""))
    limits = _limits(settings, chunk_rows)
    await run_cpu(request, strict_mode.check_bulk, collection, chunk_rows)
    chunks = request.stream().__aiter__()

    async def receive() -> bytes | None:
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return None

    def next_chunk() -> bytes | None:
        return anyio.from_thread.run(receive)

    body = ingest.ChunkReader(next_chunk)
    try:
        report = await run_cpu(request, ingest.load, collection, kind, body, limits)
    except ClientDisconnect:
        log.warning("bulk load: client disconnected", extra={"collection": collection.name})
        raise
    return ok(request, report.to_wire())


def _limits(settings: Settings, chunk_rows: int) -> ingest.Limits:
    """A chunk is one commit, so it holds at most what one upsert request may."""
    if chunk_rows > settings.max_batch_points:
        raise BadRequest(
            f"Wrong input: `chunk_rows` {chunk_rows} exceeds the limit of "
            f"{settings.max_batch_points} (QUIVER_MAX_BATCH_POINTS)"
        )
    return ingest.Limits(
        chunk_rows=chunk_rows,
        max_line_bytes=settings.max_bulk_line_bytes,
        max_chunk_bytes=settings.max_request_bytes,
        max_batch_bytes=settings.max_bulk_batch_bytes,
    )
