"""qdrant-client's grouped search and facets against a real Quiver process, checked
against its local mode: what Haystack's ``group_by`` path (``query_points_groups``)
and a "how many per category" facet call send over REST."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.integration

NAME = "chunks"
DIM = 8


def _points() -> list[models.PointStruct]:
    rng = np.random.default_rng(16)
    return [
        models.PointStruct(
            id=i,
            vector=rng.normal(size=DIM).tolist(),
            payload={"meta": {"file_id": f"f{i % 9}"}, "page": i % 4, "lang": ["en", "de"][i % 2]},
        )
        for i in range(200)
    ]


@pytest.fixture(scope="module")
def clients(module_server_url: str) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    remote = QdrantClient(url=module_server_url, prefer_grpc=False, timeout=30)
    local = QdrantClient(":memory:")
    for client in (remote, local):
        params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        client.create_collection(NAME, vectors_config=params)
        client.upsert(NAME, _points(), wait=True)
    for key, kind in (("meta.file_id", "keyword"), ("page", "integer")):  # local mode needs none
        remote.create_payload_index(NAME, key, models.PayloadSchemaType(kind))
    yield remote, local
    remote.close()
    local.close()


def _shape(answer: models.GroupsResult) -> list[tuple[object, list[object]]]:
    return [(group.id, [hit.id for hit in group.hits]) for group in answer.groups]


@pytest.mark.parametrize(
    "flt",
    [
        None,
        models.Filter(
            must=[models.FieldCondition(key="lang", match=models.MatchValue(value="de"))]
        ),
    ],
)
def test_query_points_groups_matches_local_mode(
    clients: tuple[QdrantClient, QdrantClient], flt: models.Filter | None
) -> None:
    remote, local = clients
    query = np.random.default_rng(1).normal(size=DIM).tolist()
    answers = [
        client.query_points_groups(
            NAME,
            group_by="meta.file_id",
            query=query,
            limit=4,
            group_size=3,
            query_filter=flt,
            with_payload=True,
        )
        for client in (remote, local)
    ]
    assert _shape(answers[0]) == _shape(answers[1])
    for ours, theirs in zip(answers[0].groups, answers[1].groups, strict=True):
        assert [h.payload for h in ours.hits] == [h.payload for h in theirs.hits]
        assert [h.score for h in ours.hits] == pytest.approx([h.score for h in theirs.hits])


def test_facet_matches_local_mode(clients: tuple[QdrantClient, QdrantClient]) -> None:
    remote, local = clients
    for key in ("meta.file_id", "page"):
        assert remote.facet(NAME, key, limit=5).hits == local.facet(NAME, key, limit=5).hits
