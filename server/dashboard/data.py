"""The two data routes the dashboard needs and the REST API lacked (Quiver extensions).

- ``GET /collections/{name}/quiver/map``: a 2-D PCA map of a sample of one dense vector,
  each point with the value of one payload field to colour it by. The sample is one
  scroll page (the first ``limit`` points in id order, at most 5,000), so a map of a
  10M-point collection reads 5,000 points, never the collection.
- ``GET /jobs``: the background jobs of every collection the caller may see, running and
  queued first, then the latest finished, so one page shows what the server is doing.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.api.access import visible_collections
from server.api.deps import CollectionDep, EngineDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.dashboard.projection import pca_2d
from server.engine.config import DEFAULT_VECTOR
from server.engine.engine import Engine
from server.engine.payload import PayloadSelector, parse_with_payload
from server.engine.protocols import CollectionHandle, JobWire
from server.engine.results import Record
from server.errors import BadRequest, CollectionNotFound

router = APIRouter(tags=["dashboard"], route_class=OrjsonRoute)

MAX_MAP_POINTS = 5_000
MAX_JOBS = 1_000
ACTIVE_STATES = ("running", "queued")


@router.get("/collections/{name}/quiver/map")
async def vector_map(
    request: Request,
    collection: CollectionDep,
    using: str = "",
    limit: Annotated[int, Query(ge=2, le=MAX_MAP_POINTS)] = 1_000,
    color_by: str | None = None,
) -> Response:
    """PCA of the first ``limit`` points' vector ``using``."""
    return ok(request, await run_cpu(request, build_map, collection, using, limit, color_by))


@router.get("/jobs")
async def all_jobs(
    request: Request, engine: EngineDep, limit: Annotated[int, Query(ge=1, le=MAX_JOBS)] = 100
) -> Response:
    names = visible_collections(request, engine.names())
    return ok(request, await run_cpu(request, jobs_page, engine, names, limit))


def build_map(
    collection: CollectionHandle, using: str, limit: int, color_by: str | None
) -> dict[str, Any]:
    name = _dense_vector(collection, using)
    payload = _color_selector(color_by)
    page = collection.scroll(None, limit, None, payload, [name] if name else True)
    records = [r for r in page.records if _vector_of(r, name) is not None]
    if not records:
        return {"points": [], "explained": [0.0, 0.0], "sampled": 0, "complete": True}
    vectors = np.array([_vector_of(r, name) for r in records], dtype=np.float32)
    projection = pca_2d(vectors)
    points = [
        {"id": r.id, "x": round(float(x), 5), "y": round(float(y), 5), "color": _color(r, color_by)}
        for r, (x, y) in zip(records, projection.coords, strict=True)
    ]
    return {
        "points": points,
        "explained": [round(share, 5) for share in projection.explained],
        "sampled": len(points),
        "complete": page.next_offset is None,
    }


def _dense_vector(collection: CollectionHandle, using: str) -> str:
    """The vector name to map (the first named one when none is given); 400 for an
    unknown or multi-vector one."""
    config = collection.config
    if not config.vectors:
        raise BadRequest("Wrong input: the collection has no dense vector to map")
    if not using and config.named_vectors:
        using = min(config.vectors)
    params = config.vector(using)
    if params is None:
        raise BadRequest(f"Wrong input: the collection has no vector named {using!r}")
    if params.is_multi:
        raise BadRequest(f"Wrong input: vector {using!r} is a multi-vector; the map needs one")
    return using or DEFAULT_VECTOR


def _color_selector(color_by: str | None) -> PayloadSelector:
    return parse_with_payload([color_by] if color_by else False)


def _vector_of(record: Record, name: str) -> list[Any] | None:
    vector = record.vector
    if isinstance(vector, dict):
        return vector.get(name)
    return vector


def _color(record: Record, field: str | None) -> Any:
    """The colour field's value: a scalar as it is, anything else as its JSON text."""
    if not field or not record.payload:
        return None
    value = record.payload.get(field)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def jobs_page(engine: Engine, names: list[str], limit: int) -> dict[str, Any]:
    """Active jobs first (oldest first), then the latest finished, ``limit`` in all."""
    found: list[JobWire] = []
    for name in names:
        try:
            found.extend(engine.get(name).jobs())
        except CollectionNotFound:  # deleted while listing
            continue
    active = sorted((j for j in found if j["state"] in ACTIVE_STATES), key=_created)
    done = sorted((j for j in found if j["state"] not in ACTIVE_STATES), key=_finished)
    done.reverse()
    return {"jobs": (active + done)[:limit], "active": len(active), "total": len(found)}


def _created(job: JobWire) -> float:
    return float(job.get("created") or 0.0)


def _finished(job: JobWire) -> float:
    return float(job.get("finished") or job.get("created") or 0.0)
