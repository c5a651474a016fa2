"""Search: the universal ``/points/query`` and the legacy ``/points/search``, single and batch.

Each request is turned into a ``SearchSpec`` (validated vector, filter, limits)
before any search runs, so a bad request in a batch fails the whole batch
cleanly; the batch then goes to the collection in one call, which answers
unfiltered queries together in one native kernel call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.routes.common import (
    check_limit,
    payload_selector,
    search_params,
    vector_selector,
)
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    QueryRequest,
    QueryRequestBatch,
    SearchRequest,
    SearchRequestBatch,
)
from server.cluster.shards import AnyCollection
from server.engine.collection import SearchSpec
from server.engine.filters import parse_filter
from server.engine.point_ids import PointId, parse_point_id
from server.errors import BadRequest, UnsupportedFeature
from server.settings import Settings

router = APIRouter(tags=["search"], route_class=OrjsonRoute)

_PENDING = np.empty(0, dtype=np.float32)
"""Placeholder for a query vector validated later with the rest of its batch."""

_OTHER_QUERY_KINDS = (
    "recommend", "discover", "context", "fusion", "rrf", "formula", "order_by", "sample",
    "relevance_feedback",
)  # fmt: skip


@router.post("/collections/{name}/points/query")
async def query_points(
    request: Request, body: QueryRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    answers = await run_cpu(request, _run_queries, collection, [body], settings)
    return ok(request, answers[0])


@router.post("/collections/{name}/points/query/batch")
async def query_points_batch(
    request: Request, body: QueryRequestBatch, collection: CollectionDep, settings: SettingsDep
) -> Response:
    _check_batch(len(body.searches), settings)
    answers = await run_cpu(request, _run_queries, collection, body.searches, settings)
    return ok(request, answers)


@router.post("/collections/{name}/points/search")
async def search_points(
    request: Request, body: SearchRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    specs = [_search_spec(body, collection, settings)]
    return ok(request, (await run_cpu(request, collection.search, specs))[0])


@router.post("/collections/{name}/points/search/batch")
async def search_points_batch(
    request: Request, body: SearchRequestBatch, collection: CollectionDep, settings: SettingsDep
) -> Response:
    _check_batch(len(body.searches), settings)
    specs = [_search_spec(s, collection, settings) for s in body.searches]
    return ok(request, await run_cpu(request, collection.search, specs))


def _run_queries(
    collection: AnyCollection, requests: list[QueryRequest], settings: Settings
) -> list[dict[str, Any]]:
    """Resolve every request first (ids -> vectors), then search them all at once.
    Each answer is Qdrant's ``QueryResponse``, plus ``explain`` when it was asked for."""
    answers: list[dict[str, Any]] = [{} for _ in requests]
    specs: list[SearchSpec] = []
    positions: list[int] = []
    deferred: dict[str, list[tuple[SearchSpec, list[Any]]]] = {}
    for i, request in enumerate(requests):
        spec = _query_spec(request, collection, settings, deferred)
        if spec is None:
            answers[i] = {"points": _points_without_query(request, collection, settings)}
        else:
            specs.append(spec)
            positions.append(i)
    for name, waiting in deferred.items():
        matrix = collection.prepare_queries(name, [raw for _, raw in waiting])
        for (spec, _), vector in zip(waiting, matrix, strict=True):
            spec.vector = vector
    for i, spec, points in zip(positions, specs, collection.search(specs), strict=True):
        answers[i] = {"points": points}
        if spec.explain is not None:
            answers[i]["explain"] = spec.explain
    return answers


def _query_spec(
    request: QueryRequest,
    collection: AnyCollection,
    settings: Settings,
    deferred: dict[str, list[tuple[SearchSpec, list[Any]]]],
) -> SearchSpec | None:
    """The request as a ``SearchSpec``; a literal query vector is left in ``deferred``
    so that a batch validates and normalises all its vectors in one numpy call."""
    if request.prefetch:
        raise UnsupportedFeature("`prefetch`")
    if request.lookup_from is not None:
        raise UnsupportedFeature("`lookup_from`")
    query = request.query
    if isinstance(query, dict):
        query = _nearest_of(query)
    if query is None:
        return None
    exclude: list[PointId] = []
    raw: list[Any] | None = None
    if isinstance(query, int | str) and not isinstance(query, bool):
        point_id = parse_point_id(query)
        vector = collection.query_vector_of(point_id, request.using or "")
        name = collection.prepare_query(vector.tolist(), request.using)[0]
        exclude.append(point_id)
    elif isinstance(query, list):
        name, vector, raw = collection.vector_name(request.using), _PENDING, query
    else:
        raise BadRequest(f"Wrong input: cannot read `query` of type {type(query).__name__}")
    spec = SearchSpec(
        using=name,
        vector=vector,
        limit=check_limit("limit", 10 if request.limit is None else request.limit, settings),
        offset=check_limit("offset", request.offset or 0, settings),
        filter=parse_filter(request.filter),
        score_threshold=request.score_threshold,
        with_payload=payload_selector(request.with_payload, False),
        with_vector=vector_selector(request.with_vector, False),
        exclude_ids=exclude,
        params=search_params(request.params),
        force=request.strategy,
        explain=[] if request.explain else None,
    )
    if raw is not None:
        deferred.setdefault(name, []).append((spec, raw))
    return spec


def _nearest_of(query: dict[str, Any]) -> Any:
    if "nearest" in query:
        if query.get("mmr") is not None:
            raise UnsupportedFeature("MMR (`mmr`) queries")
        nearest = query["nearest"]
        if isinstance(nearest, dict):
            raise UnsupportedFeature("sparse vector queries")
        return nearest
    if "indices" in query and "values" in query:
        raise UnsupportedFeature("sparse vector queries")
    for kind in _OTHER_QUERY_KINDS:
        if kind in query:
            raise UnsupportedFeature(f"`{kind}` queries")
    raise BadRequest(f"Wrong input: unknown query object with keys {sorted(query)}")


def _points_without_query(
    request: QueryRequest, collection: AnyCollection, settings: Settings
) -> list[dict[str, Any]]:
    """A query with no ``query`` pages through points in id order, as Qdrant does."""
    limit = check_limit("limit", 10 if request.limit is None else request.limit, settings)
    offset = check_limit("offset", request.offset or 0, settings)
    records, _ = collection.scroll(
        parse_filter(request.filter),
        limit + offset,
        None,
        payload_selector(request.with_payload, False),
        vector_selector(request.with_vector, False),
    )
    return [record | {"version": 0, "score": 1.0} for record in records[offset:]]


def _search_spec(
    request: SearchRequest, collection: AnyCollection, settings: Settings
) -> SearchSpec:
    raw: Any = request.vector
    using: str | None = None
    if isinstance(raw, dict):
        using, raw = raw.get("name"), raw.get("vector")
        if isinstance(raw, dict):
            raise UnsupportedFeature("sparse vector search")
        if not isinstance(using, str) or not isinstance(raw, list):
            raise BadRequest('Wrong input: a named vector is {"name": str, "vector": [numbers]}')
    name, vector = collection.prepare_query(raw, using)
    return SearchSpec(
        using=name,
        vector=vector,
        limit=check_limit("limit", request.limit, settings),
        offset=check_limit("offset", request.offset or 0, settings),
        filter=parse_filter(request.filter),
        score_threshold=request.score_threshold,
        with_payload=payload_selector(request.with_payload, False),
        with_vector=vector_selector(request.with_vector, False),
        params=search_params(request.params),
    )


def _check_batch(count: int, settings: Settings) -> None:
    if count > settings.max_search_batch:
        raise BadRequest(
            f"Wrong input: {count} searches in one batch exceeds the limit of "
            f"{settings.max_search_batch}"
        )
