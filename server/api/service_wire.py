"""Qdrant's service answers built from what Quiver knows: telemetry, a collection's
shards, and its optimizations (build jobs), in the shapes of Qdrant 1.19's OpenAPI
(``TelemetryData``, ``CollectionClusterInfo``, ``OptimizationsResponse``).

Only what is true is reported. Quiver has one API node and no consensus, so there are
no remote shards, transfers or peers; its shards (in-process or Ray actors, which this
node alone reaches) are this node's local shards, each ``Active`` while it answers.

Ids: Qdrant names optimizations and segments by UUID. Quiver's are a 16-hex-digit job id
(``GET /jobs/{id}``) and an integer segment id per shard, so ``job_uuid`` and
``segment_uuid`` write those numbers into a UUID (zero-padded; a sharded collection's
shard number in the upper half of a segment's), reversible and stable across restarts.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from server.api import host_telemetry, render
from server.api.metrics import Metrics, OperationStats, vector_counts
from server.api.routes.admin import quiver_version
from server.engine.protocols import CollectionHandle, JobWire
from server.engine.results import SegmentInfo
from server.engine.unindexed_fields import UNINDEXED_FIELDS, UnindexedField
from server.errors import BadRequest, QuiverError

Json = dict[str, Any]
PEER_ID = 0
"""The one API node's peer id (there is no consensus to assign one)."""
ACTIVE_STATE = "Active"
OPTIMIZER_NAMES = {
    "index": "indexing",
    "merge": "merge",
    "vacuum": "vacuum",
    "rebuild": "config_mismatch",
}
"""Quiver's job kinds under the names of Qdrant's optimizers (``rebuild``: the index
config changed, which Qdrant's config-mismatch optimizer handles)."""
RUNNING, QUEUED = "running", "queued"
FINISHED = ("done", "failed", "cancelled", "interrupted")
DEFAULT_COMPLETED_LIMIT = 16
OPTIMIZATIONS_WITH = ("queued", "completed", "idle_segments")


# -- ids ---------------------------------------------------------------------


def job_uuid(job_id: str) -> UUID:
    return UUID(hex=job_id.rjust(32, "0"))


def segment_uuid(segment_id: int | None, shard: int | None) -> UUID:
    """The appendable segment (no id) is segment 0."""
    return UUID(int=((shard or 0) << 64) | (segment_id or 0))


# -- collection cluster info ---------------------------------------------------


def collection_cluster(collection: CollectionHandle) -> Json:
    """Qdrant's ``CollectionClusterInfo``: every shard local to this node and active; a
    replicated collection's replicas are remote shards, each in its own state."""
    replicated = getattr(getattr(collection, "group", None), "cluster_info", None)
    if replicated is not None:
        shards = collection.info().shards or []
        replicas: Json = replicated()
        return {"peer_id": PEER_ID, "shard_count": len(shards), "local_shards": []} | replicas
    info = collection.info()
    shards = info.shards or []
    local = [
        {"shard_id": s.shard, "points_count": s.points_count, "state": ACTIVE_STATE} for s in shards
    ] or [{"shard_id": 0, "points_count": info.points_count, "state": ACTIVE_STATE}]
    return {
        "peer_id": PEER_ID,
        "shard_count": len(local),
        "local_shards": local,
        "remote_shards": [],
        "shard_transfers": [],
    }


def cluster_operation(collection: CollectionHandle, kind: str, args: Json) -> None:
    """Qdrant's ``POST /collections/{name}/cluster`` on a replicated collection (the
    replica sets, ``server/cluster/replicated.py``, run it); a 400 on any other."""
    operate = getattr(getattr(collection, "group", None), "cluster_operation", None)
    if operate is None:
        raise BadRequest(
            "Bad request: cluster operations need a collection with replication_factor > 1"
        )
    operate(kind, args)


# -- optimizations -------------------------------------------------------------


def parse_with(raw: str | None) -> set[str]:
    """``?with=queued,completed,idle_segments``; unknown parts are a 400 (checked by
    the route with ``BadRequest``), so they are returned for it to name."""
    return {part.strip() for part in (raw or "").split(",") if part.strip()}


def optimizations(collection: CollectionHandle, with_: set[str], completed_limit: int) -> Json:
    """Qdrant's ``OptimizationsResponse`` from the collection's build jobs and segments."""
    jobs = collection.jobs()
    segments = collection.segments_info()
    points = {(s.shard, s.segment_id): s.points for s in segments}
    busy = {
        (j.get("shard"), sid)
        for j in jobs
        if j["state"] in (RUNNING, QUEUED)
        for sid in j["segment_ids"]
    }
    idle = [s for s in segments if (s.shard, s.segment_id) not in busy]
    queued = [j for j in jobs if j["state"] == QUEUED]
    out: Json = {
        "summary": {
            "queued_optimizations": len(queued),
            "queued_segments": sum(len(j["segment_ids"]) for j in queued),
            "queued_points": sum(
                points.get((j.get("shard"), sid), 0) for j in queued for sid in j["segment_ids"]
            ),
            "idle_segments": len(idle),
        },
        "running": [_optimization(j, points) for j in jobs if j["state"] == RUNNING],
    }
    if "queued" in with_:
        out["queued"] = [
            {"optimizer": _optimizer(j), "segments": _segments(j, points)} for j in queued
        ]
    if "completed" in with_:
        done = [j for j in jobs if j["state"] in FINISHED]
        done.sort(key=lambda j: j["finished"] or j["created"], reverse=True)
        out["completed"] = [_optimization(j, points) for j in done[:completed_limit]]
    if "idle_segments" in with_:
        out["idle_segments"] = [_segment(s) for s in idle]
    return out


def _optimizer(job: JobWire) -> str:
    kind: str = job["kind"]
    return OPTIMIZER_NAMES.get(kind, kind)


def _segment(segment: SegmentInfo) -> Json:
    return {
        "uuid": str(segment_uuid(segment.segment_id, segment.shard)),
        "points_count": segment.points,
    }


def _segments(job: JobWire, points: dict[tuple[int | None, int | None], int]) -> list[Json]:
    """A job's input segments; once they are replaced, the counts its build recorded."""
    recorded = dict(zip(job["segment_ids"], job.get("segment_points") or [], strict=False))
    return [
        {
            "uuid": str(segment_uuid(sid, job.get("shard"))),
            "points_count": points.get((job.get("shard"), sid), recorded.get(sid, 0)),
        }
        for sid in job["segment_ids"]
    ]


def _optimization(job: JobWire, points: dict[tuple[int | None, int | None], int]) -> Json:
    return {
        "uuid": str(job_uuid(job["id"])),
        "optimizer": _optimizer(job),
        "status": _tracker_status(job),
        "segments": _segments(job, points),
        "progress": _progress(job),
    }


def _tracker_status(job: JobWire) -> Any:
    state = job["state"]
    if state == RUNNING:
        return "optimizing"
    if state == "done":
        return "done"
    if state == "failed":
        return {"error": job["error"] or "failed"}
    reason = "interrupted by a shutdown or crash" if state == "interrupted" else "cancelled"
    return {"cancelled": reason}


def _progress(job: JobWire) -> Json:
    """Qdrant's ``ProgressTree``: one node, the build's points done of total."""
    started, finished = job["started"], job["finished"]
    node: Json = {
        "name": _optimizer(job),
        "started_at": _time(started),
        "finished_at": _time(finished),
        "duration_sec": (finished - started)
        if started is not None and finished is not None
        else None,
        "done": job["points_done"],
        "total": job["points_total"] or None,
        "children": [],
    }
    return node


def _time(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


# -- telemetry -----------------------------------------------------------------


def telemetry(
    collections: Sequence[CollectionHandle],
    metrics: Metrics,
    settings: Any,
    details_level: int,
    anonymize: bool,
) -> Json:
    """Qdrant's ``TelemetryData`` (a truthful subset): app, collections (a list from
    level 1, each collection in full with its shards from level 2, optimizer statistics
    from level 3), cluster and REST request statistics. ``anonymize`` replaces
    collection names with a hash of them, as Qdrant does."""
    listed = None
    if details_level >= 1:
        listed = [_collection_telemetry(c, metrics, details_level, anonymize) for c in collections]
    return {
        "id": metrics.instance_id,
        "app": _app(metrics, settings, details_level),
        "collections": {
            "number_of_collections": len(collections),
            "max_collections": settings.max_collections or None,
            "collections": listed,
        },
        "cluster": {"enabled": False},
        "requests": {"rest": {"responses": metrics.rest.to_wire()}, "grpc": {"responses": {}}},
    }


def _app(metrics: Metrics, settings: Any, details_level: int) -> Json:
    """From level 1 with the host's ``system`` section, as Qdrant's."""
    app: Json = {
        "name": "quiver",
        "version": quiver_version(),
        "features": {
            "debug": False, "service_debug_feature": False, "recovery_mode": False,
            "gpu": False, "rocksdb": False, "staging": False,
        },
        "jwt_rbac": bool(settings.jwt_rbac),
        "startup": metrics.started.isoformat(),
    }  # fmt: skip
    if details_level >= 1:
        app["system"] = host_telemetry.system(settings.data_dir)
    return app


def anonymized(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _collection_telemetry(
    collection: CollectionHandle, metrics: Metrics, level: int, anonymize: bool
) -> Json:
    name = anonymized(collection.name) if anonymize else collection.name
    info = collection.info()
    config = render.collection_config(info.config)
    if level < 2:
        return {
            "vectors": sum(vector_counts(collection).values()),
            "optimizers_status": info.optimizer_status,
            "params": config["params"],
        }
    jobs = collection.jobs()
    config_telemetry = {
        key: config[key]
        for key in (
            "params",
            "hnsw_config",
            "optimizer_config",
            "wal_config",
            "quantization_config",
        )
    }
    return {
        "id": name,
        "config": config_telemetry,
        "shards": _replica_sets(collection, info, jobs, metrics, level),
        "transfers": [],
    }


def _replica_sets(
    collection: CollectionHandle, info: Any, jobs: list[JobWire], metrics: Metrics, level: int
) -> list[Json]:
    shards = info.shards or []
    per_shard = [(s.shard, s.status, s.points_count) for s in shards] or [
        (None, info.status, info.points_count)
    ]
    counts = vector_counts(collection) if len(per_shard) == 1 else None
    out: list[Json] = []
    for shard, status, points in per_shard:
        own = [j for j in jobs if j.get("shard") == shard]
        local: Json = {
            "variant_name": "local",
            "status": status,
            "total_optimized_points": _optimized_points(own, metrics),
            "num_points": points,
        }
        if counts is not None:
            local["num_vectors_by_name"] = counts
            local["num_vectors"] = sum(counts.values())
        if level >= 3:
            local["optimizations"] = {
                "status": info.optimizer_status,
                "optimizations": _job_durations(own).to_wire(),
            }
        out.append(
            {
                "id": shard or 0,
                "local": local,
                "remote": [],
                "replicate_states": {str(PEER_ID): ACTIVE_STATE},
            }
        )
    return out


def _optimized_points(jobs: Iterable[JobWire], metrics: Metrics) -> int:
    """Points rebuilt by jobs that finished since this server started."""
    since = metrics.started.timestamp()
    return sum(
        j["points_total"] for j in jobs if j["state"] == "done" and (j["finished"] or 0) >= since
    )


def _job_durations(jobs: Iterable[JobWire]) -> OperationStats:
    stats = OperationStats()
    for job in jobs:
        if job["state"] in ("done", "failed") and job["started"] and job["finished"]:
            stats.add(job["finished"] - job["started"], job["state"] == "failed", job["finished"])
    return stats


# -- issues --------------------------------------------------------------------

MANY_COLLECTIONS = 30
DENSITY_THRESHOLD = 300 / MANY_COLLECTIONS
"""Qdrant's ``TooManyCollections`` rule: more than 30 collections holding, on average,
fewer than 10 points per collection per collection."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One of Qdrant's ``IssueRecord``s; ``collection`` is None for a storage-wide one."""

    id: str
    collection: str | None
    description: str
    solution: Json


class IssueBoard:
    """Performance and health issues found in the collections' current state (Quiver
    records none from requests): too many sparse collections (Qdrant's rule) and
    collections whose builds failed for good. ``clear`` hides the issues found so far
    until their condition ends; one that comes back is reported again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_seen: dict[str, float] = {}
        self._cleared: set[str] = set()

    def report(self, collections: Sequence[CollectionHandle], visible: set[str] | None) -> Json:
        """``visible``: the collections a collection-scoped caller may see (None: all,
        with the storage-wide issues too)."""
        found = find_issues(collections)
        now = time.time()
        with self._lock:
            current = {issue.id for issue in found}
            self._cleared &= current
            self._first_seen = {i: self._first_seen.get(i, now) for i in current}
            shown = [issue for issue in found if issue.id not in self._cleared]
            stamps = dict(self._first_seen)
        if visible is not None:
            shown = [i for i in shown if i.collection is not None and i.collection in visible]
        return {"issues": [_issue_record(issue, stamps[issue.id]) for issue in shown]}

    def clear(self, collections: Sequence[CollectionHandle]) -> None:
        """Unindexed-field issues are forgotten (a new slow search reports them again);
        the others are hidden until their condition ends."""
        UNINDEXED_FIELDS.clear()
        with self._lock:
            self._cleared = {issue.id for issue in find_issues(collections)}


def find_issues(collections: Sequence[CollectionHandle]) -> list[Issue]:
    infos = []
    for collection in collections:
        with suppress(QuiverError):  # deleted meanwhile
            infos.append((collection.name, collection.info()))
    issues = [_failed_builds(name, info) for name, info in infos if info.status == "red"]
    schemas = {name: info.config.payload_schema for name, info in infos}
    issues += [_unindexed(seen) for seen in UNINDEXED_FIELDS.current(schemas)]
    average = sum(info.points_count for _, info in infos) / max(1, len(infos))
    if len(infos) > MANY_COLLECTIONS and average / len(infos) < DENSITY_THRESHOLD:
        issues.insert(0, Issue(
            "/TOO_MANY_COLLECTIONS", None,
            "It looks like you have too many collections. If your architecture creates "
            "collections programmatically, it is probably better to keep a fixed number "
            "of them and tell tenants apart with a payload field (an `is_tenant` index).",
            {"refactor": "Restructure your usage into a fixed number of collections"},
        ))  # fmt: skip
    return issues


def _failed_builds(name: str, info: Any) -> Issue:
    error = info.optimizer_status.get("error") if isinstance(info.optimizer_status, dict) else None
    return Issue(
        f"/{name}/OPTIMIZATION_FAILED", name,
        f"Index builds of collection '{name}' failed and are no longer retried: {error}",
        {"refactor": (
            f"Fix the cause, then change the collection's config (PATCH /collections/{name}) "
            "so the failed builds are tried again; until then they are searched exactly"
        )},
    )  # fmt: skip


def _unindexed(seen: UnindexedField) -> Issue:
    """Qdrant's ``UnindexedField`` issue: one ready request per index type that would
    serve the key (``immediate``, or ``immediate_choice`` when several would)."""
    name, field = seen.collection, seen.field
    choices = [
        {
            "message": (
                f"Create an index on field '{field}' of schema '{orjson.dumps(kind).decode()}' "
                f"in collection '{name}'. Check the documentation for more details: "
                "https://qdrant.tech/documentation/concepts/indexing/#payload-index"
            ),
            "action": {
                "method": "PUT",
                "uri": f"/collections/{name}/index",
                "headers": {},
                "body": {"field_name": field, "field_schema": kind},
            },
        }
        for kind in seen.types
    ]
    solution = {"immediate": choices[0]} if len(choices) == 1 else {"immediate_choice": choices}
    description = f"Unindexed field '{field}' is slowing down queries in collection '{name}'"
    return Issue(seen.code, name, description, solution)


def _issue_record(issue: Issue, first_seen: float) -> Json:
    return {
        "id": issue.id,
        "description": issue.description,
        "solution": issue.solution,
        "timestamp": datetime.fromtimestamp(first_seen, UTC).isoformat(),
    }
