"""Quiver extension: the query sample LeanVec's OOD variant learns from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.api.schemas import Wire
from server.errors import BadRequest

router = APIRouter(tags=["leanvec"], route_class=OrjsonRoute)


class TrainingQueries(Wire):
    """Query vectors to learn from; ``retrain`` rebuilds every segment in the background
    with them (LeanVec OOD collections); ``replace`` drops the earlier upload."""

    vectors: list[Any] = Field(min_length=1)
    using: str | None = None
    replace: bool = False
    retrain: bool = True


@router.post("/collections/{name}/leanvec/training-queries")
async def add_training_queries(
    request: Request, body: TrainingQueries, collection: CollectionDep, settings: SettingsDep
) -> Response:
    if len(body.vectors) > settings.max_batch_points:
        raise BadRequest(
            f"Too many training queries: {len(body.vectors)} "
            f"(the limit is {settings.max_batch_points} per request)"
        )
    result = await run_cpu(
        request,
        collection.add_training_queries,
        body.using,
        body.vectors,
        body.replace,
        body.retrain,
    )
    return ok(request, result)


@router.get("/collections/{name}/leanvec/training-queries")
async def training_query_counts(request: Request, collection: CollectionDep) -> Response:
    """How many uploaded ("given") and served ("seen") queries each vector has."""
    names = list(collection.config.vectors)
    return ok(request, await run_cpu(request, collection.training_query_counts, names))
