"""Haystack's ``QdrantDocumentStore`` (qdrant-haystack) and its three retrievers against a
real Quiver server, as the same calls answer over qdrant-client's local mode.

``use_sparse_embeddings=True`` makes the store create a collection with a named dense and a
named sparse vector; the hybrid retriever sends both as prefetches fused with RRF. Documents
carry the fake embeddings of ``fakes.py``; the retrievers get the query's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from haystack import Document
from haystack.dataclasses import SparseEmbedding
from haystack_integrations.components.retrievers.qdrant import (
    QdrantEmbeddingRetriever,
    QdrantHybridRetriever,
    QdrantSparseEmbeddingRetriever,
)
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from tests.frameworks import fakes
from tests.frameworks.compare import assert_same_ranking

pytestmark = pytest.mark.integration

DOC_IDS = [f"doc-{n}" for n in range(len(fakes.CORPUS))]
StoreMaker = Callable[[], QdrantDocumentStore]
QUERY = "fresh orange juice in the morning"
ORANGE = DOC_IDS[8]


def _documents() -> list[Document]:
    return [
        Document(
            id=doc_id,
            content=text,
            meta={"topic": topic},
            embedding=fakes.dense(text),
            sparse_embedding=sparse_embedding(text),
        )
        for doc_id, text, topic in zip(DOC_IDS, fakes.CORPUS, fakes.TOPICS, strict=True)
    ]


def sparse_embedding(text: str) -> SparseEmbedding:
    indices, values = fakes.sparse(text)
    return SparseEmbedding(indices=indices, values=values)


def _store(sparse: bool = True, **where: Any) -> QdrantDocumentStore:
    """A new index holding the corpus, created by the store itself."""
    store = QdrantDocumentStore(
        **where,
        index=f"hs-{uuid.uuid4().hex[:12]}",
        embedding_dim=fakes.DIM,
        use_sparse_embeddings=sparse,
        similarity="cosine",
        wait_result_from_api=True,
    )
    assert store.write_documents(_documents()) == len(fakes.CORPUS)
    return store


@pytest.fixture
def quiver_store(quiver_url: str) -> StoreMaker:
    return lambda: _store(url=quiver_url)


@pytest.fixture
def local_store() -> StoreMaker:
    return lambda: _store(location=":memory:")


def ranked(documents: list[Document]) -> list[tuple[object, float]]:
    return [(doc.id, float(doc.score or 0.0)) for doc in documents]


def dense_hits(store: QdrantDocumentStore, **options: Any) -> list[Document]:
    retriever = QdrantEmbeddingRetriever(document_store=store, top_k=5)
    return retriever.run(query_embedding=fakes.dense(QUERY), **options)["documents"]


def sparse_hits(store: QdrantDocumentStore, **options: Any) -> list[Document]:
    retriever = QdrantSparseEmbeddingRetriever(document_store=store, top_k=5)
    return retriever.run(query_sparse_embedding=sparse_embedding(QUERY), **options)["documents"]


def hybrid_hits(store: QdrantDocumentStore, **options: Any) -> list[Document]:
    retriever = QdrantHybridRetriever(document_store=store, top_k=5)
    result = retriever.run(
        query_embedding=fakes.dense(QUERY),
        query_sparse_embedding=sparse_embedding(QUERY),
        **options,
    )
    return result["documents"]


RETRIEVERS = {"dense": dense_hits, "sparse": sparse_hits, "hybrid": hybrid_hits}


@pytest.mark.parametrize("kind", list(RETRIEVERS))
def test_retriever_finds_the_matching_text_first_as_local_mode_does(
    kind: str, quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    got = RETRIEVERS[kind](quiver_store())
    want = RETRIEVERS[kind](local_store())
    assert got[0].id == ORANGE
    assert got[0].content == fakes.CORPUS[8]
    assert got[0].meta == {"topic": "fruit"}
    assert_same_ranking(ranked(got), ranked(want))


@pytest.mark.parametrize("kind", list(RETRIEVERS))
def test_filtered_retrieval_keeps_only_the_topic(
    kind: str, quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    only_code = {"field": "meta.topic", "operator": "==", "value": "code"}
    got = RETRIEVERS[kind](quiver_store(), filters=only_code)
    want = RETRIEVERS[kind](local_store(), filters=only_code)
    assert {doc.meta["topic"] for doc in got} == {"code"}
    assert_same_ranking(ranked(got), ranked(want))


def test_dense_only_store_answers_as_local_mode(quiver_url: str) -> None:
    """``use_sparse_embeddings=False``: one unnamed dense vector, the embedding retriever."""
    got = dense_hits(_store(sparse=False, url=quiver_url))
    want = dense_hits(_store(sparse=False, location=":memory:"))
    assert got[0].id == ORANGE
    assert got[0].embedding is None
    assert_same_ranking(ranked(got), ranked(want))


def test_hybrid_rrf_parameters_match_local_mode(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    """``rrf_k`` and ``rrf_weights`` (sparse, dense) become Qdrant's parametrised RRF."""
    options = {"rrf_k": 10, "rrf_weights": [3.0, 1.0]}
    got = hybrid_hits(quiver_store(), **options)
    want = hybrid_hits(local_store(), **options)
    assert got[0].id == ORANGE
    assert_same_ranking(ranked(got), ranked(want))


def test_deleted_documents_are_not_retrieved(quiver_store: StoreMaker) -> None:
    store = quiver_store()
    fruit = [
        doc_id for doc_id, topic in zip(DOC_IDS, fakes.TOPICS, strict=True) if topic == "fruit"
    ]
    store.delete_documents(fruit)
    assert store.count_documents() == len(DOC_IDS) - len(fruit)
    for kind, hits in RETRIEVERS.items():
        assert not {doc.id for doc in hits(store, top_k=len(DOC_IDS))} & set(fruit), kind
    assert [doc.id for doc in store.get_documents_by_id([fruit[0], DOC_IDS[1]])] == [DOC_IDS[1]]
