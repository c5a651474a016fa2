"""qdrant-client's ``models.Document`` against a real Quiver process: with
``cloud_inference=True`` the client sends documents to the server instead of embedding
them with fastembed, and Quiver embeds them with its own BM25 (no embedding service)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient, models

from tests.helpers.bm25 import CORPUS, QUERIES, reference

pytestmark = pytest.mark.integration

BM25 = "Qdrant/bm25"


@pytest.fixture
def client(module_server_url: str) -> Iterator[QdrantClient]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the server's version is not Qdrant's
        client = QdrantClient(url=module_server_url, cloud_inference=True, timeout=30)
    yield client
    client.close()


def create(client: QdrantClient, name: str) -> None:
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.DOT)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    points = [
        models.PointStruct(
            id=i,
            vector={"bm25": models.Document(text=text, model=BM25), "dense": [1.0, i / 10]},
            payload={"text": text},
        )
        for i, text in CORPUS.items()
    ]
    client.upsert(name, points=points, wait=True)


def test_document_upsert_and_query_rank_as_bm25(client: QdrantClient) -> None:
    create(client, "client_docs")
    for query in QUERIES:
        hits = client.query_points(
            "client_docs", query=models.Document(text=query, model=BM25), using="bm25", limit=50
        ).points
        want = reference(CORPUS, query)
        assert sorted(hit.id for hit in hits) == sorted(want), query
        for hit in hits:
            assert hit.score == pytest.approx(want[int(hit.id)], rel=1e-5)


def test_document_options_travel_to_the_server(client: QdrantClient) -> None:
    create(client, "client_options")

    def hits(options: models.Bm25Config | None) -> list[int]:
        query = models.Document(text="Foxes", model=BM25, options=options)
        found = client.query_points("client_options", query=query, using="bm25", limit=50)
        return sorted(int(hit.id) for hit in found.points)

    assert hits(None) == sorted(reference(CORPUS, "Foxes"))
    # unstemmed, "foxes" is no token of the stored (stemmed) documents
    assert hits(models.Bm25Config(language="none")) == []


def test_a_document_for_an_unknown_model_is_refused_by_the_server(client: QdrantClient) -> None:
    create(client, "client_unknown")
    with pytest.raises(Exception, match="qdrant/bm25"):
        client.query_points(
            "client_unknown",
            query=models.Document(text="dogs", model="sentence-transformers/all-MiniLM-L6-v2"),
            using="bm25",
        )


def test_hybrid_prefetch_of_a_document_and_a_dense_vector_fuses_both(
    client: QdrantClient,
) -> None:
    from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

    create(client, "client_hybrid")
    keyword = models.Document(text="quick brown fox", model=BM25)
    dense = [1.0, 0.5]
    stages = [
        models.Prefetch(query=keyword, using="bm25", limit=20),
        models.Prefetch(query=dense, using="dense", limit=20),
    ]
    fused = client.query_points(
        "client_hybrid",
        prefetch=stages,
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=10,
    ).points
    apart = [
        client.query_points("client_hybrid", query=stage.query, using=stage.using, limit=20).points
        for stage in stages
    ]
    expected = reciprocal_rank_fusion(apart, limit=10)
    # RRF ties (equal ranks in one list each) may come in either order: compare scores by id
    assert {hit.id: hit.score for hit in fused} == pytest.approx(
        {hit.id: hit.score for hit in expected}
    )
