"""qdrant-client creates a TurboQuant collection over gRPC and REST, and reads it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.grpc.conftest import GrpcServer

pytestmark = pytest.mark.integration

TURBO = models.TurboQuantization(
    turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS1_5)
)


@pytest.fixture(scope="module")
def server(grpc_server: GrpcServer) -> GrpcServer:
    return grpc_server


@pytest.fixture(params=["grpc", "rest"])
def client(request: pytest.FixtureRequest, server: GrpcServer) -> Iterator[QdrantClient]:
    remote = (
        server.client()
        if request.param == "grpc"
        else QdrantClient(url=server.url, check_compatibility=False, timeout=30)
    )
    yield remote
    remote.close()


def test_qdrant_client_creates_and_searches_a_turbo_collection(client: QdrantClient) -> None:
    name = f"turbo_{uuid.uuid4().hex[:8]}"
    params = models.VectorParams(size=8, distance=models.Distance.COSINE)
    client.create_collection(name, vectors_config=params, quantization_config=TURBO)
    assert client.get_collection(name).config.quantization_config == TURBO
    rows = np.random.default_rng(2).normal(size=(50, 8))
    client.upsert(name, [models.PointStruct(id=i, vector=r.tolist()) for i, r in enumerate(rows)])
    hits = client.query_points(name, rows[7].tolist(), limit=3).points
    assert hits[0].id == 7
