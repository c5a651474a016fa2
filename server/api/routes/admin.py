"""Service routes: version (for qdrant-client's compatibility check), metrics and health.

``GET /`` answers Qdrant's ``VersionInfo``. ``title`` says what serves the API (Quiver,
not Qdrant: nothing parses it); ``version`` is the Qdrant release whose REST API Quiver
speaks, because qdrant-client reads only that field and warns unless its own major
version is equal and its minor within one (``qdrant_client.common.version_check``);
``commit`` is null (the OpenAPI model allows it): a Qdrant commit would be false and
an installed Quiver does not know its own. ``quiver_version`` is Quiver's own release,
an extra field clients ignore.

The probes answer as Qdrant's do: plain text, not the JSON envelope.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.api.deps import run_cpu
from server.api.envelope import OrjsonResponse
from server.api.routing import OrjsonRoute

router = APIRouter(tags=["service"], route_class=OrjsonRoute)

QDRANT_API_VERSION = "1.19.0"
"""The Qdrant release whose REST API Quiver speaks; qdrant-client compares its own
version with this one (major equal, minor within one)."""
TITLE = "quiver - vector search engine (Qdrant-compatible API)"
HEALTHY = "healthz check passed"
READY, NOT_READY = "all shards are ready", "some shards are not ready"


def quiver_version() -> str:
    try:
        return version("quiver")
    except PackageNotFoundError:
        return "0.0.0"


@router.get("/")
async def root() -> Response:
    return OrjsonResponse(
        {
            "title": TITLE,
            "version": QDRANT_API_VERSION,
            "commit": None,
            "quiver_version": quiver_version(),
        }
    )


@router.get("/metrics")
async def metrics(request: Request, anonymize: bool = False) -> Response:
    """Prometheus text format (``server/api/metrics.py``); needs the API key when set.
    Rendered in a worker thread: it reads every collection's stats, which waits on
    collection locks and, for sharded collections, on every shard. ``anonymize`` is
    accepted and changes nothing: no label carries a host name, address or key."""
    body = await run_cpu(request, generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> Response:
    return PlainTextResponse(HEALTHY)


@router.get("/livez")
async def livez() -> Response:
    return PlainTextResponse(HEALTHY)


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready once the engine has opened every collection (Qdrant: once every local
    shard is active; Quiver's shards open with their collection)."""
    if getattr(request.app.state, "engine", None) is None:
        return PlainTextResponse(NOT_READY, status_code=503)
    return PlainTextResponse(READY)
