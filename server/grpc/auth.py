"""The gRPC front door: the REST rules for who may call what, applied per RPC.

Credentials come as metadata, ``api-key`` or ``authorization: Bearer <jwt>`` (how
qdrant-client sends them), and are read by the REST :class:`Authenticator`. Each RPC's
need is the row of the REST route it is (``rpc.Rpc.rule``, from ``api/access.py``),
checked against the request's ``collection_name``: ``UNAUTHENTICATED`` without valid
credentials, ``PERMISSION_DENIED`` when they do not reach far enough, with REST's
messages. Health probes are open; a method without a row needs any valid credentials
(as an unknown REST path does), then answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc

from server.api.access import Need
from server.api.credentials import Authenticator, Denied

OPEN_METHODS = frozenset(
    {"/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, auth: Authenticator, needs: Mapping[str, Need]) -> None:
        self.auth = auth
        self.needs = needs
        """Full method name (``/qdrant.Points/Upsert``) -> what its REST route needs."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method in OPEN_METHODS or not self.auth.enabled:
            return handler
        grant = self.auth.authenticate(_headers(details.invocation_metadata))
        need = self.needs.get(method, Need.ANY)
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(grant, Denied):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, grant.message)
                return None
            collection = getattr(request, "collection_name", None) or None
            refused = grant.refusal(need, collection)
            if refused is not None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _headers(metadata: Any) -> dict[bytes, bytes]:
    """Metadata as the lower-case byte headers the REST authenticator reads."""
    headers: dict[bytes, bytes] = {}
    for key, value in metadata or ():
        headers[key.lower().encode()] = value if isinstance(value, bytes) else value.encode()
    return headers
