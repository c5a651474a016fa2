"""Wire-to-domain helpers shared by the point and query routes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from index.base import SearchParams as IndexSearchParams
from server.api.envelope import ok
from server.api.schemas import SearchParams
from server.engine.collection import PointsSelection, VectorSelector
from server.engine.filters import parse_filter
from server.engine.payload import PayloadSelector, parse_with_payload
from server.engine.point_ids import PointId, parse_point_id
from server.errors import BadRequest
from server.settings import Settings


def update_result(request: Request, op_id: int, wait: bool) -> Response:
    """Qdrant's ``UpdateResult``. Quiver always commits durably before answering,
    so ``wait=false`` only changes the reported status, never the guarantee."""
    return ok(request, update_status(op_id, wait))


def update_status(op_id: int, wait: bool) -> dict[str, Any]:
    """The ``result`` of ``UpdateResult`` (also rendered by ``api/fast_write.py``)."""
    return {"operation_id": op_id, "status": "completed" if wait else "acknowledged"}


def point_ids(raw: list[Any], settings: Settings) -> list[PointId]:
    if len(raw) > settings.max_batch_points:
        raise BadRequest(
            f"Too many point ids: {len(raw)} (the limit is {settings.max_batch_points})"
        )
    return [parse_point_id(value) for value in raw]


def selection(points: list[Any] | None, flt: Any, settings: Settings) -> PointsSelection:
    """Exactly one of ``points`` (ids) or ``filter`` selects the points to change."""
    if points is not None and flt is not None:
        raise BadRequest("Wrong input: give either `points` or `filter`, not both")
    if points is None and flt is None:
        raise BadRequest("Wrong input: give `points` (a list of ids) or a `filter`")
    if points is not None:
        return PointsSelection(ids=point_ids(points, settings))
    return PointsSelection(filter=parse_filter(flt))


def payload_selector(raw: Any, default: bool) -> PayloadSelector:
    return parse_with_payload(raw, default=default)


def vector_selector(raw: Any, default: bool) -> VectorSelector:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return list(raw)
    raise BadRequest("Wrong input: `with_vector` must be a bool or a list of vector names")


def search_params(raw: SearchParams | None) -> IndexSearchParams:
    """Qdrant's ``params``: ``hnsw_ef`` (beam width), ``exact`` (bypass the index) and
    ``quantization`` (ignore / rescore / oversampling), which backends without
    compressed codes ignore, as Qdrant does on collections without quantization."""
    if raw is None:
        return _DEFAULT_PARAMS
    quantization = raw.quantization
    if quantization is None:
        return IndexSearchParams(
            ef=raw.hnsw_ef or None, exact=bool(raw.exact), oversampling=raw.rerank_factor
        )
    return IndexSearchParams(
        ef=raw.hnsw_ef or None,
        exact=bool(raw.exact),
        ignore_quantization=bool(quantization.ignore),
        rescore=quantization.rescore,
        oversampling=raw.rerank_factor or quantization.oversampling,
    )


_DEFAULT_PARAMS = IndexSearchParams()


def check_limit(name: str, value: int, settings: Settings) -> int:
    if value > settings.max_limit:
        raise BadRequest(f"Wrong input: `{name}` {value} exceeds the limit of {settings.max_limit}")
    return value
