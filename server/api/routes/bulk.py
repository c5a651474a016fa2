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
from server.api.deps import CollectionDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute

router = APIRouter(tags=["points"], route_class=OrjsonRoute)
log = logging.getLogger(__name__)


@router.post("/collections/{name}/points/bulk")
async def bulk_load(
    request: Request,
    collection: CollectionDep,
    chunk_rows: int = Query(default=10_000, ge=1, le=1_000_000),
    wait: bool = True,
) -> Response:
    """Upsert a stream of points; each chunk of ``chunk_rows`` is one durable commit.
    ``wait`` is accepted for symmetry with upsert: every commit is durable anyway."""
    kind = ingest.format_of(request.headers.get("content-type", ""))
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
        report = await run_cpu(request, ingest.load, collection, kind, body, chunk_rows)
    except ClientDisconnect:
        log.warning("bulk load: client disconnected", extra={"collection": collection.name})
        raise
    return ok(request, report.to_wire())
