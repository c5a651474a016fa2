"""qdrant-client's scenarios over gRPC (``prefer_grpc=True``), checked against local mode.

The same tests as ``tests/integration/test_qdrant_client_compat.py`` (which runs them
over REST): collected again here with the ``pair`` fixture's remote client switched to
gRPC, so every RPC the client makes for them (collections, upsert in both forms,
retrieve, query and batch query, scroll, count, payload operations, deletes) must give
local mode's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from tests.grpc.conftest import GrpcServer
from tests.integration import test_qdrant_client_compat as rest_scenarios
from tests.integration.test_qdrant_client_compat import *  # noqa: F403 (the scenarios)
from tests.integration.test_qdrant_client_compat import (
    DATA,
    SOME_INT_IDS,
    SOME_UUIDS,
    Pair,
    PointId,
    _by_id,
    _create_plain,
    _unique,
    assert_points_equal,
    scroll_all,
)

del test_client_compatibility_check_emits_no_warning  # noqa: F821 (REST's version check)

pytestmark = pytest.mark.integration
assert rest_scenarios.Pair is Pair


@pytest.fixture(scope="module")
def pair(grpc_server: GrpcServer) -> Iterator[Pair]:
    remote = grpc_server.client()
    local = QdrantClient(":memory:")
    yield Pair(remote, local)
    remote.close()
    local.close()


# Two scenarios read differently on Qdrant's gRPC wire, whatever the server: a record
# always carries a payload map (empty, never null), and a payload integer is an int64.


def test_retrieve_selects_payload_and_vectors(
    pair: Pair, plain: str, with_payload: Any, with_vectors: bool
) -> None:
    """As over REST, except that "no payload" arrives as ``{}``."""
    ids = [*SOME_INT_IDS, *SOME_UUIDS, 999_999, str(uuid.UUID(int=7))]  # two do not exist
    remote, local = pair.both(
        lambda c: c.retrieve(plain, ids, with_payload=with_payload, with_vectors=with_vectors)
    )
    local = [r.model_copy(update={"payload": r.payload or {}}) for r in local]
    assert len(local) == len(SOME_INT_IDS) + len(SOME_UUIDS)
    assert_points_equal(_by_id(remote), _by_id(local), "retrieve")


test_retrieve_selects_payload_and_vectors.pytestmark = (  # type: ignore[attr-defined]
    rest_scenarios.test_retrieve_selects_payload_and_vectors.pytestmark  # type: ignore[attr-defined]
)


def test_large_integer_ids_round_trip(pair: Pair) -> None:
    """Ids up to 2**64 - 1 over gRPC; the payload names them as strings (int64 values)."""
    name = _unique("bigids")
    _create_plain(pair, name, models.Distance.DOT)
    ids: list[PointId] = [0, 2**53 + 1, 2**63 + 5, 2**64 - 1]
    points = [
        models.PointStruct(id=i, vector=v, payload={"k": str(i)})
        for i, v in zip(ids, DATA.vectors, strict=False)
    ]
    try:
        pair.run(lambda c: c.upsert(name, points, wait=True))
        remote, local = pair.both(lambda c: scroll_all(c, name, with_vectors=True))
        assert_points_equal(remote, local, "big ids")
        assert [r.id for r in remote] == ids
    finally:
        pair.run(lambda c: c.delete_collection(name))
