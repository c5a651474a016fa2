"""The vector-heavy RPCs without the JSON round trip: search, query and upsert.

A batch of 100 GloVe queries is 5,000 floats; through the generic path (``bridge.py``)
each would become a Python float, then JSON, then a Python float again. Here a dense
vector goes from its packed wire bytes into numpy (``convert.dense``) and the engine is
called directly, the way the REST route calls it: every other field still goes through
the route's own parser (``parse_search`` / ``parse_query`` on the route's request
model), so validation stays in one place, and the engine checks the vectors (dimension,
NaN) exactly as it does for REST. A request this module does not cover (sparse or
multi-vectors, documents, named-vector mixes) returns None and takes the route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
from google.protobuf.message import Message
from qdrant_client import grpc

from server.api import render
from server.api.routes.common import point_ids
from server.api.routes.query import check_batch, parse_query, parse_search
from server.api.schemas import QueryRequest, SearchRequest
from server.engine import strict_mode
from server.engine.engine import Engine
from server.engine.filters import parse_filter
from server.engine.requests import Query, VectorColumns
from server.engine.results import QueryResult
from server.grpc import convert, replies
from server.grpc.convert import G2R
from server.grpc.rpc import Call, timeout_param
from server.settings import Settings

T = TypeVar("T")
PARSED_CACHE = 1024
"""Parsed request shapes kept per process (``_parsed``)."""


async def run_cpu(call: Call, func: Callable[..., T], *args: Any) -> T:
    """Blocking engine work in a worker thread, under REST's CPU limiter."""
    limiter: anyio.CapacityLimiter = call.app.state.cpu_limiter
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)


def _engine(call: Call) -> Engine:
    engine: Engine = call.app.state.engine
    return engine


def _settings(call: Call) -> Settings:
    settings: Settings = call.app.state.settings
    return settings


# ---- search ------------------------------------------------------------------------


def search_query(call: Call, request: grpc.SearchPoints) -> Query | None:
    """A dense ``SearchPoints`` as the engine query ``/points/search`` would build."""
    if request.HasField("sparse_indices"):
        return None
    vector: Any = np.asarray(request.vector, dtype=np.float32)  # the engine reads any rows
    rest = grpc.SearchPoints()
    rest.CopyFrom(request)
    rest.ClearField("vector")
    query = _cached(call, rest, _parse_search)
    using = request.vector_name if request.HasField("vector_name") else None
    return replace(query, vector=vector, using=using)


def _parse_search(call: Call, rest: grpc.SearchPoints) -> Query:
    body = SearchRequest.model_validate(convert.search(rest, vector=[]))
    return parse_search(body, _settings(call))


async def _search(
    call: Call, requests: Sequence[grpc.SearchPoints], wire: dict[str, str], batch: bool
) -> list[Any] | None:
    parsed = [search_query(call, request) for request in requests]
    results = await _run(call, requests, parsed, wire, batch)
    return None if results is None else [render.scored_points(r.points) for r in results]


async def _run(
    call: Call,
    requests: Sequence[grpc.SearchPoints] | Sequence[grpc.QueryPoints],
    parsed: list[Query | None],
    wire: dict[str, str],
    batch: bool,
) -> list[QueryResult] | None:
    """The one engine call of a fast-path batch, held to strict mode as the route is;
    None (the REST route answers) unless every request took the fast path."""
    queries = [query for query in parsed if query is not None]
    if not requests or len(queries) != len(parsed):
        return None
    collection = _engine(call).get(requests[0].collection_name)
    strict_mode.check_queries(collection, queries, wire, batch=batch)  # as the route does
    return await run_cpu(call, collection.query, queries)


async def search(call: Call, request: grpc.SearchPoints) -> Message | None:
    found = await _search(call, [request], timeout_param(request), batch=False)
    return None if found is None else replies.search(found[0], call.elapsed())


async def search_batch(call: Call, request: grpc.SearchBatchPoints) -> Message | None:
    check_batch(len(request.search_points), _settings(call))
    searches = list(request.search_points)
    for search in searches:  # the batch names the collection once, as the route does
        search.collection_name = request.collection_name
    found = await _search(call, searches, timeout_param(request), batch=True)
    return None if found is None else replies.search_batch(found, call.elapsed())


# ---- query -------------------------------------------------------------------------


def dense_nearest(request: grpc.QueryPoints) -> np.ndarray | None:
    """The dense vector of a ``nearest`` query, or None for any other kind of query."""
    if not request.HasField("query") or request.query.WhichOneof("variant") != "nearest":
        return None
    nearest = request.query.nearest
    if nearest.WhichOneof("variant") != "dense":
        return None
    return convert.dense(nearest.dense)


def query_query(call: Call, request: grpc.QueryPoints) -> Query | None:
    """A dense nearest ``QueryPoints`` as the engine query ``/points/query`` would build:
    the route's parser reads every field but the vector, which joins as numpy."""
    vector = dense_nearest(request)
    if vector is None:
        return None
    rest = grpc.QueryPoints()
    rest.CopyFrom(request)
    rest.ClearField("query")
    if rest.HasField("lookup_from") or len(rest.prefetch):  # read other points: no cache
        query = _parse_query(call, rest)
    else:
        query = _cached(call, rest, _parse_query)
    given: Any = vector  # the engine reads any rows of floats (``vectors.prepare_matrix``)
    return replace(query, vector=given)


def _parse_query(call: Call, rest: grpc.QueryPoints) -> Query:
    body = QueryRequest.model_validate(convert.query(rest))
    return parse_query(body, _settings(call), _engine(call).get)


def _cached(call: Call, rest: Message, parse: Callable[[Call, Any], Query]) -> Query:
    """The parse of a request without its vector, by its bytes: the 100 queries of a batch
    (and a client's repeated singles) differ only in the vector, and a ``Query`` is frozen."""
    cache: dict[bytes, Query] = call.app.state.grpc_parsed
    key = rest.SerializeToString(deterministic=True)
    query = cache.get(key)
    if query is None:
        query = parse(call, rest)
        if len(cache) >= PARSED_CACHE:
            cache.clear()
        cache[key] = query
    return query


async def _query(
    call: Call, requests: Sequence[grpc.QueryPoints], wire: dict[str, str], batch: bool
) -> list[Any] | None:
    parsed = [query_query(call, request) for request in requests]
    results = await _run(call, requests, parsed, wire, batch)
    return None if results is None else [render.query_response(r) for r in results]


async def query(call: Call, request: grpc.QueryPoints) -> Message | None:
    found = await _query(call, [request], timeout_param(request), batch=False)
    return None if found is None else replies.query(found[0], call.elapsed())


async def query_batch(call: Call, request: grpc.QueryBatchPoints) -> Message | None:
    check_batch(len(request.query_points), _settings(call))
    searches = list(request.query_points)
    for search in searches:
        search.collection_name = request.collection_name
    found = await _query(call, searches, timeout_param(request), batch=True)
    return None if found is None else replies.query_batch(found, call.elapsed())


# ---- upsert ------------------------------------------------------------------------


def dense_columns(points: Sequence[grpc.PointStruct]) -> VectorColumns | None:
    """The points' vectors as batch-form columns when every point has one unnamed dense
    vector, or the same named dense vectors; None for anything else."""
    columns: dict[str | None, list[Any]] = {}
    for i, point in enumerate(points):
        named = _dense_vectors(point.vectors)
        if named is None or (i and named.keys() != columns.keys()):
            return None
        for name, vector in named.items():
            columns.setdefault(name, []).append(vector)
    return VectorColumns(columns, len(points)) if points else None


def _dense_vectors(vectors: grpc.Vectors) -> dict[str | None, np.ndarray] | None:
    kind = vectors.WhichOneof("vectors_options")
    if kind == "vector":
        return {None: vector} if (vector := _dense_vector(vectors.vector)) is not None else None
    if kind != "vectors":
        return None
    out: dict[str | None, np.ndarray] = {}
    for name, value in vectors.vectors.vectors.items():
        vector = _dense_vector(value)
        if vector is None:
            return None
        out[name] = vector
    return out


def _dense_vector(vector: grpc.Vector) -> np.ndarray | None:
    kind = vector.WhichOneof("vector")
    if kind == "dense":
        return convert.dense(vector.dense)
    if kind is None and len(vector.data) and not vector.HasField("indices"):
        if vector.HasField("vectors_count"):  # a deprecated flattened multi-vector
            return None
        return np.asarray(vector.data, dtype=np.float32)
    return None


async def upsert(call: Call, request: grpc.UpsertPoints) -> Message | None:
    """What ``PUT /points`` does with the batch form, with the vectors as numpy rows."""
    vectors = dense_columns(request.points)
    if vectors is None:
        return None
    ids = point_ids([convert.point_id(point.id) for point in request.points], _settings(call))
    payloads = [_payload(point) for point in request.points]
    update_filter = parse_filter(convert.optional(request, "update_filter", G2R.convert_filter))
    mode = convert.update_mode(request) or "upsert"
    collection = _engine(call).get(request.collection_name)

    def write() -> int:
        strict_mode.check_upsert(collection, vectors)  # as the route does
        return collection.upsert(
            ids, vectors, payloads, update_mode=mode, update_filter=update_filter
        )

    op_id = await run_cpu(call, write)
    status = "completed" if request.HasField("wait") and request.wait else "acknowledged"
    result = {"operation_id": op_id, "status": status}
    return grpc.PointsOperationResponse(result=replies.update_result(result), time=call.elapsed())


def _payload(point: grpc.PointStruct) -> dict[str, Any] | None:
    if not point.payload:
        return None
    payload: dict[str, Any] = G2R.convert_payload(point.payload)
    return payload
