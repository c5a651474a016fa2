"""Search: the universal ``/points/query`` and the legacy ``/points/search``, single and batch.

Each request is parsed into an engine ``Query`` here (wire shapes only, no engine
work); the batch then goes to the collection in one call, off the event loop, which
validates every vector before any search runs (so a bad request fails the whole batch
cleanly) and answers unfiltered queries together in one native kernel call.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api import render
from server.api.deps import CollectionDep, EngineDep, SettingsDep, run_cpu
from server.api.envelope import ok
from server.api.example_wire import Resolve, lookup, parse_example_query
from server.api.inference import embed_query_documents
from server.api.query_wire import parse_combine, parse_mmr, prefetch_items
from server.api.routes.common import (
    check_limit,
    payload_selector,
    search_params,
    vector_selector,
)
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    Prefetch,
    QueryRequest,
    QueryRequestBatch,
    SearchMatrixRequest,
    SearchRequest,
    SearchRequestBatch,
)
from server.engine import strict_mode
from server.engine.examples import Recommend
from server.engine.filters import parse_filter
from server.engine.formula import FormulaQuery
from server.engine.fusion import Fusion
from server.engine.matrix import MatrixRequest, distance_matrix
from server.engine.matrix import check as check_matrix
from server.engine.ordering import OrderBy, parse_order_by
from server.engine.point_ids import PointId, parse_point_id
from server.engine.requests import Mmr, Query
from server.engine.sparse_vector import SparseVector, is_sparse_object, parse_sparse
from server.errors import BadRequest
from server.settings import Settings

router = APIRouter(tags=["search"], route_class=OrjsonRoute)


@router.post("/collections/{name}/points/query")
async def query_points(
    request: Request,
    body: QueryRequest,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    await embed_query_documents(request, [body], collection)
    queries = [parse_query(body, settings, engine.get)]
    strict_mode.check_queries(collection, queries, request.query_params)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.query_response(results[0]))


@router.post("/collections/{name}/points/query/batch")
async def query_points_batch(
    request: Request,
    body: QueryRequestBatch,
    collection: CollectionDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> Response:
    check_batch(len(body.searches), settings)
    await embed_query_documents(request, body.searches, collection)
    queries = [parse_query(search, settings, engine.get) for search in body.searches]
    strict_mode.check_queries(collection, queries, request.query_params, batch=True)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.query_responses(results))


@router.post("/collections/{name}/points/search")
async def search_points(
    request: Request, body: SearchRequest, collection: CollectionDep, settings: SettingsDep
) -> Response:
    queries = [parse_search(body, settings)]
    strict_mode.check_queries(collection, queries, request.query_params)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.scored_points(results[0].points))


@router.post("/collections/{name}/points/search/batch")
async def search_points_batch(
    request: Request, body: SearchRequestBatch, collection: CollectionDep, settings: SettingsDep
) -> Response:
    check_batch(len(body.searches), settings)
    queries = [parse_search(search, settings) for search in body.searches]
    strict_mode.check_queries(collection, queries, request.query_params, batch=True)
    results = await run_cpu(request, collection.query, queries)
    return ok(request, render.scored_point_lists([result.points for result in results]))


@router.post("/collections/{name}/points/search/matrix/pairs")
async def matrix_pairs(
    request: Request, body: SearchMatrixRequest, collection: CollectionDep
) -> Response:
    matrix_request = _matrix(body)
    strict_mode.check_matrix(collection, matrix_request, request.query_params)
    matrix = await run_cpu(request, distance_matrix, collection, matrix_request)
    return ok(request, render.matrix_pairs(matrix))


@router.post("/collections/{name}/points/search/matrix/offsets")
async def matrix_offsets(
    request: Request, body: SearchMatrixRequest, collection: CollectionDep
) -> Response:
    matrix_request = _matrix(body)
    strict_mode.check_matrix(collection, matrix_request, request.query_params)
    matrix = await run_cpu(request, distance_matrix, collection, matrix_request)
    return ok(request, render.matrix_offsets(matrix))


def _matrix(body: SearchMatrixRequest) -> MatrixRequest:
    request = MatrixRequest(
        sample=10 if body.sample is None else body.sample,
        limit=3 if body.limit is None else body.limit,
        filter=parse_filter(body.filter),
        using=body.using,
    )
    check_matrix(request)
    return request


def parse_query(request: QueryRequest, settings: Settings, resolve: Resolve) -> Query:
    """Qdrant's ``QueryRequest`` as an engine ``Query``: a literal vector, a point id
    (search by that point's vector), no query at all (page through points), or a
    multi-stage tree of prefetches fused, scored or re-ranked (``engine/multistage.py``),
    or examples to recommend from or discover with (``engine/recommend.py``)."""
    fields = _stage_fields(request, settings, 0, resolve)
    # the top level's own fields, checked after the stage's as before; one Query built
    # (not a stage then a dataclasses.replace of it: ~10 us a query, 1 ms a batch of 100)
    fields["offset"] = check_limit("offset", request.offset or 0, settings)
    fields["with_payload"] = payload_selector(request.with_payload, False)
    fields["with_vector"] = vector_selector(request.with_vector, False)
    fields["force"] = request.strategy
    fields["explain"] = bool(request.explain)
    return Query(**fields)


def _stage(
    request: QueryRequest | Prefetch, settings: Settings, depth: int, resolve: Resolve
) -> Query:
    """One prefetch stage of a query."""
    return Query(**_stage_fields(request, settings, depth, resolve))


def _stage_fields(
    request: QueryRequest | Prefetch, settings: Settings, depth: int, resolve: Resolve
) -> dict[str, Any]:
    """The ``Query`` fields of one stage (the query itself at depth 0, else a prefetch)."""
    source = lookup(request.lookup_from, resolve)
    examples = None
    if isinstance(request.query, dict) and not is_sparse_object(request.query):
        examples = parse_example_query(request.query)
    order_by, sample = _without_vector(request.query) if examples is None else (None, False)
    vector, point_id, combine, mmr = (
        _operand(request.query, settings)
        if examples is None and order_by is None and not sample
        else (None, None, None, None)
    )
    if source is not None and point_id is not None:
        # a point of another collection: its vector, as a one-example recommendation
        examples, point_id = Recommend((point_id,), (), "average_vector"), None
    prefetch = prefetch_items(request.prefetch, depth + 1)
    return {
        "order_by": order_by,
        "sample": sample,
        "vector": vector,
        "point_id": point_id,
        "using": request.using,
        "limit": check_limit("limit", 10 if request.limit is None else request.limit, settings),
        "filter": parse_filter(request.filter),
        "score_threshold": request.score_threshold,
        "params": search_params(request.params),
        "prefetch": tuple(_stage(item, settings, depth + 1, resolve) for item in prefetch),
        "combine": combine,
        "mmr": mmr,
        "examples": examples,
        "lookup": source,
    }


def _without_vector(query: Any) -> tuple[OrderBy | None, bool]:
    """``{"order_by": key or {...}}`` or ``{"sample": "random"}``: queries that order
    or sample points instead of searching by a vector."""
    if not isinstance(query, dict) or not ({"order_by", "sample"} & set(query)):
        return None, False
    if len(query) != 1:
        raise BadRequest(f"Wrong input: unexpected field(s) {sorted(query)} in the query")
    if "order_by" in query:
        return parse_order_by(query["order_by"]), False
    if query["sample"] != "random":
        raise BadRequest(f"Wrong input: `sample` must be 'random', got {query['sample']!r}")
    return None, True


def _operand(
    query: Any, settings: Settings
) -> tuple[
    list[Any] | SparseVector | None, PointId | None, Fusion | FormulaQuery | None, Mmr | None
]:
    """What a stage's ``query`` asks: a vector (dense, multi or sparse) or a point id
    to search by (read by ``nearest_operand``, the one parser of nearest operands), a
    way to combine the prefetched candidates, or a nearest query re-ranked by MMR."""
    mmr = None
    if isinstance(query, dict) and not is_sparse_object(query):
        combine = parse_combine(query)
        if combine is not None:
            return None, None, combine, None
        if "nearest" in query and query.get("mmr") is not None:
            mmr = parse_mmr(query["mmr"], settings.max_limit)
            query = {key: value for key, value in query.items() if key != "mmr"}
        query = _nearest_of(query)
    if query is None:
        return None, None, None, None
    vector, point_id = nearest_operand(query)
    return vector, point_id, None, mmr


def nearest_operand(raw: Any) -> tuple[list[Any] | SparseVector | None, PointId | None]:
    """A raw nearest-neighbour operand -> (query vector, point id), one of them set: a
    list (dense, or a multi-vector), a sparse ``{"indices", "values"}`` object
    (validated here), or a point id (search by that point's stored vector)."""
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return None, parse_point_id(raw)
    if isinstance(raw, list):
        return raw, None
    if is_sparse_object(raw):
        return parse_sparse(raw, "query sparse vector"), None
    raise BadRequest(f"Wrong input: cannot read `query` of type {type(raw).__name__}")


def _nearest_of(query: dict[str, Any]) -> Any:
    if "nearest" in query:
        if query.get("mmr") is not None:
            raise BadRequest("Wrong input: `mmr` is read with its nearest query, not here")
        return query["nearest"]
    raise BadRequest(f"Wrong input: unknown query object with keys {sorted(query)}")


def parse_search(request: SearchRequest, settings: Settings) -> Query:
    """Qdrant's legacy ``SearchRequest``: always a literal vector, maybe named."""
    raw: Any = request.vector
    using: str | None = None
    if isinstance(raw, dict):
        using, raw = raw.get("name"), raw.get("vector")
        if isinstance(using, str) and is_sparse_object(raw):
            raw = parse_sparse(raw, "query sparse vector")
        elif not isinstance(using, str) or not isinstance(raw, list):
            raise BadRequest(
                'Wrong input: a named vector is {"name": str, "vector": [numbers] or '
                '{"indices": [...], "values": [...]}}'
            )
    return Query(
        vector=raw,
        using=using,
        limit=check_limit("limit", request.limit, settings),
        offset=check_limit("offset", request.offset or 0, settings),
        filter=parse_filter(request.filter),
        score_threshold=request.score_threshold,
        with_payload=payload_selector(request.with_payload, False),
        with_vector=vector_selector(request.with_vector, False),
        params=search_params(request.params),
    )


def check_batch(count: int, settings: Settings) -> None:
    if count > settings.max_search_batch:
        raise BadRequest(
            f"Wrong input: {count} searches in one batch exceeds the limit of "
            f"{settings.max_search_batch}"
        )
