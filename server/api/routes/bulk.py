"""Quiver extension: ``POST /collections/{name}/points/bulk`` — a streamed bulk load.

The body (NDJSON or an Arrow IPC stream, decoded by ``api/ingest.py``) is consumed in a worker
thread. A task on the event loop reads the request ahead into a bounded queue (``_BodyPipe``,
at most ``READ_AHEAD_BYTES`` waiting), so the network keeps receiving while a chunk commits
and the thread takes each chunk without a round trip to the loop: the body is never held
whole, and a slow client only slows its own load. (Pulling each chunk through the loop made a
one-request upload wait for hundreds of such round trips, ~25% slower than the same points
sent as a stream of smaller writes.)
"""

from __future__ import annotations

import asyncio
import logging
import queue

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

READ_AHEAD_BYTES = 512 << 10
"""Body bytes read ahead of the loader: enough to keep the network busy while a chunk
commits, small beside the bounds a bulk load promises (`QUIVER_MAX_BULK_*`)."""


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
    pipe = _BodyPipe(asyncio.get_running_loop(), READ_AHEAD_BYTES)
    reading = asyncio.ensure_future(pipe.pump(request))
    try:
        body = ingest.ChunkReader(pipe.next_chunk)
        report = await run_cpu(request, ingest.load, collection, kind, body, limits)
    except ClientDisconnect:
        log.warning("bulk load: client disconnected", extra={"collection": collection.name})
        raise
    finally:
        reading.cancel()
    return ok(request, report.to_wire())


class _BodyPipe:
    """The request body, read on the event loop into a queue the loader's thread takes
    from; the reader waits while more than ``limit`` bytes are queued."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self._queued = 0
        self._room = asyncio.Event()
        self._chunks: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()

    async def pump(self, request: Request) -> None:
        """Read the whole body; the queue always ends with None or the reading error, so
        the loader never waits for a chunk that cannot come."""
        end: BaseException | None = None
        try:
            async for chunk in request.stream():
                while self._queued > self._limit:
                    self._room.clear()
                    await self._room.wait()
                if chunk:
                    self._queued += len(chunk)
                    self._chunks.put(chunk)
        except ClientDisconnect as exc:
            end = exc
        except asyncio.CancelledError:
            end = ClientDisconnect()  # the loader has stopped: nothing waits for this
            raise
        finally:
            self._chunks.put(end)

    def next_chunk(self) -> bytes | None:
        """The next chunk, None at the end (called by the loader's thread)."""
        item = self._chunks.get()
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            self._loop.call_soon_threadsafe(self._taken, len(item))
        return item

    def _taken(self, size: int) -> None:
        self._queued -= size
        self._room.set()


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
