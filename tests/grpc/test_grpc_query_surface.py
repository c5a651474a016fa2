"""Grouped queries, facets, distance matrices and queries by example over gRPC, against
local mode (the RPCs qdrant-client 1.20 sends for them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as q

from tests.grpc.conftest import GrpcServer

pytestmark = pytest.mark.integration

DIM = 6


@pytest.fixture(scope="module")
def clients(grpc_server: GrpcServer) -> Iterator[tuple[QdrantClient, QdrantClient, str]]:
    """(gRPC client, local mode, collection) holding the same 120 seeded points."""
    remote, local = grpc_server.client(), QdrantClient(":memory:")
    name = f"surface_{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(11)
    points = [
        models.PointStruct(
            id=i,
            vector=rng.standard_normal(DIM).tolist(),
            payload={"group": int(i % 7), "color": ("red", "green", "blue")[i % 3]},
        )
        for i in range(120)
    ]
    for client in (remote, local):
        params = models.VectorParams(size=DIM, distance=models.Distance.DOT)
        client.create_collection(name, vectors_config=params)
        client.upsert(name, points, wait=True)
    remote.create_payload_index(name, "color", models.PayloadSchemaType.KEYWORD)
    yield remote, local, name
    remote.delete_collection(name)
    remote.close()
    local.close()


def test_query_groups_match_local_mode(clients: tuple[QdrantClient, QdrantClient, str]) -> None:
    remote, local, name = clients
    query = np.random.default_rng(3).standard_normal(DIM).tolist()
    answers = [
        c.query_points_groups(name, query=query, group_by="group", limit=4, group_size=3)
        for c in (remote, local)
    ]
    ids = [[(g.id, [p.id for p in g.hits]) for g in answer.groups] for answer in answers]
    assert ids[0] == ids[1]


def test_facet_matches_local_mode(clients: tuple[QdrantClient, QdrantClient, str]) -> None:
    remote, local, name = clients
    flt = models.Filter(must=[models.FieldCondition(key="group", range=models.Range(lt=4))])
    answers = [c.facet(name, "color", facet_filter=flt) for c in (remote, local)]
    assert [(h.value, h.count) for h in answers[0].hits] == [
        (h.value, h.count) for h in answers[1].hits
    ]


def test_recommend_query_matches_local_mode(
    clients: tuple[QdrantClient, QdrantClient, str],
) -> None:
    remote, local, name = clients
    query = models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 5], negative=[2]))
    answers = [c.query_points(name, query=query, limit=5).points for c in (remote, local)]
    assert [p.id for p in answers[0]] == [p.id for p in answers[1]]
    assert np.allclose([p.score for p in answers[0]], [p.score for p in answers[1]], rtol=1e-4)


def test_distance_matrix_scores_are_the_pairs_dot_products(
    clients: tuple[QdrantClient, QdrantClient, str],
) -> None:
    """Each call samples afresh, so each answer is checked against the stored vectors."""
    remote, local, name = clients
    vectors = {
        r.id: np.asarray(r.vector) for r in local.scroll(name, limit=200, with_vectors=True)[0]
    }
    pairs = remote.search_matrix_pairs(name, sample=10, limit=2).pairs
    assert len(pairs) == 20
    for pair in pairs:
        assert pair.score == pytest.approx(float(vectors[pair.a] @ vectors[pair.b]), rel=1e-4)
    offsets = remote.search_matrix_offsets(name, sample=10, limit=2)
    assert len(offsets.scores) == 20
    for row, col, score in zip(
        offsets.offsets_row, offsets.offsets_col, offsets.scores, strict=True
    ):
        expected = float(vectors[offsets.ids[row]] @ vectors[offsets.ids[col]])
        assert score == pytest.approx(expected, rel=1e-4)


def test_legacy_recommend_matches_a_recommend_query_in_local_mode(
    grpc_server: GrpcServer, clients: tuple[QdrantClient, QdrantClient, str]
) -> None:
    """``Points/Recommend`` (the Go / Java clients' call) by raw stub."""
    _, local, name = clients
    ids = [q.PointId(num=n) for n in (1, 5)]
    request = q.RecommendPoints(
        collection_name=name, positive=ids, negative=[q.PointId(num=2)], limit=5
    )
    with grpc.insecure_channel(grpc_server.target) as channel:
        batch = q.RecommendBatchPoints(collection_name=name, recommend_points=[request])
        stub = q.PointsStub(channel)
        single, batched = stub.Recommend(request).result, stub.RecommendBatch(batch).result[0]
    example = models.RecommendInput(
        positive=[1, 5], negative=[2], strategy=models.RecommendStrategy.AVERAGE_VECTOR
    )
    expected = local.query_points(name, query=models.RecommendQuery(recommend=example), limit=5)
    want = [p.id for p in expected.points]
    assert [p.id.num for p in single] == [p.id.num for p in batched.result] == want


def test_legacy_search_groups_match_local_mode(
    grpc_server: GrpcServer, clients: tuple[QdrantClient, QdrantClient, str]
) -> None:
    _, local, name = clients
    vector = np.random.default_rng(5).standard_normal(DIM).astype(np.float32)
    request = q.SearchPointGroups(
        collection_name=name, vector=vector.tolist(), group_by="group", limit=3, group_size=2
    )
    with grpc.insecure_channel(grpc_server.target) as channel:
        groups = q.PointsStub(channel).SearchGroups(request).result.groups
    expected = local.query_points_groups(
        name, query=vector.tolist(), group_by="group", limit=3, group_size=2
    ).groups
    got = [(g.id.unsigned_value, [p.id.num for p in g.hits]) for g in groups]
    assert got == [(g.id, [p.id for p in g.hits]) for g in expected]


def test_legacy_discover_matches_a_discover_query_in_local_mode(
    grpc_server: GrpcServer, clients: tuple[QdrantClient, QdrantClient, str]
) -> None:
    _, local, name = clients
    pair = q.ContextExamplePair(
        positive=q.VectorExample(id=q.PointId(num=3)),
        negative=q.VectorExample(id=q.PointId(num=4)),
    )
    target = q.TargetVector(single=q.VectorExample(id=q.PointId(num=10)))
    request = q.DiscoverPoints(collection_name=name, target=target, context=[pair], limit=5)
    with grpc.insecure_channel(grpc_server.target) as channel:
        batch = q.DiscoverBatchPoints(collection_name=name, discover_points=[request])
        stub = q.PointsStub(channel)
        single, batched = stub.Discover(request).result, stub.DiscoverBatch(batch).result[0]
    query = models.DiscoverQuery(
        discover=models.DiscoverInput(
            target=10, context=[models.ContextPair(positive=3, negative=4)]
        )
    )
    want = [p.id for p in local.query_points(name, query=query, limit=5).points]
    assert [p.id.num for p in single] == [p.id.num for p in batched.result] == want
