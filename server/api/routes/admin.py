"""Service routes: version (for qdrant-client's compatibility check) and health."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.api.deps import run_cpu
from server.api.envelope import OrjsonResponse, ok
from server.api.routing import OrjsonRoute

router = APIRouter(tags=["service"], route_class=OrjsonRoute)

QDRANT_API_VERSION = "1.19.0"
"""The Qdrant release whose REST API Quiver speaks; qdrant-client compares its own
version with this one (major equal, minor within one)."""


def quiver_version() -> str:
    try:
        return version("quiver")
    except PackageNotFoundError:
        return "0.0.0"


@router.get("/")
async def root() -> Response:
    return OrjsonResponse(
        {
            "title": "quiver - vector search engine (Qdrant-compatible API)",
            "version": QDRANT_API_VERSION,
            "quiver_version": quiver_version(),
        }
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (``server/api/metrics.py``); needs the API key when set.
    Rendered in a worker thread: it reads every collection's stats, which waits on
    collection locks and, for sharded collections, on every shard."""
    body = await run_cpu(request, generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> Response:
    return OrjsonResponse("healthz check passed")


@router.get("/livez")
async def livez() -> Response:
    return OrjsonResponse("healthz check passed")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    if getattr(request.app.state, "engine", None) is None:
        return OrjsonResponse({"status": {"error": "engine not open"}}, status_code=503)
    return ok(request, "all shards are ready")
