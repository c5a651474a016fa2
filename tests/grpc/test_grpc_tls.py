"""gRPC over REST's TLS settings: the same certificate, and client certificates required
when a CA bundle is set (mutual TLS)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from qdrant_client import grpc as q

from tests.helpers.configured_server import configured_server
from tests.helpers.process import free_port
from tests.integration.test_tls import Authority, context

pytestmark = pytest.mark.integration


def _health(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    channel = (
        grpc.insecure_channel(target)
        if credentials is None
        else grpc.secure_channel(target, credentials)
    )
    with channel:
        reply = q.QdrantStub(channel).HealthCheck(q.HealthCheckRequest(), timeout=5)
        return str(reply.title)


def test_grpc_uses_the_rest_certificates_and_requires_client_certificates(
    tmp_path: Path,
) -> None:
    ca = Authority(tmp_path, "test-ca")
    server, client = ca.issue("server", server=True), ca.issue("client", server=False)
    port = free_port()
    settings = {
        "QUIVER_TLS_CERT": str(server.cert),
        "QUIVER_TLS_KEY": str(server.key),
        "QUIVER_TLS_CA_CERT": str(ca.path),
        "QUIVER_GRPC_PORT": str(port),
    }
    verify = context(ca, client)
    with configured_server(tmp_path, settings, scheme="https", verify=verify):
        target = f"127.0.0.1:{port}"
        root = ca.path.read_bytes()
        trusted = grpc.ssl_channel_credentials(
            root, client.key.read_bytes(), client.cert.read_bytes()
        )
        assert _health(target, trusted).startswith("quiver")
        for refused in (grpc.ssl_channel_credentials(root), None):  # no client cert; plain
            with pytest.raises(grpc.RpcError) as failed:
                _health(target, refused)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
