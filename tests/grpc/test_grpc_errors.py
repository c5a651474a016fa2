"""Bad input over gRPC gets Qdrant's status code and writes nothing; health; refusals.

Raw stubs (not qdrant-client) so each request is exactly the message under test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qdrant_client import grpc as q

from tests.grpc.conftest import GrpcServer, start_grpc_server

pytestmark = pytest.mark.integration

DIM = 4
MAX_BYTES = 64 * 1024
COLLECTION = "errors"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    root: Path = tmp_path_factory.mktemp("grpc-errors")
    started = start_grpc_server(root, QUIVER_MAX_REQUEST_BYTES=str(MAX_BYTES))
    try:
        yield started
    finally:
        started.process.stop()


@pytest.fixture(scope="module")
def channel(server: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as opened:
        yield opened


@pytest.fixture(scope="module")
def points(channel: grpc.Channel) -> q.PointsStub:
    collections = q.CollectionsStub(channel)
    params = q.VectorParams(size=DIM, distance=q.Distance.Dot)
    collections.Create(
        q.CreateCollection(
            collection_name=COLLECTION, vectors_config=q.VectorsConfig(params=params)
        )
    )
    stub = q.PointsStub(channel)
    stub.Upsert(q.UpsertPoints(collection_name=COLLECTION, wait=True, points=[_point(1, 1.0)]))
    return stub


def _point(point_id: int, value: float, dim: int = DIM) -> q.PointStruct:
    dense = q.DenseVector(data=[value] * dim)
    return q.PointStruct(
        id=q.PointId(num=point_id), vectors=q.Vectors(vector=q.Vector(dense=dense))
    )


def _count(points: q.PointsStub) -> int:
    count: int = points.Count(q.CountPoints(collection_name=COLLECTION, exact=True)).result.count
    return count


def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    error = caught.value
    return error.code(), error.details()


@pytest.mark.parametrize(
    "bad",
    [
        [_point(2, 1.0, dim=DIM + 1)],
        [_point(2, math.nan)],
        [_point(2, 1.0), _point(3, math.inf)],
    ],
    ids=["wrong_dimension", "nan", "infinity_in_second_point"],
)
def test_bad_vectors_are_invalid_argument_and_write_nothing(
    points: q.PointsStub, bad: list[q.PointStruct]
) -> None:
    before = _count(points)
    code, details = _code(
        lambda: points.Upsert(q.UpsertPoints(collection_name=COLLECTION, points=bad))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "dimension" in details or "NaN" in details
    assert _count(points) == before


@pytest.mark.parametrize("vector", [[1.0] * (DIM - 1), [1.0, math.nan, 1.0, 1.0]])
def test_bad_query_vectors_are_invalid_argument(points: q.PointsStub, vector: list[float]) -> None:
    nearest = q.Query(nearest=q.VectorInput(dense=q.DenseVector(data=vector)))
    request = q.QueryPoints(collection_name=COLLECTION, query=nearest)
    assert _code(lambda: points.Query(request))[0] == grpc.StatusCode.INVALID_ARGUMENT
    search = q.SearchPoints(collection_name=COLLECTION, vector=vector, limit=3)
    assert _code(lambda: points.Search(search))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_collection_is_not_found(points: q.PointsStub, channel: grpc.Channel) -> None:
    search = q.SearchPoints(collection_name="missing", vector=[1.0] * DIM, limit=3)
    code, details = _code(lambda: points.Search(search))
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "Not found: Collection `missing` doesn't exist!",
    )
    upsert = q.UpsertPoints(collection_name="missing", points=[_point(1, 1.0)])
    assert _code(lambda: points.Upsert(upsert))[0] == grpc.StatusCode.NOT_FOUND
    info = q.GetCollectionInfoRequest(collection_name="missing")
    stub = q.CollectionsStub(channel)
    assert _code(lambda: stub.Get(info))[0] == grpc.StatusCode.NOT_FOUND


def test_creating_an_existing_collection_is_already_exists(
    points: q.PointsStub, channel: grpc.Channel
) -> None:
    params = q.VectorParams(size=DIM, distance=q.Distance.Dot)
    again = q.CreateCollection(
        collection_name=COLLECTION, vectors_config=q.VectorsConfig(params=params)
    )
    code = _code(lambda: q.CollectionsStub(channel).Create(again))[0]
    assert code == grpc.StatusCode.ALREADY_EXISTS


def test_oversized_message_is_resource_exhausted_and_writes_nothing(
    points: q.PointsStub,
) -> None:
    before = _count(points)
    many = [_point(1000 + i, 1.0) for i in range(MAX_BYTES // (DIM * 4))]
    code = _code(lambda: points.Upsert(q.UpsertPoints(collection_name=COLLECTION, points=many)))
    assert code[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _count(points) == before


def test_unserved_method_is_unimplemented_naming_it(channel: grpc.Channel) -> None:
    collections = q.CollectionsStub(channel)
    request = q.ListShardKeysRequest(collection_name=COLLECTION)
    code, details = _code(lambda: collections.ListShardKeys(request))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert "/qdrant.Collections/ListShardKeys" in details


def test_health_services_report_serving(channel: grpc.Channel) -> None:
    reply = q.QdrantStub(channel).HealthCheck(q.HealthCheckRequest())
    assert reply.title.startswith("quiver")
    checker = health_pb2_grpc.HealthStub(channel)
    for service in ("", "qdrant.Points"):
        status = checker.Check(health_pb2.HealthCheckRequest(service=service)).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_strict_mode_limits_hold_on_the_fast_paths(channel: grpc.Channel) -> None:
    """Dense search and upsert skip the REST route; its strict-mode checks must not."""
    params = q.VectorParams(size=DIM, distance=q.Distance.Dot)
    strict = q.StrictModeConfig(enabled=True, search_max_batchsize=2, upsert_max_batchsize=2)
    q.CollectionsStub(channel).Create(
        q.CreateCollection(
            collection_name="strict",
            vectors_config=q.VectorsConfig(params=params),
            strict_mode_config=strict,
        )
    )
    stub = q.PointsStub(channel)
    upsert = q.UpsertPoints(collection_name="strict", points=[_point(i, 1.0) for i in range(3)])
    code, details = _code(lambda: stub.Upsert(upsert))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "upsert limit" in details
    assert stub.Count(q.CountPoints(collection_name="strict")).result.count == 0
    nearest = q.Query(nearest=q.VectorInput(dense=q.DenseVector(data=[1.0] * DIM)))
    one = q.QueryPoints(collection_name="strict", query=nearest)
    batch = q.QueryBatchPoints(collection_name="strict", query_points=[one] * 3)
    code, details = _code(lambda: stub.QueryBatch(batch))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch size" in details
