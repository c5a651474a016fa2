"""The REST access rules over gRPC: API key, read-only key and JWT grants, per RPC.

Each row is (credentials, call, expected code); the need of every call is its REST
route's row in ``server/api/access.py``, so this matrix reads like REST's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qdrant_client import grpc as q
from qdrant_client import models

from tests.grpc.conftest import GrpcServer, start_grpc_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
]

KEY = "grpc-test-key-of-at-least-32-bytes"
READ_KEY = "grpc-read-key-of-at-least-32-bytes"
OWN, OTHER = "own", "other"
OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


def _token(access: Any) -> str:
    return jwt.encode({"access": access}, KEY, algorithm="HS256")


CREDENTIALS: dict[str, list[tuple[str, str]]] = {
    "none": [],
    "wrong_key": [("api-key", "nope")],
    "key": [("api-key", KEY)],
    "read_key": [("api-key", READ_KEY)],
    "jwt_manage": [("authorization", f"Bearer {_token('m')}")],
    "jwt_own_read": [("authorization", f"Bearer {_token([{'collection': OWN, 'access': 'r'}])}")],
    "jwt_own_rw": [("authorization", f"Bearer {_token([{'collection': OWN, 'access': 'rw'}])}")],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    started = start_grpc_server(
        tmp_path_factory.mktemp("grpc-auth"),
        QUIVER_API_KEY=KEY,
        QUIVER_READ_ONLY_API_KEY=READ_KEY,
        QUIVER_JWT_RBAC="true",
    )
    try:
        admin = started.client(api_key=KEY)
        for name in (OWN, OTHER):
            admin.create_collection(
                name, vectors_config=models.VectorParams(size=2, distance="Dot")
            )
        admin.close()
        yield started
    finally:
        started.process.stop()


@pytest.fixture(scope="module")
def channel(server: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as opened:
        yield opened


def _search(name: str) -> Callable[[grpc.Channel, Any], Any]:
    request = q.SearchPoints(collection_name=name, vector=[1.0, 0.0], limit=1)
    return lambda channel, md: q.PointsStub(channel).Search(request, metadata=md)


def _upsert(name: str) -> Callable[[grpc.Channel, Any], Any]:
    vector = q.Vectors(vector=q.Vector(dense=q.DenseVector(data=[1.0, 0.0])))
    point = q.PointStruct(id=q.PointId(num=1), vectors=vector)
    request = q.UpsertPoints(collection_name=name, points=[point], wait=True)
    return lambda channel, md: q.PointsStub(channel).Upsert(request, metadata=md)


def _count(name: str) -> Callable[[grpc.Channel, Any], Any]:
    request = q.CountPoints(collection_name=name)
    return lambda channel, md: q.PointsStub(channel).Count(request, metadata=md)


def _update(name: str) -> Callable[[grpc.Channel, Any], Any]:
    request = q.UpdateCollection(collection_name=name)
    return lambda channel, md: q.CollectionsStub(channel).Update(request, metadata=md)


CALLS = {
    "search_own": _search(OWN),
    "search_other": _search(OTHER),
    "count_own": _count(OWN),
    "upsert_own": _upsert(OWN),
    "update_collection_own": _update(OWN),
}

MATRIX: dict[str, dict[str, grpc.StatusCode]] = {
    #                search_own   search_other  count_own  upsert_own  update_collection
    "none": dict.fromkeys(CALLS, UNAUTHENTICATED),
    "wrong_key": dict.fromkeys(CALLS, UNAUTHENTICATED),
    "key": dict.fromkeys(CALLS, OK),
    "jwt_manage": dict.fromkeys(CALLS, OK),
    "read_key": {**dict.fromkeys(CALLS, OK), "upsert_own": DENIED, "update_collection_own": DENIED},
    "jwt_own_read": {
        **dict.fromkeys(CALLS, DENIED),
        "search_own": OK,
        "count_own": OK,
    },
    "jwt_own_rw": {
        **dict.fromkeys(CALLS, DENIED),
        "search_own": OK,
        "count_own": OK,
        "upsert_own": OK,
    },
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_access_matrix_over_grpc(channel: grpc.Channel, who: str) -> None:
    got = {}
    for name, call in CALLS.items():
        try:
            call(channel, CREDENTIALS[who])
            got[name] = OK
        except grpc.RpcError as error:
            got[name] = error.code()
    assert got == MATRIX[who]


def test_collection_scoped_token_lists_only_its_collections(server: GrpcServer) -> None:
    token = _token([{"collection": OWN, "access": "r"}])
    metadata = [("authorization", f"Bearer {token}")]
    with grpc.insecure_channel(server.target) as channel:
        reply = q.CollectionsStub(channel).List(q.ListCollectionsRequest(), metadata=metadata)
    assert [c.name for c in reply.collections] == [OWN]


def test_health_checks_need_no_key(channel: grpc.Channel) -> None:
    assert q.QdrantStub(channel).HealthCheck(q.HealthCheckRequest()).version
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_qdrant_client_api_key_reaches_the_server(server: GrpcServer) -> None:
    client = server.client(api_key=KEY)
    try:
        assert {c.name for c in client.get_collections().collections} == {OWN, OTHER}
    finally:
        client.close()
