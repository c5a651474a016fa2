"""The RPC tables: every row names a real method and a REST route; what is not served."""

from __future__ import annotations

import grpc
import numpy as np
from qdrant_client import grpc as q

from server.errors import CollectionAlreadyExists, CollectionNotFound, InvalidVector
from server.grpc import convert
from server.grpc.server import SERVICES, needs
from server.grpc.status import RpcError

BASES = {
    "Collections": q.CollectionsServicer,
    "Points": q.PointsServicer,
    "Snapshots": q.SnapshotsServicer,
}


def _methods(base: type) -> set[str]:
    return {name for name in vars(base) if not name.startswith("_")}


def test_every_row_is_a_method_of_its_service() -> None:
    for service, rows in SERVICES.items():
        assert set(rows) <= _methods(BASES[service]), service


def test_unserved_methods_are_the_documented_ones() -> None:
    unserved = {service: _methods(BASES[service]) - set(rows) for service, rows in SERVICES.items()}
    assert unserved == {
        "Collections": {
            "UpdateCollectionClusterSetup",
            "CreateShardKey",
            "DeleteShardKey",
            "ListShardKeys",
        },
        "Points": set(),
        "Snapshots": set(),
    }


def test_needs_follow_the_rest_access_table() -> None:
    table = needs()
    assert table["/qdrant.Points/Search"].value == "read"
    assert table["/qdrant.Points/Upsert"].value == "write"
    assert table["/qdrant.Collections/Create"].value == "manage"
    assert table["/qdrant.Collections/List"].value == "any"


def test_domain_errors_map_to_qdrants_codes() -> None:
    assert RpcError.of(CollectionNotFound("c")).code == grpc.StatusCode.NOT_FOUND
    assert RpcError.of(CollectionAlreadyExists("c")).code == grpc.StatusCode.ALREADY_EXISTS
    assert RpcError.of(InvalidVector("bad")).code == grpc.StatusCode.INVALID_ARGUMENT


def test_dense_vectors_are_read_from_the_packed_bytes() -> None:
    values = np.random.default_rng(7).standard_normal(300).astype(np.float32)
    read = convert.dense(q.DenseVector(data=values.tolist()))
    assert read.dtype == np.float32
    assert np.array_equal(read, values)
    assert convert.dense(q.DenseVector()).shape == (0,)
