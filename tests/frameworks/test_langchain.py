"""LangChain's ``QdrantVectorStore`` (langchain-qdrant) against a real Quiver server.

Each scenario runs the same calls on a store whose client points at Quiver and on one
whose client is qdrant-client's local mode (``location=":memory:"``), Qdrant's reference
semantics in process, and asserts the same documents in the same order with the same
scores, besides the expected document first. Embeddings are the fakes of ``fakes.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
from qdrant_client import models

from tests.frameworks import fakes
from tests.frameworks.compare import assert_same_ranking, point_ids

pytestmark = pytest.mark.integration

IDS = point_ids(len(fakes.CORPUS))
METADATAS = [{"topic": topic, "n": n} for n, topic in enumerate(fakes.TOPICS)]
StoreMaker = Callable[[RetrievalMode], QdrantVectorStore]


class FakeDense(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [fakes.dense(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return fakes.dense(text)


class FakeSparse(SparseEmbeddings):
    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> SparseVector:
        indices, values = fakes.sparse(text)
        return SparseVector(indices=indices, values=values)


def _store(mode: RetrievalMode, **client: str) -> QdrantVectorStore:
    """The corpus in a new collection made by the framework itself (``from_texts``)."""
    return QdrantVectorStore.from_texts(
        fakes.CORPUS,
        embedding=None if mode == RetrievalMode.SPARSE else FakeDense(),
        sparse_embedding=None if mode == RetrievalMode.DENSE else FakeSparse(),
        retrieval_mode=mode,
        metadatas=METADATAS,
        ids=IDS,
        collection_name=f"lc-{uuid.uuid4().hex[:12]}",
        **client,
    )


@pytest.fixture
def quiver_store(quiver_url: str) -> StoreMaker:
    return lambda mode: _store(mode, url=quiver_url)


@pytest.fixture
def local_store() -> StoreMaker:
    return lambda mode: _store(mode, location=":memory:")


def ranked(results: list[tuple[Document, float]]) -> list[tuple[object, float]]:
    return [(doc.metadata["_id"], score) for doc, score in results]


def ids_of(docs: list[Document]) -> list[object]:
    return [doc.metadata["_id"] for doc in docs]


@pytest.mark.parametrize("mode", [RetrievalMode.DENSE, RetrievalMode.SPARSE, RetrievalMode.HYBRID])
def test_search_finds_the_matching_text_first_as_local_mode_does(
    mode: RetrievalMode, quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    query = "which city is the capital of germany"
    quiver = quiver_store(mode).similarity_search_with_score(query, k=5)
    local = local_store(mode).similarity_search_with_score(query, k=5)
    assert quiver[0][0].page_content == fakes.CORPUS[3]
    assert quiver[0][0].metadata == {**METADATAS[3], "_id": IDS[3], "_collection_name": ANY}
    assert_same_ranking(ranked(quiver), ranked(local))


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


@pytest.mark.parametrize("mode", [RetrievalMode.DENSE, RetrievalMode.SPARSE, RetrievalMode.HYBRID])
def test_filtered_search_keeps_only_the_topic(
    mode: RetrievalMode, quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    query = "a match in the city"
    only_cities = models.Filter(
        must=[models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="city"))]
    )
    quiver = quiver_store(mode).similarity_search_with_score(query, k=4, filter=only_cities)
    local = local_store(mode).similarity_search_with_score(query, k=4, filter=only_cities)
    assert {doc.metadata["topic"] for doc, _ in quiver} == {"city"}
    assert_same_ranking(ranked(quiver), ranked(local))


def test_hybrid_search_with_dbsf_fusion_matches_local_mode(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    """``hybrid_fusion`` swaps RRF for distribution-based score fusion."""
    query, dbsf = "fresh fruit juice", models.FusionQuery(fusion=models.Fusion.DBSF)
    quiver = quiver_store(RetrievalMode.HYBRID)
    got = quiver.similarity_search_with_score(query, k=4, hybrid_fusion=dbsf)
    want = local_store(RetrievalMode.HYBRID).similarity_search_with_score(
        query, k=4, hybrid_fusion=dbsf
    )
    assert got[0][0].page_content == fakes.CORPUS[8]
    assert_same_ranking(ranked(got), ranked(want))
    rrf = quiver.similarity_search_with_score(query, k=4)
    assert [score for _, score in got] != [score for _, score in rrf]


def test_added_texts_are_found_and_deleted_ones_are_gone(quiver_store: StoreMaker) -> None:
    store = quiver_store(RetrievalMode.DENSE)
    new_id = str(uuid.UUID(int=1000))
    store.add_texts(["mango lassi is a yogurt drink with mango"], ids=[new_id])
    assert ids_of(store.similarity_search("mango yogurt drink", k=1)) == [new_id]

    fruit_ids = [IDS[n] for n, topic in enumerate(fakes.TOPICS) if topic == "fruit"]
    assert store.delete([*fruit_ids, new_id]) is True
    left = ids_of(store.similarity_search("sweet ripe fruit juice mango", k=len(fakes.CORPUS)))
    assert set(left) == set(IDS) - set(fruit_ids)
    assert store.client.count(store.collection_name).count == len(IDS) - len(fruit_ids)
    assert store.get_by_ids(fruit_ids) == []
    assert [doc.page_content for doc in store.get_by_ids([IDS[1]])] == [fakes.CORPUS[1]]


MMR_QUERY = "the city match"


def test_mmr_search_matches_local_mode(quiver_store: StoreMaker, local_store: StoreMaker) -> None:
    options = {"k": 4, "fetch_k": 10, "lambda_mult": 0.5}
    quiver = quiver_store(RetrievalMode.DENSE)
    local = local_store(RetrievalMode.DENSE)
    vector = fakes.dense(MMR_QUERY)
    got = quiver.max_marginal_relevance_search_with_score_by_vector(vector, **options)
    want = local.max_marginal_relevance_search_with_score_by_vector(vector, **options)
    assert len(got) == 4
    assert_same_ranking(ranked(got), ranked(want))
    assert ids_of(quiver.max_marginal_relevance_search(MMR_QUERY, **options)) == ids_of(
        [doc for doc, _ in want]
    )


def test_async_mmr_search_matches_local_mode(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    async def search(store: QdrantVectorStore) -> list[Document]:
        return await store.amax_marginal_relevance_search(MMR_QUERY, k=3, fetch_k=8)

    got = asyncio.run(search(quiver_store(RetrievalMode.DENSE)))
    want = asyncio.run(search(local_store(RetrievalMode.DENSE)))
    assert len(got) == 3
    assert ids_of(got) == ids_of(want)


def test_mmr_retriever_matches_local_mode(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    search_kwargs = {"k": 3, "fetch_k": 8, "lambda_mult": 0.25}

    def retrieve(store: QdrantVectorStore) -> list[Document]:
        retriever = store.as_retriever(search_type="mmr", search_kwargs=search_kwargs)
        return retriever.invoke(MMR_QUERY)

    got = retrieve(quiver_store(RetrievalMode.DENSE))
    assert len(got) == 3
    assert ids_of(got) == ids_of(retrieve(local_store(RetrievalMode.DENSE)))


def test_mmr_with_full_diversity_differs_from_plain_search(quiver_store: StoreMaker) -> None:
    """lambda_mult is Qdrant's diversity: at 1.0 the second pick is not the runner-up."""
    store = quiver_store(RetrievalMode.DENSE)
    plain = ids_of(store.similarity_search(MMR_QUERY, k=2))
    diverse = ids_of(store.max_marginal_relevance_search(MMR_QUERY, k=2, lambda_mult=1.0))
    assert diverse[0] == plain[0]
    assert diverse[1] != plain[1]
