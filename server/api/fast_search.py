"""A lean path for the hottest requests: one plain vector to ``/points/query`` or
``/points/search``, a batch of them (``/points/query/batch``, ``/points/search/batch``),
or one grouped by a payload key (``/points/query/groups``, ``/points/search/groups``).

Profiled under ``wrk`` (GloVe-50 390k, HNSW ef 96), a single query spent more of the
event loop's time in FastAPI's router, dependency solving and pydantic validation than
in anything Quiver does. This pure-ASGI layer sits just inside ``QuiverMiddleware`` (so
authentication, media type and body limits have already run) and answers the common
shape itself: a JSON object holding only keys whose values are of the types the wire
models take as they are (a list for the vector, ints, bools, a filter object). Those
are checked by hand, turned into the same wire models without re-validation
(``lean_layer.Construct``: what ``model_construct`` makes), and handed to the routes'
own parsers, strict-mode check, engine call and renderer, so the answer is the one the
full route would give. Each lean route (``LEAN``) is two steps: its hand shape check,
and the preparation of its engine call (parse, strict-mode check) with the renderer of
that call's result; reading the body, the worker threads and the errors are shared with
``fast_write.py`` (``lean_layer.py``).

Anything else (another shape, a body over the limit, JSON that does not parse) is
replayed, byte for byte, to the full FastAPI route, which gives its usual answers and
errors. An error raised after the shape check goes through the app's own exception
table (``api/errors.py``), exactly as the route's would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import annotated_types
import orjson
from pydantic import BaseModel
from starlette.datastructures import QueryParams

from server.api import render
from server.api.envelope import to_json
from server.api.groups_wire import GROUP_FIELDS, QueryGroupsRequest, SearchGroupsRequest
from server.api.lean_layer import Construct, LeanLayer, Prepared, RouteLabel, elapsed
from server.api.middleware import Scope
from server.api.routes.groups import group_request, groups_response
from server.api.routes.query import check_batch, parse_query, parse_search
from server.api.schemas import QueryRequest, SearchParams, SearchRequest
from server.engine import strict_mode
from server.engine.groups import run_groups
from server.engine.knobs import MAX_HNSW_EF
from server.engine.protocols import CollectionHandle
from server.engine.requests import AlikeQueries, Query
from server.engine.results import QueryResult
from server.settings import Settings

QUERY_KEYS = frozenset(
    {"query", "using", "limit", "offset", "params", "filter", "score_threshold"}
    | {"with_payload", "with_vector"}
)
"""The keys of a plain ``QueryRequest``; any other key (``prefetch``, ``lookup_from``, a
Quiver extension, an unknown field) takes the full route."""

SEARCH_KEYS = frozenset(
    {"vector", "limit", "offset", "params", "filter", "score_threshold"}
    | {"with_payload", "with_vector"}
)
PARAMS_KEYS = frozenset({"hnsw_ef", "exact"})
BATCH_KEYS = frozenset({"searches"})
NO_QUERY_PARAMS = QueryParams()
"""A lean request has no query string (``_kind``); strict mode reads none."""
_query_model = Construct(QueryRequest)
_search_model = Construct(SearchRequest)
_params_model = Construct(SearchParams)


class FastSearch(LeanLayer[tuple[str, str]]):
    """Answers plain single-vector queries and searches, grouped or not, without
    FastAPI's request machinery; everything else goes on to ``app`` unchanged."""

    thread_name = "quiver-search"

    def match(self, scope: Scope) -> tuple[str, str] | None:
        return _kind(scope)

    def shape(self, match: tuple[str, str], raw: dict[str, Any]) -> Any:
        return LEAN[match[0]].shape(raw)

    def label(self, match: tuple[str, str]) -> RouteLabel:
        return ROUTES[match[0]]

    def inline(self, match: tuple[str, str], shape: Any) -> bool:
        """A single search, filtered or not, unless it asks for an exact scan. A filter's
        cost has no bound here (an unindexed key is scanned); the lane's slow guard
        (``direct_lane.INLINE_SLOW_S``) sends work to the threads for a while after
        one ran long. Filtered queries kept off the loop would make a mixed stream
        hop threads again (``direct_lane.LaneCall._inlined``)."""
        if match[0] not in ("query", "search"):
            return False
        return shape.params is None or not shape.params.exact

    def prepare(self, scope: Scope, match: tuple[str, str], shape: Any) -> Prepared:
        """Parse and check as the full route does; render as it does."""
        state = scope["app"].state
        collection = state.engine.get(match[1])  # first, as the route's dependency is
        work, rendered = LEAN[match[0]].prepare(shape, state.settings, collection)

        def render(result: Any) -> bytes:
            envelope = {"result": rendered(result), "status": "ok", "time": elapsed(scope)}
            return to_json(envelope)

        return work, render


Job = tuple[Callable[[], Any], Callable[[Any], Any]]
"""A request's blocking engine call, and the renderer of what it returns."""


@dataclass(frozen=True, slots=True)
class LeanRoute:
    """One route the lean path answers: its hand shape check (the wire model(s) of a
    plain body, or None) and the preparation of its engine call."""

    shape: Callable[[dict[str, Any]], Any]
    prepare: Callable[[Any, Settings, CollectionHandle], Job]


@dataclass(frozen=True, slots=True)
class PlainKind:
    """How a plain body of a route is parsed (as its full route parses it) and how one
    engine result is rendered; the single route and its ``/batch`` share both."""

    parse: Callable[[Any, Settings], Query]
    render: Callable[[QueryResult], Any]
    render_many: Callable[[list[QueryResult]], list[Any]]

    def one(self, shape: Any, settings: Settings, collection: CollectionHandle) -> Job:
        query = self.parse(shape, settings)
        queries: Sequence[Query] = [query]
        if type(query.vector) is list:  # a batch of one: its hits come back as columns
            queries = AlikeQueries(query, [query.vector])
        strict_mode.check_queries(collection, queries, NO_QUERY_PARAMS)  # none: see _kind
        return partial(collection.query, queries), lambda results: self.render(results[0])

    def many(
        self, shapes: list[Any] | Alike, settings: Settings, collection: CollectionHandle
    ) -> Job:
        """A batch as ``routes/query.py`` answers it: its limit, then one engine call.
        Items alike but for their vector are parsed once (``AlikeQueries``): the
        others are the first query with their own vector, what parsing each would give."""
        queries: Sequence[Query]
        if isinstance(shapes, Alike):
            check_batch(len(shapes.vectors), settings)
            queries = AlikeQueries(self.parse(shapes.first, settings), shapes.vectors)
        else:
            check_batch(len(shapes), settings)
            queries = [self.parse(shape, settings) for shape in shapes]
        strict_mode.check_queries(collection, queries, NO_QUERY_PARAMS, batch=True)
        return partial(collection.query, queries), self.render_many


def _parse_plain_query(shape: QueryRequest, settings: Settings) -> Query:
    return parse_query(shape, settings, _no_lookup)


def _search_points(result: QueryResult) -> Any:
    return render.scored_points(result.points)


def _search_point_lists(results: list[QueryResult]) -> list[Any]:
    return render.scored_point_lists([result.points for result in results])


QUERY = PlainKind(_parse_plain_query, render.query_response, render.query_responses)
SEARCH = PlainKind(parse_search, _search_points, _search_point_lists)


def _grouped(
    shape: tuple[QueryRequest | SearchRequest, Grouping],
    settings: Settings,
    collection: CollectionHandle,
) -> Job:
    """``/points/query/groups`` and ``/points/search/groups`` as ``routes/groups.py``
    answers them (no ``with_lookup``: that body takes the full route)."""
    plain, grouping = shape
    kind = QUERY if isinstance(plain, QueryRequest) else SEARCH
    group = group_request(grouping, kind.parse(plain, settings), settings)
    strict_mode.check_groups(collection, group, NO_QUERY_PARAMS)
    return partial(run_groups, collection, group), groups_response


def _kind(scope: Scope) -> tuple[str, str] | None:
    """``(the route's key in LEAN, collection name)`` for a POST to a lean route. A
    request with query parameters (``consistency``, ``timeout``) takes the full route,
    which is where those are read."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
        return None
    parts = scope["path"].split("/")
    if len(parts) not in (5, 6) or parts[1] != "collections" or parts[3] != "points":
        return None
    kind = "/".join(parts[4:])
    return (kind, parts[2]) if parts[2] and kind in LEAN else None


def _query_request(raw: dict[str, Any]) -> QueryRequest | None:
    if not raw.keys() <= QUERY_KEYS or not _query_vector(raw.get("query")):
        return None
    if not (_opt_str(raw.get("using")) and _common_fields(raw)):
        return None
    return _query_model(**_with_params(raw))


def _search_request(raw: dict[str, Any]) -> SearchRequest | None:
    if not raw.keys() <= SEARCH_KEYS or type(raw.get("limit")) is not int:
        return None
    if not (_search_vector(raw.get("vector")) and _common_fields(raw)):
        return None
    return _search_model(**_with_params(raw))


@dataclass(frozen=True, slots=True)
class Alike:
    """A batch whose items differ in their vector only, as a client's loop over its
    queries sends them: the first item's wire model and every item's vector. Checking
    and parsing each item cost ~13 µs of the ~40 µs of Python a query of a batch of 100
    took around faiss; the others are checked for their vector and copied."""

    first: BaseModel
    vectors: list[list[Any]]


def _batch_of(
    plain: Callable[[dict[str, Any]], BaseModel | None],
    vector_key: str,
    plain_vector: Callable[[Any], bool],
) -> Callable[[dict[str, Any]], list[Any] | Alike | None]:
    """The hand check of a batch body: only ``searches``, a non-empty list whose every
    item is a plain body of its single route (one item of another shape sends the whole
    batch to the full route); its items' vectors are under ``vector_key``."""

    def shape(raw: dict[str, Any]) -> list[Any] | Alike | None:
        searches = raw.get("searches")
        if raw.keys() != BATCH_KEYS or type(searches) is not list or not searches:
            return None
        if _alike(searches, vector_key):
            first = plain(searches[0])  # checks the fields every item has
            vectors = [item[vector_key] for item in searches]
            if first is None or not all(map(plain_vector, vectors)):
                return None
            return Alike(first, vectors)
        shapes = []
        for item in searches:
            one = plain(item) if type(item) is dict else None
            if one is None:
                return None
            shapes.append(one)
        return shapes

    return shape


def _alike(searches: list[Any], vector_key: str) -> bool:
    """Whether the batch's items are objects with the same keys, a vector among them,
    and the same value for every other key: the same JSON, not merely equal in Python
    (``1 == 1.0 == True``, which the hand checks tell apart)."""
    first = searches[0]
    if len(searches) < 2 or type(first) is not dict or vector_key not in first:
        return False
    rest = [(key, value) for key, value in first.items() if key != vector_key]
    keys = first.keys()
    for item in searches[1:]:
        if type(item) is not dict or item.keys() != keys:
            return False
        for key, value in rest:
            if not _same_json(item[key], value):
                return False
    return True


def _same_json(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) in (dict, list):  # the same keys in the same order, the same types inside
        return orjson.dumps(a) == orjson.dumps(b)
    return bool(a == b)


def _query_vector(value: Any) -> bool:
    """A plain query's vector, as ``_query_request`` takes it (its numbers are checked
    with the batch's matrix, as the full route checks them)."""
    return type(value) is list


def _search_vector(value: Any) -> bool:
    """A plain search's vector, as ``_search_request`` takes it."""
    return type(value) is list and set(map(type, value)) <= {int, float}


@dataclass(frozen=True, slots=True)
class Grouping:
    """A groups body's own fields, checked by hand (``routes/groups.py::GroupFields``)."""

    group_by: str
    group_size: int
    limit: int


def _query_groups_request(raw: dict[str, Any]) -> tuple[QueryRequest, Grouping] | None:
    """The plain query of a groups body (its ``limit`` counts groups) and its grouping."""
    grouping = _grouping(raw, QueryGroupsRequest)
    plain = None if grouping is None else _query_request(_without(raw, GROUP_FIELDS))
    return None if plain is None or grouping is None else (plain, grouping)


def _search_groups_request(raw: dict[str, Any]) -> tuple[SearchRequest, Grouping] | None:
    """The plain search of a groups body (searching ``limit`` points, as the full route
    does) and its grouping."""
    grouping = _grouping(raw, SearchGroupsRequest)
    plain = None if grouping is None else _search_request(_without(raw, GROUP_FIELDS - {"limit"}))
    return None if plain is None or grouping is None else (plain, grouping)


def _grouping(raw: dict[str, Any], model: type[BaseModel]) -> Grouping | None:
    """The grouping fields of a body without ``with_lookup`` or ``offset`` (a key the
    groups models do not have); the defaults are the wire model's own."""
    if "offset" in raw or "with_lookup" in raw:
        return None
    fields = model.model_fields
    group_by = raw.get("group_by")
    size = raw.get("group_size", fields["group_size"].default)
    limit = raw.get("limit", fields["limit"].default)
    if type(group_by) is not str or not group_by:
        return None
    if type(size) is not int or type(limit) is not int:  # absent and required, or null
        return None
    if not (_opt_int(size, 2**63, _least(model, "group_size"))
            and _opt_int(limit, 2**63, _least(model, "limit"))):  # fmt: skip
        return None
    return Grouping(group_by, size, limit)


def _without(raw: dict[str, Any], keys: set[str] | frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in keys}


def _least(model: type[BaseModel], field: str) -> int:
    """The wire model's own lower bound of an integer field (its ``ge``), so the hand
    check and the model never disagree on what is valid."""
    metadata = model.model_fields[field].metadata
    bounds = [int(str(m.ge)) for m in metadata if isinstance(m, annotated_types.Ge)]
    return max(bounds, default=0)


LEAST_LIMIT = max(_least(QueryRequest, "limit"), _least(SearchRequest, "limit"))
LEAST_OFFSET = max(_least(QueryRequest, "offset"), _least(SearchRequest, "offset"))


def _common_fields(raw: dict[str, Any]) -> bool:
    """The fields both shapes share, each of a type its wire model keeps as it is."""
    return (
        _opt_int(raw.get("limit"), 2**63, LEAST_LIMIT)
        and _opt_int(raw.get("offset"), 2**63, LEAST_OFFSET)
        and _opt_number(raw.get("score_threshold"))
        and _opt_bool(raw.get("with_payload"))
        and _opt_bool(raw.get("with_vector"))
        and (raw.get("filter") is None or type(raw["filter"]) is dict)
        and _plain_params(raw.get("params"))
    )


def _plain_params(params: Any) -> bool:
    if params is None:
        return True
    return (
        type(params) is dict
        and params.keys() <= PARAMS_KEYS
        and _opt_int(params.get("hnsw_ef"), MAX_HNSW_EF)
        and _opt_bool(params.get("exact"))
    )


def _with_params(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields as the wire model holds them once validated."""
    params = raw.get("params")
    if params is not None:
        raw["params"] = _params_model(**params)
    if raw.get("score_threshold") is not None:
        raw["score_threshold"] = float(raw["score_threshold"])
    return raw


def _opt_int(value: Any, most: int, least: int = 0) -> bool:
    return value is None or (type(value) is int and least <= value <= most)


def _opt_number(value: Any) -> bool:
    return value is None or type(value) in (int, float)


def _opt_bool(value: Any) -> bool:
    return value is None or type(value) is bool


def _opt_str(value: Any) -> bool:
    return value is None or type(value) is str


def _no_lookup(name: str) -> Any:  # pragma: no cover - a plain query has no lookup_from
    raise AssertionError("a plain query reads no other collection")


LEAN: dict[str, LeanRoute] = {
    "query": LeanRoute(_query_request, QUERY.one),
    "search": LeanRoute(_search_request, SEARCH.one),
    "query/batch": LeanRoute(_batch_of(_query_request, "query", _query_vector), QUERY.many),
    "search/batch": LeanRoute(_batch_of(_search_request, "vector", _search_vector), SEARCH.many),
    "query/groups": LeanRoute(_query_groups_request, _grouped),
    "search/groups": LeanRoute(_search_groups_request, _grouped),
}
"""The lean routes, by their path after ``/collections/{name}/points/``."""

ROUTES = {kind: RouteLabel(f"/collections/{{name}}/points/{kind}") for kind in LEAN}
