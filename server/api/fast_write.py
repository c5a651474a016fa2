"""A lean path for the plainest writes: upserts of points given as ``{"id", "vector",
"payload"}``, deletes by id, and payload sets by id (issue 20's mixed workload).

Profiled under ``bench/bench_mixed.py`` (32 clients, 55% writes, one process), the
event loop was the bottleneck (busy ~70% of the time, the worker threads mostly idle),
and a write spent about twice the event-loop time of a lean query: FastAPI's router,
dependency solving and pydantic validation of the body, plus a second thread hop for the
strict-mode check of deletes and payload sets. This pure-ASGI layer, beside
``fast_search.py`` and built the same way, answers those bodies itself: it checks their
plain shape by hand (only the keys and value types the wire models keep as they are),
builds the wire models without re-validation (``lean_layer.Construct``), and runs the
routes' own write job (``routes/points.py``: parse, strict-mode checks, engine call, in one
thread hop), so the answer and every error are the ones the full route gives. Group
commit is unchanged: the job returns only once its write is on disk.

Anything else (more than ``LEAN_MAX_POINTS`` points, another key, a filter,
``update_mode``, a query parameter other than ``wait=true|false``, JSON that does not
parse) is replayed byte for byte to the full route. ``QUIVER_LEAN_WRITES=false`` sends
every write there (the benchmark's baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from server.api.lean_layer import Construct, LeanLayer, Prepared, RouteLabel, elapsed
from server.api.middleware import Scope
from server.api.routes.common import update_status
from server.api.routes.points import WriteJob, delete_job, set_payload_job, upsert_job
from server.api.schemas import PointsList, PointsSelector, PointStruct, SetPayload
from server.engine.protocols import CollectionHandle
from server.settings import Settings

LEAN_MAX_POINTS = 64
"""The most points an upsert may carry and still take the lean path. What the lean path
saves is per request (~1 ms of the event loop), nothing per point for a big batch; and
big batches through it left free memory pinned: a 390k GloVe load in batches of 1,000
grew 460-467 B a point after its build against 407 with those batches on the full route
(``bench_memory.py``, same code and machine, issue 24's target 452)."""
POINT_KEYS = frozenset({"id", "vector", "payload"})
PAYLOAD_KEYS = frozenset({"payload", "points", "key"})
_point_model = Construct(PointStruct)
_points_model = Construct(PointsList)
_selector_model = Construct(PointsSelector)
_set_payload_model = Construct(SetPayload)
WAIT = {b"": False, b"wait=false": False, b"wait=true": True}
"""The query strings the lean path takes, and the ``wait`` each means."""


@dataclass(frozen=True, slots=True)
class LeanWrite:
    """One write route of the lean path: its hand shape check (the wire model of a
    plain body, or None) and the route's own job builder."""

    shape: Callable[[dict[str, Any]], Any]
    job: Callable[[Any, CollectionHandle, Settings], WriteJob]
    label: RouteLabel


@dataclass(frozen=True, slots=True)
class Target:
    """What a request's method, path and query string name."""

    write: LeanWrite
    collection: str
    wait: bool


class FastWrite(LeanLayer[Target]):
    """Answers plain upserts, deletes and payload sets without FastAPI's request
    machinery; everything else goes on to ``app`` unchanged. Its worker threads are
    its own, so writes waiting for the collection lock never hold up queries' threads;
    the app's CPU limiter still bounds both together. On the direct lane a write runs
    on the event loop (``inline``) unless inline work was slow lately; either way it
    returns before its fsync, holding no token or thread, and is answered once the
    fsync is done (``defers_durability``, ADR 0016's last amendment)."""

    thread_name = "quiver-write"
    defers_durability = True

    def match(self, scope: Scope) -> Target | None:
        return _target(scope)

    def inline(self, match: Target, shape: Any) -> bool:
        """Every lean write: at most ``LEAN_MAX_POINTS`` points or ids, and on the lane
        its fsync is waited for off the loop (``direct_lane.LaneCall._inlined``)."""
        return True

    def shape(self, match: Target, raw: dict[str, Any]) -> Any:
        return match.write.shape(raw)

    def label(self, match: Target) -> RouteLabel:
        return match.write.label

    def prepare(self, scope: Scope, target: Target, shape: Any) -> Prepared:
        """The route's own write job, and its answer once the write is on disk."""
        state = scope["app"].state
        collection = state.engine.get(target.collection)  # first, as the route's dependency
        job = target.write.job(shape, collection, state.settings)

        def render(op_id: Any) -> bytes:
            result = update_status(op_id, target.wait)
            return orjson.dumps({"result": result, "status": "ok", "time": elapsed(scope)})

        return job, render


def _target(scope: Scope) -> Target | None:
    """The lean write a request is, or None (not http, another route, other parameters,
    or lean writes switched off)."""
    if scope["type"] != "http" or scope["method"] not in ("PUT", "POST"):
        return None
    wait = WAIT.get(scope.get("query_string", b""))
    parts = scope["path"].split("/")
    if wait is None or len(parts) not in (4, 5) or parts[1] != "collections" or not parts[2]:
        return None
    if parts[3] != "points" or not scope["app"].state.settings.lean_writes:
        return None
    write = WRITES.get((scope["method"], "/".join(parts[4:])))
    return None if write is None else Target(write, parts[2], wait)


def _upsert_shape(raw: dict[str, Any]) -> PointsList | None:
    points = raw.get("points")
    if raw.keys() != {"points"} or type(points) is not list or not points:
        return None
    if len(points) > LEAN_MAX_POINTS:
        return None
    structs = []
    for point in points:
        if type(point) is not dict or not ({"id", "vector"} <= point.keys() <= POINT_KEYS):
            return None
        vector, payload = point["vector"], point.get("payload")
        if not (_plain_id(point["id"]) and _dense(vector)):
            return None
        if payload is not None and type(payload) is not dict:
            return None
        structs.append(_point_model(id=point["id"], vector=vector, payload=payload))
    return _points_model(points=structs)


def _delete_shape(raw: dict[str, Any]) -> PointsSelector | None:
    points = raw.get("points")
    if raw.keys() != {"points"} or not _plain_ids(points):
        return None
    return _selector_model(points=points)


def _set_payload_shape(raw: dict[str, Any]) -> SetPayload | None:
    payload, points, key = raw.get("payload"), raw.get("points"), raw.get("key")
    if not ({"payload", "points"} <= raw.keys() <= PAYLOAD_KEYS):
        return None
    if type(payload) is not dict or not _plain_ids(points):
        return None
    if key is not None and type(key) is not str:
        return None
    return _set_payload_model(payload=payload, points=points, key=key)


def _plain_id(value: Any) -> bool:
    """An id as the wire model keeps it (``parse_point_id`` checks its range / UUID)."""
    return type(value) is int or type(value) is str


def _plain_ids(value: Any) -> bool:
    return type(value) is list and all(_plain_id(v) for v in value)


def _dense(vector: Any) -> bool:
    """One unnamed dense vector: a non-empty list of JSON numbers (not bools)."""
    return type(vector) is list and bool(vector) and set(map(type, vector)) <= {int, float}


def _label(kind: str) -> RouteLabel:
    return RouteLabel(f"/collections/{{name}}/points{kind}")


WRITES: dict[tuple[str, str], LeanWrite] = {
    ("PUT", ""): LeanWrite(_upsert_shape, upsert_job, _label("")),
    ("POST", "delete"): LeanWrite(_delete_shape, delete_job, _label("/delete")),
    ("POST", "payload"): LeanWrite(_set_payload_shape, set_payload_job, _label("/payload")),
}
"""The lean writes, by method and path after ``/collections/{name}/points/``."""
