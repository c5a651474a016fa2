"""The one table from Quiver's errors to gRPC status codes.

An error's HTTP status (``server/errors.py`` gives every class one) picks the code, so
a REST route's failure and a fast path's exception read the same: 400 and 422 are
``INVALID_ARGUMENT``, 404 ``NOT_FOUND``, 409 ``ALREADY_EXISTS``, 401 ``UNAUTHENTICATED``,
403 ``PERMISSION_DENIED``, 413, 429 (strict mode's rate limit) and 507
``RESOURCE_EXHAUSTED``, as Qdrant answers them.
"""

from __future__ import annotations

import grpc

from server.errors import QuiverError

CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    507: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def code_of(http_status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP status; anything unlisted is ``INTERNAL``."""
    return CODES.get(http_status, grpc.StatusCode.INTERNAL)


class RpcError(Exception):
    """Ends an RPC with ``code`` and ``message`` (raised by a service, sent by ``server.py``)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def of(cls, error: QuiverError) -> RpcError:
        return cls(code_of(error.status_code), error.message)


def unimplemented(method: str) -> RpcError:
    """What an RPC Quiver does not serve answers, naming it."""
    return RpcError(
        grpc.StatusCode.UNIMPLEMENTED, f"Not supported by Quiver yet: gRPC method {method}"
    )
