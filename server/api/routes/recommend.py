"""The legacy recommend and discover endpoints, single and batch.

Each body becomes one engine ``Query`` by example (``engine/recommend.py``), answered
by the same path as the ``recommend`` / ``discover`` / ``context`` query objects of
``/points/query``; the answer is a bare list of scored points, as Qdrant's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from server.api import render
from server.api.deps import CollectionDep, EngineDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.example_wire import Resolve, discover, lookup, recommend
from server.api.routes.common import check_limit, payload_selector, search_params, vector_selector
from server.api.routes.query import check_batch
from server.api.routing import OrjsonRoute
from server.api.schemas import RawFilter, RawWithPayload, RawWithVector, SearchParams, Wire
from server.engine import strict_mode
from server.engine.examples import ExampleQuery
from server.engine.filters import parse_filter
from server.engine.requests import Query
from server.settings import Settings

router = APIRouter(tags=["search"], route_class=OrjsonRoute)


class _ByExample(Wire):
    """What the legacy recommend and discover bodies share."""

    filter: RawFilter = None
    params: SearchParams | None = None
    limit: int = Field(ge=0)
    offset: int | None = Field(default=None, ge=0)
    with_payload: RawWithPayload = None
    with_vector: RawWithVector = None
    score_threshold: float | None = None
    using: str | None = None
    lookup_from: Any = None
    shard_key: Any = None


class RecommendRequest(_ByExample):
    positive: list[Any] | None = None
    negative: list[Any] | None = None
    strategy: str | None = None


class DiscoverRequest(_ByExample):
    target: Any = None
    context: list[Any] | None = None


class RecommendRequestBatch(Wire):
    searches: list[RecommendRequest]


class DiscoverRequestBatch(Wire):
    searches: list[DiscoverRequest]


@router.post("/collections/{name}/points/recommend")
async def recommend_points(
    request: Request,
    body: RecommendRequest,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    queries = [_query(body, settings, engine.get)]
    strict_mode.check_queries(collection, queries, request.query_params)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.scored_points(results[0].points))


@router.post("/collections/{name}/points/recommend/batch")
async def recommend_points_batch(
    request: Request,
    body: RecommendRequestBatch,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    check_batch(len(body.searches), settings)
    queries = [_query(search, settings, engine.get) for search in body.searches]
    strict_mode.check_queries(collection, queries, request.query_params, batch=True)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, [render.scored_points(result.points) for result in results])


@router.post("/collections/{name}/points/discover")
async def discover_points(
    request: Request,
    body: DiscoverRequest,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    queries = [_query(body, settings, engine.get)]
    strict_mode.check_queries(collection, queries, request.query_params)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.scored_points(results[0].points))


@router.post("/collections/{name}/points/discover/batch")
async def discover_points_batch(
    request: Request,
    body: DiscoverRequestBatch,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    check_batch(len(body.searches), settings)
    queries = [_query(search, settings, engine.get) for search in body.searches]
    strict_mode.check_queries(collection, queries, request.query_params, batch=True)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, [render.scored_points(result.points) for result in results])


def _query(body: RecommendRequest | DiscoverRequest, settings: Settings, resolve: Resolve) -> Query:
    examples: ExampleQuery
    if isinstance(body, RecommendRequest):
        fields = {"positive": body.positive, "negative": body.negative, "strategy": body.strategy}
        examples = recommend(fields)
    else:
        examples = discover(body.target, body.context, "discover")
    return Query(
        using=body.using,
        limit=check_limit("limit", body.limit, settings),
        offset=check_limit("offset", body.offset or 0, settings),
        filter=parse_filter(body.filter),
        score_threshold=body.score_threshold,
        with_payload=payload_selector(body.with_payload, False),
        with_vector=vector_selector(body.with_vector, False),
        params=search_params(body.params),
        examples=examples,
        lookup=lookup(body.lookup_from, resolve),
    )
