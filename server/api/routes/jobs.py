"""Background jobs (index builds, rebuilds, vacuum, merge) and segment listing.

Quiver extensions: Qdrant shows optimisation only as a collection status colour;
here each job can be watched (progress, points done / total, ETA) and cancelled.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api import render
from server.api.deps import CollectionDep, EngineDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.errors import NotFound

router = APIRouter(tags=["jobs"], route_class=OrjsonRoute)


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Not found: no job with id {job_id}")


@router.get("/collections/{name}/jobs")
async def collection_jobs(request: Request, collection: CollectionDep) -> Response:
    return ok(request, await run_cpu(request, collection.jobs))


@router.get("/collections/{name}/segments")
async def collection_segments(request: Request, collection: CollectionDep) -> Response:
    return ok(request, render.segments(await run_cpu(request, collection.segments_info)))


@router.get("/jobs/{job_id}")
async def get_job(request: Request, job_id: str, engine: EngineDep) -> Response:
    job = await run_cpu(request, engine.job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return ok(request, job)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str, engine: EngineDep) -> Response:
    job = await run_cpu(request, engine.job, job_id, True)
    if job is None:
        raise JobNotFound(job_id)
    return ok(request, job)
