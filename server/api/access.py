"""The ONE table of routes the front door knows: what body each route takes.

The middleware matches a request against the app's routes *before* they run, looks the
route template up here and refuses a body of the wrong media type with 415. A test asserts
that every route of the app has exactly one row, so a new route cannot slip past.

Why the body type matters: a web page may POST ``text/plain``, ``multipart/form-data`` or
``application/x-www-form-urlencoded`` to any address without a CORS preflight. Before this
table every body was read as JSON whatever its type, so any page a user opened could delete
points or replace a collection on a Quiver bound to localhost. ``application/json`` cannot
be sent cross-site without a preflight, which Quiver only answers for configured origins.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.routing import compile_path

from server.engine.bulk import ARROW_TYPES, NDJSON_TYPES
from server.errors import UnsupportedMediaType


class Body(enum.Enum):
    """What a route reads from its body."""

    NONE = "none"
    """No body is read (GET, DELETE): its content type does not matter."""
    JSON = "json"
    """``application/json`` (any ``charset``), or nothing at all when the body is empty."""
    BULK = "bulk"
    """An NDJSON or Arrow IPC stream (``engine/bulk.py``)."""
    MULTIPART = "multipart"
    """``multipart/form-data`` with a ``snapshot`` file field."""


JSON_TYPE = "application/json"
MEDIA_TYPES: dict[Body, tuple[str, ...]] = {
    Body.JSON: (JSON_TYPE,),
    Body.BULK: (*NDJSON_TYPES, *ARROW_TYPES),
    Body.MULTIPART: ("multipart/form-data",),
}


@dataclass(frozen=True, slots=True)
class Rule:
    body: Body


def _rule(body: Body = Body.NONE) -> Rule:
    return Rule(body)


C = "/collections/{name}"
ROUTES: dict[tuple[str, str], Rule] = {
    # service
    ("GET", "/"): _rule(),
    ("GET", "/healthz"): _rule(),
    ("GET", "/livez"): _rule(),
    ("GET", "/readyz"): _rule(),
    ("GET", "/metrics"): _rule(),
    ("GET", "/openapi.json"): _rule(),
    ("GET", "/docs"): _rule(),
    ("GET", "/docs/oauth2-redirect"): _rule(),
    ("GET", "/redoc"): _rule(),
    # collections
    ("GET", "/collections"): _rule(),
    ("GET", C): _rule(),
    ("GET", f"{C}/exists"): _rule(),
    ("PUT", C): _rule(Body.JSON),
    ("PATCH", C): _rule(Body.JSON),
    ("DELETE", C): _rule(),
    ("PUT", f"{C}/index"): _rule(Body.JSON),
    ("DELETE", f"{C}/index/{{field_name:path}}"): _rule(),
    # points
    ("PUT", f"{C}/points"): _rule(Body.JSON),
    ("POST", f"{C}/points"): _rule(Body.JSON),
    ("GET", f"{C}/points/{{point_id}}"): _rule(),
    ("POST", f"{C}/points/delete"): _rule(Body.JSON),
    ("POST", f"{C}/points/payload"): _rule(Body.JSON),
    ("PUT", f"{C}/points/payload"): _rule(Body.JSON),
    ("POST", f"{C}/points/payload/delete"): _rule(Body.JSON),
    ("POST", f"{C}/points/payload/clear"): _rule(Body.JSON),
    ("POST", f"{C}/points/scroll"): _rule(Body.JSON),
    ("POST", f"{C}/points/count"): _rule(Body.JSON),
    ("POST", f"{C}/points/bulk"): _rule(Body.BULK),
    # search
    ("POST", f"{C}/points/query"): _rule(Body.JSON),
    ("POST", f"{C}/points/query/batch"): _rule(Body.JSON),
    ("POST", f"{C}/points/search"): _rule(Body.JSON),
    ("POST", f"{C}/points/search/batch"): _rule(Body.JSON),
    # jobs and segments (Quiver extensions)
    ("GET", f"{C}/jobs"): _rule(),
    ("GET", f"{C}/segments"): _rule(),
    ("GET", "/jobs/{job_id}"): _rule(),
    ("POST", "/jobs/{job_id}/cancel"): _rule(Body.JSON),
    # LeanVec training queries (Quiver extension)
    ("POST", f"{C}/leanvec/training-queries"): _rule(Body.JSON),
    ("GET", f"{C}/leanvec/training-queries"): _rule(),
    # snapshots
    ("POST", f"{C}/snapshots"): _rule(Body.JSON),
    ("GET", f"{C}/snapshots"): _rule(),
    ("PUT", f"{C}/snapshots/recover"): _rule(Body.JSON),
    ("POST", f"{C}/snapshots/upload"): _rule(Body.MULTIPART),
    ("GET", f"{C}/snapshots/{{snapshot_name}}"): _rule(),
    ("DELETE", f"{C}/snapshots/{{snapshot_name}}"): _rule(),
}


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route a request will reach, found before it runs."""

    method: str
    template: str
    path_params: Mapping[str, str]
    rule: Rule


@dataclass(frozen=True, slots=True)
class _Pattern:
    method: str
    template: str
    regex: re.Pattern[str]
    rule: Rule


def _compile() -> list[_Pattern]:
    return [
        _Pattern(method, template, compile_path(template)[0], rule)
        for (method, template), rule in ROUTES.items()
    ]


_PATTERNS = _compile()


def match_route(method: str, path: str) -> RouteMatch | None:
    """The table row of the route the router will run, or None when it answers 404 / 405.
    No two rows of one method match the same path, so the first match is the router's."""
    method = "GET" if method == "HEAD" else method
    for pattern in _PATTERNS:
        if pattern.method != method:
            continue
        found = pattern.regex.match(path)
        if found is not None:
            return RouteMatch(method, pattern.template, found.groupdict(), pattern.rule)
    return None


def documented_routes() -> set[tuple[str, str]]:
    """The table's keys as OpenAPI writes them (no ``:path`` convertor)."""
    return {(method, compile_path(template)[1]) for method, template in ROUTES}


def media_type_error(method: str, headers: Mapping[bytes, bytes], rule: Rule) -> str | None:
    """Why this request's body type is refused (415), or None when it is acceptable."""
    if rule.body is Body.NONE or method not in ("POST", "PUT", "PATCH"):
        return None
    declared = headers.get(b"content-type")
    kind = declared.split(b";")[0].strip().lower().decode("latin-1") if declared else ""
    if not kind and rule.body is Body.JSON and _empty_body(headers):
        return None  # qdrant-client POSTs an empty body with no type (create snapshot)
    accepted = MEDIA_TYPES[rule.body]
    if kind in accepted:
        return None
    return UnsupportedMediaType(kind or "(none)", list(accepted)).message


def _empty_body(headers: Mapping[bytes, bytes]) -> bool:
    if b"transfer-encoding" in headers:
        return False
    return headers.get(b"content-length", b"0").strip() == b"0"
