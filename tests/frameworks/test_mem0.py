"""mem0's Qdrant vector store, built from mem0's default vector-store config pointed at a
real Quiver server, against the same calls over qdrant-client's local mode.

mem0 creates every collection with a dense vector and a ``bm25`` sparse slot (``idf``
modifier) and writes a BM25 vector beside each memory. Its encoder is fastembed's
``Qdrant/bm25`` model, which needs a download: the tests give the store a fake encoder
(``fakes.sparse`` behind fastembed's ``embed`` interface) instead. No LLM and no embedder:
this is the vector-store layer ``Memory`` calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from mem0.utils.factory import VectorStoreFactory
from mem0.vector_stores.configs import VectorStoreConfig
from mem0.vector_stores.qdrant import Qdrant
from qdrant_client import QdrantClient

from tests.frameworks import fakes
from tests.frameworks.compare import assert_same_ranking, point_ids

pytestmark = pytest.mark.integration

IDS = point_ids(len(fakes.CORPUS))
USERS = ["alice", "bob"] * (len(fakes.CORPUS) // 2)
StoreMaker = Callable[[], Qdrant]


@dataclass
class _Sparse:
    indices: np.ndarray
    values: np.ndarray


class FakeBm25:
    """fastembed's ``SparseTextEmbedding.embed`` shape, with ``fakes.sparse`` inside."""

    def embed(self, texts: list[str]) -> Iterator[_Sparse]:
        for text in texts:
            indices, values = fakes.sparse(text)
            yield _Sparse(np.array(indices, dtype=np.int64), np.array(values, dtype=np.float32))


def _store(**where: Any) -> Qdrant:
    """mem0's default vector store (provider ``qdrant``) with the corpus as memories."""
    settings = {
        "collection_name": f"mem0-{uuid.uuid4().hex[:12]}",
        "embedding_model_dims": fakes.DIM,
    }
    config = VectorStoreConfig(config=settings | where)
    assert config.provider == "qdrant"
    store = VectorStoreFactory.create(config.provider, config.config)
    store._bm25_encoder = FakeBm25()  # what fastembed would be, without its model download
    payloads = [
        {"data": text, "user_id": user, "topic": topic}
        for text, user, topic in zip(fakes.CORPUS, USERS, fakes.TOPICS, strict=True)
    ]
    store.insert([fakes.dense(text) for text in fakes.CORPUS], payloads, IDS)
    return store


@pytest.fixture
def quiver_store(quiver_url: str) -> StoreMaker:
    host, port = quiver_url.removeprefix("http://").split(":")
    return lambda: _store(host=host, port=int(port))


@pytest.fixture
def local_store() -> StoreMaker:
    return lambda: _store(client=QdrantClient(location=":memory:"))


def ranked(points: list[Any]) -> list[tuple[object, float]]:
    return [(point.id, point.score) for point in points]


def test_default_config_makes_a_collection_with_a_bm25_slot(quiver_store: StoreMaker) -> None:
    store = quiver_store()
    params = store.col_info().config.params
    assert params.vectors.size == fakes.DIM
    assert params.sparse_vectors is not None
    assert params.sparse_vectors["bm25"].modifier == "idf"
    assert store._has_bm25_slot
    assert store.client.count(store.collection_name).count == len(IDS)


def test_semantic_search_finds_the_memory_as_local_mode_does(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    query = "rust memory ownership"
    got = quiver_store().search(query, fakes.dense(query), top_k=4)
    want = local_store().search(query, fakes.dense(query), top_k=4)
    assert got[0].id == IDS[5]
    assert got[0].payload["data"] == fakes.CORPUS[5]
    assert_same_ranking(ranked(got), ranked(want))


def test_search_filtered_by_user_sees_only_their_memories(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    query, only_bob = "a city with trains", {"user_id": "bob"}
    got = quiver_store().search(query, fakes.dense(query), top_k=3, filters=only_bob)
    want = local_store().search(query, fakes.dense(query), top_k=3, filters=only_bob)
    assert got[0].id == IDS[11]
    assert {point.payload["user_id"] for point in got} == {"bob"}
    assert_same_ranking(ranked(got), ranked(want))


def test_keyword_search_uses_the_bm25_slot_as_local_mode_does(
    quiver_store: StoreMaker, local_store: StoreMaker
) -> None:
    """Sparse vectors with Qdrant's ``idf`` modifier: rare words weigh more."""
    query = "the tennis match"
    got = quiver_store().keyword_search(query, top_k=4)
    want = local_store().keyword_search(query, top_k=4)
    assert got is not None, "mem0 swallows the error and answers None"
    assert got[0].id == IDS[6]
    assert_same_ranking(ranked(got), ranked(want))


def test_list_get_update_and_delete(quiver_store: StoreMaker) -> None:
    store = quiver_store()
    points, _next = store.list(filters={"user_id": "alice"})
    assert sorted(point.id for point in points) == sorted(IDS[0::2])
    assert store.get(IDS[3]).payload["data"] == fakes.CORPUS[3]

    text = "lisbon is a hilly city by the ocean with yellow trams"
    payload = {"data": text, "user_id": "bob", "topic": "city"}
    store.update(IDS[3], vector=fakes.dense(text), payload=payload)
    assert store.search(text, fakes.dense(text), top_k=1)[0].id == IDS[3]
    assert store.keyword_search("hilly lisbon trams", top_k=1)[0].id == IDS[3]

    store.delete(IDS[3])
    assert store.get(IDS[3]) is None
    assert IDS[3] not in [point.id for point in store.search(text, fakes.dense(text), top_k=12)]
    assert store.client.count(store.collection_name).count == len(IDS) - 1
