"""Grouped search and facets: ``/points/query/groups``, ``/points/search/groups``,
``/points/recommend/groups`` and ``/facet``.

A groups request is the plain query (or legacy search / recommend) request plus ``group_by``,
``group_size``, ``limit`` (groups) and ``with_lookup``; its query part is parsed by
the query route's own parser, so grouping works on every query the query route
answers (dense, sparse, multi-vector, prefetch trees). The grouping itself is
``engine/groups.py``; facet counts are ``engine/facets.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api import render
from server.api.access import FULL, GRANT_STATE, Grant, Need
from server.api.deps import CollectionDep, EngineDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.groups_wire import (
    GROUP_FIELDS,
    FacetRequest,
    QueryGroupsRequest,
    RawLookup,
    RecommendGroupsRequest,
    SearchGroupsRequest,
)
from server.api.inference import embed_query_documents
from server.api.routes.common import check_limit, payload_selector, vector_selector
from server.api.routes.query import parse_query, parse_search
from server.api.routes.recommend import RecommendRequest, by_example_query
from server.api.routing import OrjsonRoute
from server.api.schemas import QueryRequest, SearchRequest
from server.engine import strict_mode
from server.engine.engine import Engine
from server.engine.facets import top_hits
from server.engine.filters import parse_filter
from server.engine.groups import GroupRequest, GroupsResult, Lookup, run_groups
from server.engine.requests import Query
from server.errors import Forbidden
from server.settings import Settings

router = APIRouter(tags=["search"], route_class=OrjsonRoute)


@router.post("/collections/{name}/points/query/groups")
async def query_points_groups(
    request: Request,
    body: QueryGroupsRequest,
    collection: CollectionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    plain = QueryRequest.model_validate(body.model_dump(exclude=GROUP_FIELDS, exclude_none=True))
    await embed_query_documents(request, [plain], collection)
    group = _group_request(
        request, body, parse_query(plain, settings, engine.get), engine, settings
    )
    strict_mode.check_groups(collection, group, request.query_params)
    result = await run_cpu(request, run_groups, collection, group)
    return ok(request, groups_response(result))


@router.post("/collections/{name}/points/search/groups")
async def search_points_groups(
    request: Request,
    body: SearchGroupsRequest,
    collection: CollectionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    fields = body.model_dump(exclude=GROUP_FIELDS, exclude_none=True)
    plain = SearchRequest.model_validate(fields | {"limit": body.limit})
    group = _group_request(request, body, parse_search(plain, settings), engine, settings)
    strict_mode.check_groups(collection, group, request.query_params)
    result = await run_cpu(request, run_groups, collection, group)
    return ok(request, groups_response(result))


@router.post("/collections/{name}/points/recommend/groups")
async def recommend_points_groups(
    request: Request,
    body: RecommendGroupsRequest,
    collection: CollectionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    """Qdrant's legacy grouped recommend: the ``/points/recommend`` body's query by
    example, grouped as ``/points/query/groups`` groups a ``recommend`` query."""
    fields = body.model_dump(exclude=GROUP_FIELDS, exclude_none=True)
    plain = RecommendRequest.model_validate(fields | {"limit": body.limit})
    query = by_example_query(plain, settings, engine.get)
    group = _group_request(request, body, query, engine, settings)
    strict_mode.check_groups(collection, group, request.query_params)
    result = await run_cpu(request, run_groups, collection, group)
    return ok(request, groups_response(result))


@router.post("/collections/{name}/facet")
async def facet(
    request: Request, body: FacetRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    limit = check_limit("limit", body.limit, settings)
    flt = parse_filter(body.filter)
    wire = request.query_params
    strict_mode.check_read(collection, wire, flt=flt, limit=limit, exact=body.exact)
    counts = await run_cpu(request, collection.facet_counts, body.key, flt)
    hits = [{"value": hit.value, "count": hit.count} for hit in top_hits(counts, limit)]
    return ok(request, {"hits": hits})


class GroupFields(Protocol):
    """What a groups body adds to its query: the wire models', or the lean path's
    (``api/fast_search.py``) hand-checked fields."""

    @property
    def group_by(self) -> str: ...
    @property
    def group_size(self) -> int: ...
    @property
    def limit(self) -> int: ...


def group_request(body: GroupFields, query: Query, settings: Settings) -> GroupRequest:
    """The grouped search a body asks for, its limits checked (the full route and the
    lean path build it here alike)."""
    return GroupRequest(
        query=query,
        group_by=body.group_by,
        group_size=check_limit("group_size", body.group_size, settings),
        limit=check_limit("limit", body.limit, settings),
    )


def _group_request(
    request: Request,
    body: QueryGroupsRequest | SearchGroupsRequest | RecommendGroupsRequest,
    query: Query,
    engine: Engine,
    settings: Settings,
) -> GroupRequest:
    group = group_request(body, query, settings)  # limits first, then the lookup's checks
    return replace(group, lookup=_lookup(request, body.with_lookup, engine))


def _lookup(request: Request, raw: RawLookup, engine: Engine) -> Lookup | None:
    """``with_lookup``: a collection name, or one with the parts to return (payload by
    default, no vectors, as Qdrant). The caller must be able to read that collection
    too: the front door checked only the collection in the path."""
    if raw is None:
        return None
    if isinstance(raw, str):
        name, with_payload, with_vector = raw, None, None
    else:
        name, with_payload = raw.collection, raw.with_payload
        with_vector = raw.with_vectors if raw.with_vectors is not None else raw.with_vector
    grant: Grant = getattr(request.state, GRANT_STATE, FULL)
    refusal = grant.refusal(Need.READ, name)
    if refusal is not None:
        raise Forbidden(refusal.removeprefix("Forbidden: "))
    return Lookup(
        engine.get(name), payload_selector(with_payload, True), vector_selector(with_vector, False)
    )


def groups_response(result: GroupsResult) -> dict[str, Any]:
    """Qdrant's ``GroupsResult``; ``lookup`` only where a group has one, ``explain``
    (Quiver) only when it was asked for."""
    groups = []
    for group in result.groups:
        out: dict[str, Any] = {"id": group.id, "hits": render.scored_points(group.hits)}
        if group.lookup is not None:
            out["lookup"] = render.record(group.lookup)
        groups.append(out)
    answer: dict[str, Any] = {"groups": groups}
    if result.explain is not None:
        answer["explain"] = result.explain
    return answer
