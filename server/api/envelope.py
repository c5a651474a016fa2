"""Qdrant's response envelope, serialised with orjson.

``{"result": ..., "status": "ok", "time": seconds}`` on success and
``{"result": null, "status": {"error": "..."}, "time": seconds}`` on failure.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_ANY_KEYS = _OPTIONS | orjson.OPT_NON_STR_KEYS


def to_json(content: Any) -> bytes:
    """``content`` as JSON bytes, numpy values included; a dict key that is not a string
    is written as one. Asking orjson for that up front made a batch's 1,000 hits take
    ~70% longer to write, and nearly every answer has string keys only, so it is asked
    only when the plain call refuses a key (an answer that cannot be written at all is
    refused by both)."""
    try:
        return orjson.dumps(content, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return orjson.dumps(content, option=_ANY_KEYS)


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


def elapsed(request: Request) -> float:
    started: float | None = getattr(request.state, "started", None)
    return 0.0 if started is None else time.perf_counter() - started


def ok(request: Request, result: Any) -> OrjsonResponse:
    return OrjsonResponse({"result": result, "status": "ok", "time": elapsed(request)})


def accepted(request: Request, background: BackgroundTask | None = None) -> OrjsonResponse:
    """Qdrant's answer to a ``wait=false`` operation that runs after the response."""
    body = {"result": None, "status": "accepted", "time": elapsed(request)}
    return OrjsonResponse(body, status_code=202, background=background)


def error_body(message: str, seconds: float) -> dict[str, Any]:
    return {"result": None, "status": {"error": message}, "time": seconds}
