"""The gRPC server: Qdrant's services on ``QUIVER_GRPC_PORT`` (6334), in the REST process.

Started and stopped by the app's lifespan (``server/main.py``) on the same event loop, so
both front ends share one engine, one CPU limiter and one set of settings: same host,
same TLS files, same keys. Messages are capped at REST's body limit
(``QUIVER_MAX_REQUEST_BYTES``); a larger one is refused by grpc with
``RESOURCE_EXHAUSTED`` before any handler runs. The standard ``grpc.health.v1`` service
reports SERVING while the server runs.
"""

from __future__ import annotations

import logging

import grpc
from fastapi import FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from qdrant_client import grpc as qdrant_grpc

from server.api.access import Need
from server.api.credentials import Authenticator
from server.grpc import collections, points, snapshots
from server.grpc.auth import AuthInterceptor
from server.grpc.qdrant import QdrantService
from server.grpc.rpc import Rpc
from server.settings import Settings

log = logging.getLogger(__name__)

SERVICES: dict[str, dict[str, Rpc]] = {
    "Collections": collections.ROWS,
    "Points": points.ROWS,
    "Snapshots": snapshots.ROWS,
}
GRACE_S = 5.0


def needs() -> dict[str, Need]:
    """Every served RPC's full name -> the need of its REST route."""
    return {
        f"/qdrant.{service}/{method}": row.rule.need
        for service, rows in SERVICES.items()
        for method, row in rows.items()
    }


def request_host(settings: Settings) -> bytes:
    """A ``Host`` the REST front door accepts, for the in-process route calls."""
    for host in settings.allowed_hosts:
        return (host.replace("*.", "grpc.", 1) if host.startswith("*.") else host).encode()
    return settings.host.encode()


async def start(app: FastAPI, settings: Settings) -> grpc.aio.Server | None:
    """Serve on ``settings.grpc_port`` (None when it is 0: gRPC is off)."""
    if not settings.grpc_port:
        return None
    app.state.grpc_host = request_host(settings)
    app.state.grpc_parsed = {}  # fastpath._parsed
    auth = Authenticator(settings.api_key, settings.read_only_api_key, settings.jwt_rbac)
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(auth, needs())],
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", settings.max_request_result_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the port fails, never shares it
        ],
    )
    checker = _add_services(server, app)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host  # IPv6
    address = f"{host}:{settings.grpc_port}"
    credentials = server_credentials(settings)
    try:
        if credentials is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot serve gRPC on {address} ({exc}): set QUIVER_GRPC_PORT (0: off)"
        ) from exc
    await server.start()
    for name in ("", *(f"qdrant.{service}" for service in (*SERVICES, "Qdrant"))):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc ready", extra={"address": address, "tls": credentials is not None})
    return server


async def stop(server: grpc.aio.Server | None) -> None:
    """Let running calls finish (up to a few seconds), then close; before the engine
    closes, so no call meets a closed engine."""
    if server is not None:
        await server.stop(GRACE_S)


def _add_services(server: grpc.aio.Server, app: FastAPI) -> health.aio.HealthServicer:
    qdrant_grpc.add_CollectionsServicer_to_server(collections.build(app), server)  # type: ignore[no-untyped-call]
    qdrant_grpc.add_PointsServicer_to_server(points.build(app), server)  # type: ignore[no-untyped-call]
    qdrant_grpc.add_SnapshotsServicer_to_server(snapshots.build(app), server)  # type: ignore[no-untyped-call]
    qdrant_grpc.add_QdrantServicer_to_server(QdrantService(), server)  # type: ignore[no-untyped-call]
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    return checker


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """REST's TLS files: a certificate and key, and a CA bundle for mutual TLS."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ca = settings.tls_ca_cert.read_bytes() if settings.tls_ca_cert is not None else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )
