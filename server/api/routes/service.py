"""Qdrant's service and operations routes: telemetry, cluster status, a collection's
shards and optimizations, and the performance-issues report.

The answers are built in ``server/api/service_wire.py`` from the engine, the build
worker's jobs and the request statistics of ``server/api/metrics.py``. ``/cluster`` is
``{"status": "disabled"}``, as Qdrant answers without distributed mode: Quiver has one
API node and no consensus, even when its shards run as Ray actors (those are listed by
``/collections/{name}/cluster`` as this node's local shards). ``/issues`` reports what
the collections' state shows (``service_wire.IssueBoard``) and, as Qdrant, the payload
keys that slow searches filtered on without an index (``engine/unindexed_fields.py``).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.api import service_wire
from server.api.access import FULL, GRANT_STATE, Grant, visible_collections
from server.api.deps import CollectionDep, EngineDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.api.schemas import CLUSTER_OPS, ClusterOperation
from server.engine.engine import Engine
from server.engine.protocols import CollectionHandle
from server.errors import BadRequest, CollectionNotFound

router = APIRouter(tags=["service"], route_class=OrjsonRoute)

MAX_DETAILS_LEVEL = 10


@router.get("/telemetry")
async def telemetry(
    request: Request,
    engine: EngineDep,
    details_level: int = Query(0, ge=0, le=MAX_DETAILS_LEVEL),
    anonymize: bool = False,
    per_collection: bool = False,
    timeout: int | None = None,
) -> Response:
    """``details_level`` 0: counts; 1: a summary per collection; 2: each collection with
    its config and shards; 3: with optimizer statistics. A collection-scoped caller sees
    only its own collections. ``per_collection`` and ``timeout`` change nothing."""
    names = visible_collections(request, engine.names())

    def build() -> dict[str, Any]:
        return service_wire.telemetry(
            _collections(engine, names),
            request.app.state.metrics,
            request.app.state.settings,
            details_level,
            anonymize,
        )

    return ok(request, await run_cpu(request, build))


@router.get("/cluster")
async def cluster_status(request: Request) -> Response:
    return ok(request, {"status": "disabled"})


@router.get("/collections/{name}/cluster")
async def collection_cluster(request: Request, collection: CollectionDep) -> Response:
    return ok(request, await run_cpu(request, service_wire.collection_cluster, collection))


@router.post("/collections/{name}/cluster")
async def update_collection_cluster(
    request: Request, collection: CollectionDep, body: ClusterOperation
) -> Response:
    """Qdrant's ``replicate_shard``, ``move_shard``, ``abort_transfer`` and
    ``drop_replica``; exactly one per request. Transfers run in the background."""
    given = body.model_dump(exclude_none=True)
    if len(given) != 1:
        raise BadRequest(f"Bad request: expected one operation of {', '.join(CLUSTER_OPS)}")
    [(kind, args)] = given.items()
    await run_cpu(request, service_wire.cluster_operation, collection, kind, args)
    return ok(request, True)


@router.get("/collections/{name}/optimizations")
async def collection_optimizations(
    request: Request,
    collection: CollectionDep,
    with_: str | None = Query(None, alias="with"),
    completed_limit: int = Query(service_wire.DEFAULT_COMPLETED_LIMIT, ge=0),
) -> Response:
    """Running build jobs always; ``?with=queued,completed,idle_segments`` adds those."""
    wanted = service_wire.parse_with(with_)
    unknown = sorted(wanted - set(service_wire.OPTIMIZATIONS_WITH))
    if unknown:
        raise BadRequest(
            f"Wrong input: unknown `with` value {unknown[0]!r}; expected any of "
            + ", ".join(service_wire.OPTIMIZATIONS_WITH)
        )
    answer = await run_cpu(request, service_wire.optimizations, collection, wanted, completed_limit)
    return ok(request, answer)


@router.get("/issues")
async def get_issues(request: Request, engine: EngineDep) -> Response:
    """A collection-scoped caller sees the issues of its own collections only."""
    visible = set(visible_collections(request, engine.names()))
    scoped = None if _is_global(request) else visible
    collections = _collections(engine, sorted(visible))
    board = _issue_board(request)
    return ok(request, await run_cpu(request, board.report, collections, scoped))


@router.delete("/issues")
async def clear_issues(request: Request, engine: EngineDep) -> Response:
    board = _issue_board(request)
    await run_cpu(request, board.clear, _collections(engine, engine.names()))
    return ok(request, True)


def _issue_board(request: Request) -> service_wire.IssueBoard:
    board: service_wire.IssueBoard | None = getattr(request.app.state, "issue_board", None)
    if board is None:
        board = request.app.state.issue_board = service_wire.IssueBoard()
    return board


def _is_global(request: Request) -> bool:
    grant: Grant = getattr(request.state, GRANT_STATE, FULL)
    return grant.global_mode is not None


def _collections(engine: Engine, names: list[str]) -> list[CollectionHandle]:
    found = []
    for name in names:
        with suppress(CollectionNotFound):  # deleted meanwhile
            found.append(engine.get(name))
    return found
