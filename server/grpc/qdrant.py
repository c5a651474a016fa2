"""``qdrant.Qdrant/HealthCheck``: the service's name and version, like ``GET /``, open
to every caller as Qdrant's is (a probe needs no key)."""

from __future__ import annotations

from qdrant_client import grpc

from server.api.routes.admin import quiver_version

TITLE = "quiver - vector search engine (Qdrant-compatible API)"


class QdrantService(grpc.QdrantServicer):
    async def HealthCheck(
        self, request: grpc.HealthCheckRequest, context: object
    ) -> grpc.HealthCheckReply:
        return grpc.HealthCheckReply(title=TITLE, version=quiver_version())
