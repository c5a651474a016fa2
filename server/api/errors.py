"""The ONE table from exceptions to HTTP responses.

Domain errors carry their own status; request-shape errors from FastAPI become
400 (unparseable JSON) or 422 (well-formed JSON of the wrong shape), each with
a message naming the field. Library errors are translated here, once
(:func:`translate`): a full disk is 507 (also when storage wrapped it in a
``StorageError``), ``MemoryError`` 503, ``RecursionError`` 400, any other OSError or
SQLite error a 500 naming its reason but no path. Anything else unexpected is logged
and answered 500 without leaking internals; tests make sure no request reaches that.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.api.envelope import OrjsonResponse, elapsed, error_body
from server.errors import (
    BadRequest,
    InsufficientStorage,
    QuiverError,
    ServiceUnavailable,
    StorageError,
    is_disk_full,
    reason,
)

LIBRARY_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    sqlite3.Error,
    MemoryError,
    RecursionError,
)
"""Raised by the standard library and SQLite rather than Quiver; see ``translate``."""

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QuiverError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    for library_error in LIBRARY_ERRORS:
        app.add_exception_handler(library_error, _library_error)
    app.add_exception_handler(Exception, _unexpected_error)


def _respond(request: Request, status: int, message: str) -> OrjsonResponse:
    return OrjsonResponse(error_body(message, elapsed(request)), status_code=status)


def translate(exc: BaseException) -> QuiverError | None:
    """The one translation of library errors into the domain tree (None: not one)."""
    if is_disk_full(exc) or (isinstance(exc, StorageError) and is_disk_full(exc.__cause__)):
        what = exc.message if isinstance(exc, QuiverError) else f"the write failed: {reason(exc)}"
        return InsufficientStorage(f"{what}; the disk is full, the operation was not applied")
    if isinstance(exc, QuiverError):
        return None
    if isinstance(exc, MemoryError):
        return ServiceUnavailable("not enough memory for this request now; retry or ask for less")
    if isinstance(exc, RecursionError):
        return BadRequest("Wrong input: the request is nested too deeply to process")
    if isinstance(exc, (OSError, sqlite3.Error)):
        return StorageError(f"Storage error: {reason(exc)}")
    return None


async def _library_error(request: Request, exc: Exception) -> OrjsonResponse:
    translated = translate(exc)
    if translated is None:
        return await _unexpected_error(request, exc)
    log.warning(
        "request failed",
        extra={"path": request.url.path, "error": type(exc).__name__, "detail": reason(exc)},
    )
    return await _domain_error(request, translated)


async def _domain_error(request: Request, exc: QuiverError) -> OrjsonResponse:
    exc = translate(exc) or exc
    body = error_body(exc.message, elapsed(request)) | {"result": exc.result}
    return OrjsonResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> OrjsonResponse:
    limit = getattr(request.state, "body_too_large", None)
    if limit is not None:
        return _respond(request, 413, f"Request body exceeds the limit of {limit} bytes")
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return _respond(request, 400, f"Format error in JSON body: {reason}")
    places = {e.get("loc", ("",))[0] for e in errors}
    if places == {"body"}:
        status, message = body_error(list(errors))
        return _respond(request, status, message)
    if len(places) == 1 and places <= set(_PLACES):  # Qdrant names the part at fault
        parts = [f"{_loc(error)}: {_validator_message(error)}" for error in list(errors)[:5]]
        message = f"Validation error in {_PLACES[places.pop()]}: [{', '.join(parts)}]"
        return _respond(request, 422, message)
    return _respond(request, 422, "Validation error in request: " + _describe(errors))


_PLACES = {"query": "query parameters", "path": "path parameters"}


_TYPE_ERRORS = ("_type", "_parsing", "literal_error", "enum", "union_tag_invalid")


def body_error(errors: list[Any]) -> tuple[int, str]:
    """A JSON body's errors as Qdrant words them. Qdrant reads a body in two steps: serde
    (a missing field, a value of the wrong type or a negative count: 400 ``Format error
    in JSON body``), then the validators (a number out of range: 422 ``Validation error
    in JSON body: [path: value V invalid, must be N or larger]``)."""
    first = errors[0]
    kind, loc = str(first.get("type", "")), _loc(first)
    given = first.get("input")
    if kind == "missing":
        return 400, f"Format error in JSON body: missing field `{loc.rsplit('.', 1)[-1]}`"
    if kind == "greater_than_equal" and _is_int(given) and given < 0:
        return 400, f"Format error in JSON body: invalid value: integer `{given}`, expected usize"
    if kind.endswith(_TYPE_ERRORS):
        return 400, f"Format error in JSON body: {loc}: {first.get('msg', 'invalid type')}"
    parts = [f"{_loc(error)}: {_validator_message(error)}" for error in errors[:5]]
    return 422, f"Validation error in JSON body: [{', '.join(parts)}]"


def _validator_message(error: Any) -> str:
    ctx, given = error.get("ctx") or {}, error.get("input")
    if "ge" in ctx:
        return f"value {given} invalid, must be {ctx['ge']} or larger"
    if "le" in ctx:
        return f"value {given} invalid, must be {ctx['le']} or smaller"
    return str(error.get("msg", "invalid"))


def _loc(error: Any) -> str:
    return ".".join(str(p) for p in error.get("loc", ())[1:]) or "body"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(errors: Any) -> str:
    parts = []
    for error in list(errors)[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    more = len(errors) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


async def _http_error(request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
    """The router's own answers: no route (404), or a route for another method (405,
    e.g. ``PUT .../points/vectors`` against ``GET .../points/{id}``). Both are an unknown
    endpoint, a 404 naming it, as Qdrant's router answers (it matches method and path
    together)."""
    if exc.status_code in (404, 405):
        return _respond(request, 404, f"Not found: {request.method} {request.url.path}")
    return _respond(request, exc.status_code, str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return _respond(request, 500, f"Service internal error: {type(exc).__name__}")
