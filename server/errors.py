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
    │   ├── InvalidSnapshot          (corrupt, truncated or unknown snapshot archive)
    │   └── UnsupportedFeature       (valid Qdrant request Quiver does not implement)
    ├── Unauthorized (401)
    ├── NotFound (404)
    │   ├── CollectionNotFound
    │   ├── PointNotFound
    │   └── SnapshotNotFound
    ├── Conflict (409)
    │   └── CollectionAlreadyExists
    ├── ConfigValidationError (422) (a create / PATCH config field of the wrong type or range)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    └── StorageError (500)           (disk full, corrupt or unknown on-disk version)

An error may carry a ``result`` (a bulk load's report of what was committed before it
failed); it is sent in the envelope's ``result`` field.
"""

from __future__ import annotations


class QuiverError(Exception):
    """Base of every error Quiver reports to a client."""

    status_code = 500
    result: object = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(QuiverError):
    status_code = 400


class InvalidFilter(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad filter: {detail}")


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


class InvalidSnapshot(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad snapshot: {detail}")


class UnsupportedFeature(BadRequest):
    def __init__(self, feature: str) -> None:
        super().__init__(f"Not supported by Quiver yet: {feature}")


class Unauthorized(QuiverError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__("Must provide a valid API key in the 'api-key' header")


class NotFound(QuiverError):
    status_code = 404


class CollectionNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Not found: Collection `{name}` doesn't exist!")


class PointNotFound(NotFound):
    def __init__(self, point_id: object) -> None:
        super().__init__(f"Not found: No point with id {point_id} found")


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


class PayloadTooLarge(QuiverError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit} bytes")


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
