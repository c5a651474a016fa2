"""Vector updates, vector deletes and batch updates over gRPC, against local mode."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.grpc.conftest import GrpcServer

pytestmark = pytest.mark.integration


def _apply(client: QdrantClient, name: str) -> None:
    rng = np.random.default_rng(21)
    config = {
        "a": models.VectorParams(size=3, distance=models.Distance.DOT),
        "b": models.VectorParams(size=2, distance=models.Distance.DOT),
    }
    points = [
        models.PointStruct(
            id=i,
            vector={"a": rng.random(3).tolist(), "b": rng.random(2).tolist()},
            payload={"i": i},
        )
        for i in range(10)
    ]
    client.create_collection(name, vectors_config=config)
    client.upsert(name, points=points, wait=True)
    client.update_vectors(name, [models.PointVectors(id=1, vector={"a": [1.0, 2.0, 3.0]})])
    client.delete_vectors(name, vectors=["b"], points=[2, 3])
    new_point = models.PointStruct(id=50, vector={"a": [0.1, 0.2, 0.3]})
    client.batch_update_points(
        name,
        update_operations=[
            models.UpsertOperation(upsert=models.PointsList(points=[new_point])),
            models.DeleteOperation(delete=models.PointIdsList(points=[4])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"k": 1}, points=[5])),
            models.UpdateVectorsOperation(
                update_vectors=models.UpdateVectors(
                    points=[models.PointVectors(id=6, vector={"b": [9.0, 9.0]})]
                )
            ),
            models.DeleteVectorsOperation(
                delete_vectors=models.DeleteVectors(points=[7], vector=["a"])
            ),
        ],
        wait=True,
    )


def test_vector_and_batch_updates_match_local_mode(grpc_server: GrpcServer) -> None:
    name = f"vectors_{uuid.uuid4().hex[:8]}"
    remote, local = grpc_server.client(), QdrantClient(":memory:")
    try:
        for client in (remote, local):
            _apply(client, name)
        got, want = (
            sorted(c.scroll(name, limit=100, with_vectors=True)[0], key=lambda r: r.id)
            for c in (remote, local)
        )
        assert [r.id for r in got] == [r.id for r in want]
        for a, b in zip(got, want, strict=True):
            assert (a.payload or {}) == (b.payload or {})
            assert isinstance(a.vector, dict) and isinstance(b.vector, dict)
            assert set(a.vector) == set(b.vector), a.id
            for key, value in a.vector.items():
                assert np.allclose(value, b.vector[key], atol=1e-5)  # type: ignore[arg-type]
    finally:
        remote.delete_collection(name)
        remote.close()
        local.close()
