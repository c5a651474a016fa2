"""LlamaIndex's ``QdrantVectorStore`` against a real Quiver server, as local mode answers.

``enable_hybrid=True`` with a fake sparse encoder makes the store create a collection
with a named dense and a named sparse vector and send both; its hybrid mode queries
both in one batch and fuses client-side. The same retriever calls run on a store over
qdrant-client's local mode (``location=":memory:"``) and must give the same nodes in the
same order with the same scores. No LLM: retrievers only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import AsyncQdrantClient, QdrantClient

from tests.frameworks import fakes
from tests.frameworks.compare import assert_same_ranking, point_ids

pytestmark = pytest.mark.integration

IDS = point_ids(len(fakes.CORPUS))
IndexMaker = Callable[[bool], VectorStoreIndex]


class FakeEmbedding(BaseEmbedding):
    """``fakes.dense`` for queries and texts alike."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return fakes.dense(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return fakes.dense(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return fakes.dense(text)


def fake_sparse(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """LlamaIndex's SparseEncoderCallable: a batch of texts -> (indices, values) per text."""
    encoded = [fakes.sparse(text) for text in texts]
    return [indices for indices, _ in encoded], [values for _, values in encoded]


def _nodes() -> list[TextNode]:
    return [
        TextNode(id_=node_id, text=text, metadata={"topic": topic})
        for node_id, text, topic in zip(IDS, fakes.CORPUS, fakes.TOPICS, strict=True)
    ]


def _index(
    client: QdrantClient, hybrid: bool, aclient: AsyncQdrantClient | None = None
) -> VectorStoreIndex:
    """The corpus through the framework's own path: the store creates its collection."""
    store = QdrantVectorStore(
        collection_name=f"li-{uuid.uuid4().hex[:12]}",
        client=client,
        aclient=aclient,
        enable_hybrid=hybrid,
        sparse_doc_fn=fake_sparse if hybrid else None,
        sparse_query_fn=fake_sparse if hybrid else None,
    )
    context = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex(_nodes(), storage_context=context, embed_model=FakeEmbedding())


@pytest.fixture
def quiver_index(quiver_url: str) -> IndexMaker:
    return lambda hybrid: _index(QdrantClient(url=quiver_url), hybrid)


@pytest.fixture
def local_index() -> IndexMaker:
    return lambda hybrid: _index(QdrantClient(location=":memory:"), hybrid)


def ranked(results: list[NodeWithScore]) -> list[tuple[object, float]]:
    return [(hit.node.node_id, float(hit.score or 0.0)) for hit in results]


def retrieve(
    index: VectorStoreIndex, query: str, mode: str, **options: object
) -> list[NodeWithScore]:
    retriever = index.as_retriever(vector_store_query_mode=mode, **options)
    return retriever.retrieve(query)


@pytest.mark.parametrize(
    ("hybrid", "mode"),
    [(False, "default"), (True, "default"), (True, "sparse"), (True, "hybrid")],
)
def test_retriever_finds_the_matching_text_first_as_local_mode_does(
    hybrid: bool, mode: str, quiver_index: IndexMaker, local_index: IndexMaker
) -> None:
    query = "how does python run source code"
    options = {"similarity_top_k": 4, "sparse_top_k": 6}
    got = retrieve(quiver_index(hybrid), query, mode, **options)
    want = retrieve(local_index(hybrid), query, mode, **options)
    assert got[0].node.node_id == IDS[1]
    assert got[0].node.get_content() == fakes.CORPUS[1]
    assert_same_ranking(ranked(got), ranked(want))


@pytest.mark.parametrize("mode", ["default", "hybrid"])
def test_metadata_filter_keeps_only_the_topic(
    mode: str, quiver_index: IndexMaker, local_index: IndexMaker
) -> None:
    only_sport = MetadataFilters(filters=[ExactMatchFilter(key="topic", value="sport")])
    options = {"similarity_top_k": 3, "filters": only_sport}
    got = retrieve(quiver_index(True), "the city match", mode, **options)
    want = retrieve(local_index(True), "the city match", mode, **options)
    assert {hit.node.metadata["topic"] for hit in got} == {"sport"}
    assert len(got) == 3
    assert_same_ranking(ranked(got), ranked(want))


def test_deleted_nodes_are_no_longer_retrieved(quiver_index: IndexMaker) -> None:
    index = quiver_index(True)
    store = index.vector_store
    assert isinstance(store, QdrantVectorStore)
    city_ids = [IDS[n] for n, topic in enumerate(fakes.TOPICS) if topic == "city"]
    store.delete_nodes(city_ids)
    everything = len(fakes.CORPUS)
    for mode in ("default", "sparse", "hybrid"):
        hits = retrieve(index, "berlin paris tokyo city", mode, similarity_top_k=everything)
        assert not {hit.node.node_id for hit in hits} & set(city_ids), mode
    assert store.client.count(store.collection_name).count == everything - len(city_ids)
    assert [node.node_id for node in store.get_nodes([IDS[0], city_ids[0]])] == [IDS[0]]


@pytest.mark.parametrize("mode", ["default", "sparse", "hybrid"])
def test_async_retrieval_answers_as_sync_does(mode: str, quiver_url: str) -> None:
    """``aretrieve`` goes through the store's AsyncQdrantClient (``aquery``)."""
    index = _index(QdrantClient(url=quiver_url), True, AsyncQdrantClient(url=quiver_url))
    query, options = "sweet yellow banana", {"similarity_top_k": 3, "sparse_top_k": 5}
    retriever = index.as_retriever(vector_store_query_mode=mode, **options)
    got = asyncio.run(retriever.aretrieve(query))
    assert got[0].node.node_id == IDS[4]
    assert_same_ranking(ranked(got), ranked(retriever.retrieve(query)))
