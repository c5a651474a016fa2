"""A real Quiver process with gRPC on a free port, and qdrant-client over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tests.helpers.process import QuiverProcess, free_port, server_env


@dataclass(frozen=True)
class GrpcServer:
    process: QuiverProcess
    grpc_port: int

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def client(self, **options: object) -> QdrantClient:
        """qdrant-client speaking gRPC only (no REST version check)."""
        return QdrantClient(
            url=self.url,
            grpc_port=self.grpc_port,
            prefer_grpc=True,
            check_compatibility=False,
            timeout=30,
            **options,  # type: ignore[arg-type]
        )


def start_grpc_server(root: Path, **settings: str) -> GrpcServer:
    """A server whose gRPC port is free; ``settings`` are extra ``QUIVER_*`` variables."""
    port = free_port()
    env = server_env() | {"QUIVER_GRPC_PORT": str(port)} | settings
    process = QuiverProcess(root / "data", root / "logs", env)
    process.start()  # healthy REST means gRPC is up: the lifespan starts it first
    return GrpcServer(process, port)


@pytest.fixture(scope="session")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    """One server shared by the gRPC modules (each test uses its own collections)."""
    server = start_grpc_server(tmp_path_factory.mktemp("grpc"))
    try:
        yield server
    finally:
        server.process.stop()
