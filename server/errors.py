"""Quiver's one domain exception tree.

Every error a request can meet is a :class:`QuiverError`; each class carries
its HTTP status and builds its message in ``__init__``, and ``server/api/errors.py``
maps the tree to Qdrant's wire envelope in exactly one place::

    QuiverError (500)
    ├── BadRequest (400)
    │   ├── InvalidFilter
    │   ├── InvalidPointId
    │   ├── InvalidVector            (wrong dimension, NaN / infinity, unknown name)
    │   ├── InvalidCollectionName
    │   ├── NameTakenByAlias         (a collection created under an alias's name)
    │   ├── InvalidSnapshot          (corrupt, truncated or unknown snapshot archive)
    │   ├── InvalidTextOptions       (tokenizer / stopwords / stemmer / BM25 option)
    │   ├── InvalidDocument          (a document no model of Quiver's can embed there)
    │   ├── StrictModeViolation      (a request past the collection's strict_mode_config)
    │   └── UnsupportedFeature       (valid Qdrant request Quiver does not implement)
    ├── Forbidden (403)              (a location outside the folders a client may name)
    ├── NotFound (404)
    │   ├── CollectionNotFound
    │   ├── PointNotFound
    │   ├── AliasNotFound
    │   └── SnapshotNotFound
    ├── Conflict (409)
    │   └── CollectionAlreadyExists
    ├── ConfigValidationError (422) (a create / PATCH config field of the wrong type or range)
    ├── BodyValidationError (422)   (a body failing one of Qdrant's validators, its wording)
    ├── PayloadTooLarge (413)
    ├── RateLimited (429)            (strict mode's read / write rate limit; Retry-After)
    ├── UnsupportedMediaType (415)
    ├── StorageError (500)           (corrupt or unknown on-disk version, I/O failure)
    ├── ServiceUnavailable (503)     (out of memory for this request: retry later)
    └── InsufficientStorage (507)    (the disk is full: the operation was not applied)

Library errors (OSError, sqlite3, MemoryError, RecursionError) that reach a request are
translated into this tree once, in ``server/api/errors.py``; messages name the
collection, segment or archive member, never a host path (see :func:`reason`).

An error may carry a ``result`` (a bulk load's report of what was committed before it
failed); it is sent in the envelope's ``result`` field.
"""

from __future__ import annotations

import errno
import sqlite3

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class QuiverError(Exception):
    """Base of every error Quiver reports to a client."""

    status_code = 500
    result: object = None
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(QuiverError):
    status_code = 400


class InvalidFilter(BadRequest):
    """Qdrant reads a filter while it parses the body, so a malformed one is its 400
    ``Format error in JSON body``; Quiver adds where in the filter and why."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Format error in JSON body: filter: {detail}")


class InvalidPointId(BadRequest):
    def __init__(self, value: object) -> None:
        super().__init__(
            f"Bad point id {value!r}: expected an unsigned 64-bit integer or a UUID string"
        )


class InvalidVector(BadRequest):
    pass


class InvalidCollectionName(BadRequest):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"Bad collection name {name!r}: {reason}")


class NameTakenByAlias(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Wrong input: Can't create collection with name {name}. "
            "Alias with the same name already exists"
        )


class InvalidSnapshot(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad snapshot: {detail}")


class InvalidTextOptions(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad text options: {detail}")


class InvalidDocument(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad document: {detail}")


class UnsupportedFeature(BadRequest):
    def __init__(self, feature: str) -> None:
        super().__init__(f"Not supported by Quiver yet: {feature}")


class StrictModeViolation(BadRequest):
    """Qdrant answers strict mode's refusals as a bad request naming the fix."""

    def __init__(self, error: str, solution: str) -> None:
        super().__init__(f"Bad request: {error}. Help: {solution}")


class Forbidden(QuiverError):
    status_code = 403

    def __init__(self, detail: str) -> None:
        super().__init__(f"Forbidden: {detail}")


class NotFound(QuiverError):
    status_code = 404


class CollectionNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Not found: Collection `{name}` doesn't exist!")


class PointNotFound(NotFound):
    def __init__(self, point_id: object) -> None:
        super().__init__(f"Not found: No point with id {point_id} found")


class AliasNotFound(NotFound):
    def __init__(self, alias: str) -> None:
        super().__init__(f"Not found: Alias {alias} does not exists!")  # Qdrant's words


class SnapshotNotFound(NotFound):
    def __init__(self, snapshot: str, collection: str | None = None) -> None:
        where = f" of collection `{collection}`" if collection else ""
        super().__init__(f"Not found: Snapshot `{snapshot}`{where} doesn't exist!")


class Conflict(QuiverError):
    status_code = 409


class CollectionAlreadyExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Wrong input: Collection `{name}` already exists!")


class ConfigValidationError(QuiverError):
    """Worded like the 422 FastAPI gives a request body of the wrong shape, because
    the collection config sections are validated by the engine's config model."""

    status_code = 422

    def __init__(self, detail: str) -> None:
        super().__init__(f"Validation error in request: {detail}")


class BodyValidationError(QuiverError):
    """A body that parses but fails one of Qdrant's validators: its 422 wording."""

    status_code = 422

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"Validation error in JSON body: [{path}: {message}]")


class PayloadTooLarge(QuiverError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit} bytes")


class RateLimited(QuiverError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int | None) -> None:
        super().__init__(f"Rate limiting exceeded: {detail}")
        if retry_after is not None:
            self.headers = {"Retry-After": str(retry_after)}


class UnsupportedMediaType(QuiverError):
    status_code = 415

    def __init__(self, got: str, expected: list[str]) -> None:
        super().__init__(f"Unsupported content type {got!r}; send one of: {', '.join(expected)}")


class BulkLoadFailed(BadRequest):
    """The stream broke off (malformed, truncated, wrong schema); ``result`` reports the
    rows committed before it."""

    def __init__(self, reason: str, report: object) -> None:
        super().__init__(f"Bulk load stopped: {reason}")
        self.result = report


class StorageError(QuiverError):
    status_code = 500


class InsufficientStorage(QuiverError):
    """The disk is full (or would be): the operation wrote nothing and can be retried
    once space is freed (WebDAV's 507, as a client's retry logic expects it)."""

    status_code = 507

    def __init__(self, what: str) -> None:
        super().__init__(f"Insufficient storage: {what}")


class ServiceUnavailable(QuiverError):
    status_code = 503

    def __init__(self, detail: str) -> None:
        super().__init__(f"Service unavailable: {detail}")


def reason(exc: BaseException) -> str:
    """A library error's reason without the file names it carries (``str`` of an
    OSError includes the absolute path): for messages a client reads."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError):
        return type(exc).__name__
    return str(exc) or type(exc).__name__


def is_disk_full(exc: BaseException | None) -> bool:
    """True for a full disk or quota, from the OS or from SQLite (``SQLITE_FULL``)."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL
    return False
