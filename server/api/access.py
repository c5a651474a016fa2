"""The ONE table of routes the front door knows: who may call each, and what body it takes.

The middleware matches a request against this table *before* any route runs, checks the
caller's grant (``api/credentials.py``) against the route's need (401 without valid
credentials, 403 when they do not reach far enough) and refuses a body of the wrong media
type with 415. A test asserts that every route of the app has exactly one row, so a new
route cannot slip past.

Needs follow Qdrant's JWT RBAC table (``lib/storage/src/rbac``): a global grant is ``r``
(read everything) or ``m`` (manage: everything); a collection grant is ``r`` or ``rw`` on
named collections and never manages. Reading a collection needs ``r`` on it, writing its
points, payload indexes or snapshots ``rw``; creating, changing or deleting a collection
and recovering a snapshot (which replaces a collection) need global ``m``; metrics and job
lookups by id (which name no collection) need a global grant. Listing collections needs
any valid credentials and shows a collection-scoped caller only its own collections (so
does listing jobs). The dashboard's static shell is open: it holds no data, and each of its
data calls goes through this table like any other client's.

Why the body type matters: a web page may POST ``text/plain``, ``multipart/form-data`` or
``application/x-www-form-urlencoded`` to any address without a CORS preflight. Before this
table every body was read as JSON whatever its type, so any page a user opened could delete
points or replace a collection on a Quiver bound to localhost. ``application/json`` cannot
be sent cross-site without a preflight, which Quiver only answers for configured origins.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.routing import compile_path

from server.api.ingest import ARROW_TYPES, NDJSON_TYPES
from server.errors import UnsupportedMediaType


class Body(enum.Enum):
    """What a route reads from its body."""

    NONE = "none"
    """No body is read (GET, DELETE): its content type does not matter."""
    JSON = "json"
    """``application/json`` (any ``charset``), or nothing at all when the body is empty."""
    BULK = "bulk"
    """An NDJSON or Arrow IPC stream (``api/ingest.py``)."""
    MULTIPART = "multipart"
    """``multipart/form-data`` with a ``snapshot`` file field."""


JSON_TYPE = "application/json"
MEDIA_TYPES: dict[Body, tuple[str, ...]] = {
    Body.JSON: (JSON_TYPE,),
    Body.BULK: (*NDJSON_TYPES, *ARROW_TYPES),
    Body.MULTIPART: ("multipart/form-data",),
}


class Need(enum.Enum):
    """What a caller must hold to run a route."""

    OPEN = "open"
    """Nothing (health probes)."""
    ANY = "any"
    """Any valid credentials."""
    GLOBAL_READ = "global read"
    """A global grant, ``r`` or ``m``."""
    READ = "read"
    """``r`` or ``rw`` on the route's collection, or any global grant."""
    WRITE = "write"
    """``rw`` on the route's collection, or global ``m``."""
    MANAGE = "manage"
    """Global ``m``."""


@dataclass(frozen=True, slots=True)
class Rule:
    need: Need
    body: Body = Body.NONE


OPEN, ANY, GLOBAL_READ = Rule(Need.OPEN), Rule(Need.ANY), Rule(Need.GLOBAL_READ)
READ, WRITE, MANAGE = Rule(Need.READ), Rule(Need.WRITE), Rule(Need.MANAGE)
READ_JSON, WRITE_JSON = Rule(Need.READ, Body.JSON), Rule(Need.WRITE, Body.JSON)
MANAGE_JSON = Rule(Need.MANAGE, Body.JSON)
COLLECTION_PARAM = "name"
"""The path parameter that names a route's collection."""


C = "/collections/{name}"
ROUTES: dict[tuple[str, str], Rule] = {
    # service
    ("GET", "/"): ANY,
    ("GET", "/healthz"): OPEN,
    ("GET", "/livez"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): GLOBAL_READ,
    ("GET", "/openapi.json"): ANY,
    ("GET", "/docs"): ANY,
    ("GET", "/docs/oauth2-redirect"): ANY,
    ("GET", "/redoc"): ANY,
    ("GET", "/telemetry"): ANY,  # filtered to the caller's collections
    ("GET", "/cluster"): GLOBAL_READ,
    ("GET", f"{C}/cluster"): READ,
    ("POST", f"{C}/cluster"): MANAGE_JSON,
    ("GET", f"{C}/optimizations"): READ,
    ("GET", "/issues"): ANY,  # filtered to the caller's collections
    ("DELETE", "/issues"): MANAGE,
    # collections
    ("GET", "/collections"): ANY,  # filtered to the caller's collections
    ("GET", C): READ,
    ("GET", f"{C}/exists"): READ,
    ("PUT", C): MANAGE_JSON,
    ("PATCH", C): MANAGE_JSON,
    ("DELETE", C): MANAGE,
    ("PUT", f"{C}/index"): WRITE_JSON,
    ("PUT", f"{C}/vectors/{{vector_name}}"): MANAGE_JSON,
    ("DELETE", f"{C}/vectors/{{vector_name}}"): MANAGE,
    ("DELETE", f"{C}/index/{{field_name:path}}"): WRITE,
    # aliases: changing them manages; each listing shows what the caller may see
    ("POST", "/collections/aliases"): MANAGE_JSON,
    ("GET", "/aliases"): ANY,
    ("GET", f"{C}/aliases"): READ,
    # points
    ("PUT", f"{C}/points"): WRITE_JSON,
    ("POST", f"{C}/points"): READ_JSON,
    ("GET", f"{C}/points/{{point_id}}"): READ,
    ("POST", f"{C}/points/delete"): WRITE_JSON,
    ("POST", f"{C}/points/payload"): WRITE_JSON,
    ("PUT", f"{C}/points/payload"): WRITE_JSON,
    ("POST", f"{C}/points/payload/delete"): WRITE_JSON,
    ("POST", f"{C}/points/payload/clear"): WRITE_JSON,
    ("POST", f"{C}/points/scroll"): READ_JSON,
    ("POST", f"{C}/points/count"): READ_JSON,
    ("POST", f"{C}/points/bulk"): Rule(Need.WRITE, Body.BULK),
    ("PUT", f"{C}/points/vectors"): WRITE_JSON,
    ("POST", f"{C}/points/vectors/delete"): WRITE_JSON,
    ("POST", f"{C}/points/batch"): WRITE_JSON,
    # search
    ("POST", f"{C}/points/query"): READ_JSON,
    ("POST", f"{C}/points/query/batch"): READ_JSON,
    ("POST", f"{C}/points/search"): READ_JSON,
    ("POST", f"{C}/points/search/batch"): READ_JSON,
    ("POST", f"{C}/points/recommend"): READ_JSON,
    ("POST", f"{C}/points/recommend/batch"): READ_JSON,
    ("POST", f"{C}/points/discover"): READ_JSON,
    ("POST", f"{C}/points/discover/batch"): READ_JSON,
    ("POST", f"{C}/points/query/groups"): READ_JSON,  # with_lookup is checked by its route
    ("POST", f"{C}/points/search/groups"): READ_JSON,
    ("POST", f"{C}/points/recommend/groups"): READ_JSON,  # with_lookup is checked by its route
    ("POST", f"{C}/facet"): READ_JSON,
    ("POST", f"{C}/points/search/matrix/pairs"): READ_JSON,
    ("POST", f"{C}/points/search/matrix/offsets"): READ_JSON,
    # jobs and segments (Quiver extensions); a job id names no collection
    ("GET", f"{C}/jobs"): READ,
    ("GET", f"{C}/segments"): READ,
    ("GET", "/jobs/{job_id}"): GLOBAL_READ,
    ("POST", "/jobs/{job_id}/cancel"): MANAGE_JSON,
    ("GET", "/jobs"): ANY,  # filtered to the caller's collections
    # dashboard (server/dashboard/): the static shell is open, its data calls are not
    ("GET", "/dashboard"): OPEN,
    ("GET", "/dashboard/{asset:path}"): OPEN,
    ("GET", f"{C}/quiver/map"): READ,
    # LeanVec training queries (Quiver extension)
    ("POST", f"{C}/leanvec/training-queries"): WRITE_JSON,
    ("GET", f"{C}/leanvec/training-queries"): READ,
    # snapshots: recovering replaces a collection, so it manages
    ("POST", f"{C}/snapshots"): WRITE_JSON,
    ("GET", f"{C}/snapshots"): READ,
    ("PUT", f"{C}/snapshots/recover"): MANAGE_JSON,
    ("POST", f"{C}/snapshots/upload"): Rule(Need.MANAGE, Body.MULTIPART),
    ("GET", f"{C}/snapshots/{{snapshot_name}}"): READ,
    ("DELETE", f"{C}/snapshots/{{snapshot_name}}"): WRITE,
    ("POST", f"{C}/shards/{{shard_id}}/snapshots"): WRITE_JSON,
    ("GET", f"{C}/shards/{{shard_id}}/snapshots"): READ,
    ("PUT", f"{C}/shards/{{shard_id}}/snapshots/recover"): MANAGE_JSON,
    ("POST", f"{C}/shards/{{shard_id}}/snapshots/upload"): Rule(Need.MANAGE, Body.MULTIPART),
    ("GET", f"{C}/shards/{{shard_id}}/snapshots/{{snapshot_name}}"): READ,
    ("DELETE", f"{C}/shards/{{shard_id}}/snapshots/{{snapshot_name}}"): WRITE,
    ("GET", f"{C}/shards/{{shard_id}}/snapshot"): READ,
    # full-storage snapshots: every collection's data, so global grants only
    ("POST", "/snapshots"): MANAGE_JSON,
    ("GET", "/snapshots"): GLOBAL_READ,
    ("GET", "/snapshots/{snapshot_name}"): GLOBAL_READ,
    ("DELETE", "/snapshots/{snapshot_name}"): MANAGE,
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


@dataclass(frozen=True, slots=True)
class Grant:
    """What a caller holds: a global mode (``r`` / ``m``) or per-collection modes
    (``r`` / ``rw``), never both (Qdrant's ``Access``)."""

    global_mode: str | None = None
    collections: Mapping[str, str] = field(default_factory=dict)

    def refusal(self, need: Need, collection: str | None) -> str | None:
        """Why this grant does not meet ``need`` (a 403 message), or None when it does."""
        if need in (Need.OPEN, Need.ANY):
            return None
        if self.global_mode is not None:
            if need in (Need.WRITE, Need.MANAGE) and self.global_mode != "m":
                return "Forbidden: Global manage access is required"
            return None
        if need in (Need.GLOBAL_READ, Need.MANAGE) or collection is None:
            return "Forbidden: Global access is required"
        mode = self.collections.get(collection)
        if mode is None:
            return f"Forbidden: Access to collection {collection} is required"
        if need is Need.WRITE and mode != "rw":
            return f"Forbidden: Write access to collection {collection} is required"
        return None

    def may_see(self, collection: str) -> bool:
        return self.global_mode is not None or collection in self.collections


FULL = Grant(global_mode="m")
READ_ONLY = Grant(global_mode="r")
GRANT_STATE = "grant"
"""Where the middleware leaves the caller's grant in ``request.state``."""


def visible_collections(request: Request, names: Iterable[str]) -> list[str]:
    """The collections a caller may see: all for a global grant, their own otherwise
    (how Qdrant lists collections for a collection-scoped token)."""
    grant: Grant = getattr(request.state, GRANT_STATE, FULL)
    return [name for name in names if grant.may_see(name)]
