"""qdrant-client's ``models.Document`` with the ``qdrant/bm25`` model, embedded by the server.

``QdrantClient(cloud_inference=True)`` sends a Document as it is (``{"text", "model",
"options"}``) where a vector goes, instead of embedding it locally with fastembed; Quiver
tokenizes the text and computes BM25 weights itself, and the sparse vector's ``idf``
modifier weighs terms by how rare they are among the live points. Local mode cannot be the
reference here (it refuses ``cloud_inference`` and would need fastembed's model download),
so the tests assert what BM25 implies: the document holding the rare query word first,
only documents sharing a word returned, stems matched, deletions taking effect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient, models

from tests.frameworks import fakes
from tests.frameworks.compare import point_ids

pytestmark = pytest.mark.integration

IDS = point_ids(len(fakes.CORPUS))
BM25 = "qdrant/bm25"


@pytest.fixture
def client(quiver_url: str) -> Iterator[QdrantClient]:
    client = QdrantClient(url=quiver_url, cloud_inference=True)
    yield client
    client.close()


def document(text: str) -> models.Document:
    return models.Document(text=text, model=BM25)


@pytest.fixture
def collection(client: QdrantClient) -> str:
    """Dense ``dense`` and sparse ``bm25`` (idf) vectors; each point's bm25 is its text."""
    name = f"doc-{uuid.uuid4().hex[:12]}"
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=fakes.DIM, distance="Cosine")},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    points = [
        models.PointStruct(
            id=point_id,
            vector={"dense": fakes.dense(text), "bm25": document(text)},
            payload={"text": text, "topic": topic},
        )
        for point_id, text, topic in zip(IDS, fakes.CORPUS, fakes.TOPICS, strict=True)
    ]
    client.upsert(name, points, wait=True)
    return name


def keyword_ids(client: QdrantClient, collection: str, text: str, limit: int = 12) -> list[str]:
    hits = client.query_points(collection, query=document(text), using="bm25", limit=limit)
    return [str(point.id) for point in hits.points]


def containing(*words: str) -> set[str]:
    return {IDS[n] for n, text in enumerate(fakes.CORPUS) if set(words) & set(fakes.tokens(text))}


def test_keyword_query_ranks_the_rare_word_first(client: QdrantClient, collection: str) -> None:
    """``city`` is in three texts, ``orchard`` in one: idf puts the orchard text first."""
    found = keyword_ids(client, collection, "orchard city")
    assert found[0] == IDS[0]
    assert set(found) == containing("orchard", "city")


def test_only_texts_sharing_a_word_are_returned(client: QdrantClient, collection: str) -> None:
    assert set(keyword_ids(client, collection, "stadium marathon")) == {IDS[2], IDS[10]}
    assert keyword_ids(client, collection, "zebra xylophone") == []


def test_the_english_stemmer_matches_inflected_forms(client: QdrantClient, collection: str) -> None:
    """Qdrant's bm25 defaults to English stemming: ``apple`` finds ``apples``."""
    assert keyword_ids(client, collection, "apple", limit=3) == [IDS[0]]


def test_stored_vector_is_a_sparse_vector(client: QdrantClient, collection: str) -> None:
    (point,) = client.retrieve(collection, [IDS[3]], with_vectors=["bm25"])
    assert isinstance(point.vector, dict)
    stored = point.vector["bm25"]
    assert isinstance(stored, models.SparseVector)
    assert 0 < len(stored.indices) <= len(fakes.tokens(fakes.CORPUS[3]))
    assert all(value > 0 for value in stored.values)


def test_hybrid_query_fuses_bm25_and_dense(client: QdrantClient, collection: str) -> None:
    query = "trains in tokyo"
    hits = client.query_points(
        collection,
        prefetch=[
            models.Prefetch(query=document(query), using="bm25", limit=5),
            models.Prefetch(query=fakes.dense(query), using="dense", limit=5),
        ],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=3,
    ).points
    assert str(hits[0].id) == IDS[11]
    assert len(hits) == 3


def test_deleted_and_replaced_texts_change_the_answer(
    client: QdrantClient, collection: str
) -> None:
    client.delete(collection, models.PointIdsList(points=[IDS[0]]), wait=True)
    assert IDS[0] not in keyword_ids(client, collection, "orchard city")
    client.upsert(
        collection,
        [models.PointStruct(id=IDS[1], vector={"bm25": document("an orchard of plums")})],
        wait=True,
    )
    assert keyword_ids(client, collection, "orchard", limit=3) == [IDS[1]]
    assert IDS[1] not in keyword_ids(client, collection, "python bytecode")
    assert client.count(collection).count == len(IDS) - 1
