"""A batch alike but for its vectors (``requests.AlikeQueries``) is answered as the same
queries one by one: over sealed and appendable segments with deleted rows, filtered or
not, paged, thresholded, with payloads or with multi-vectors (which take the per-search
path), and its bare hits come back as pages of one batch's columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.metrics import Distance
from server.engine.collection import Collection, PointsSelection
from server.engine.config import CollectionConfig, VectorParams
from server.engine.filters import parse_filter
from server.engine.payload import PayloadSelector
from server.engine.requests import AlikeQueries, Query
from server.engine.results import HitPage
from server.errors import BadRequest

DIM = 4
RNG = np.random.default_rng(11)
VECTORS = RNG.normal(size=(45, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(6, DIM)).round(3).tolist()
DELETED = [0, 1, 2, 30, 31]


def filled(tmp_path: Path, params: VectorParams) -> Collection:
    """45 points in sealed segments of 20 plus an appendable tail, 5 of them deleted."""
    config = CollectionConfig(vectors={"": params}, named_vectors=False).with_updates(
        optimizers_config={"indexing_threshold": 20}
    )
    collection = Collection.create("c", tmp_path, config)
    for start in range(0, 45, 15):
        ids = list(range(start, start + 15))
        rows = VECTORS[start : start + 15]
        vectors = [[row.tolist(), (row * 2).tolist()] for row in rows] if params.is_multi else rows
        payloads = [{"odd": i % 2 == 1, "n": i} for i in ids]
        collection.upsert(ids, list(np.asarray(vectors).tolist()), payloads)
    collection.delete(PointsSelection(ids=list(DELETED)))
    return collection


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[Collection]:
    opened = filled(tmp_path, VectorParams(size=DIM, distance=Distance.COSINE))
    yield opened
    opened.close()


ODD = parse_filter({"must": [{"key": "odd", "match": {"value": True}}]})
TEMPLATES = [
    Query(limit=5),
    Query(limit=3, offset=2, filter=ODD),
    Query(limit=50, score_threshold=0.3),
    Query(limit=4, offset=100),
    Query(limit=4, with_payload=PayloadSelector.of("all"), with_vector=True),
    Query(limit=2, explain=True),
]


def answers(results: list[Any]) -> list[list[tuple[Any, ...]]]:
    return [[tuple(hit) for hit in result.points] for result in results]


def plans(results: list[Any]) -> list[Any]:
    """Each result's plans, but for their times."""
    return [
        None if r.explain is None else [{**p, "time_ms": None} for p in r.explain] for r in results
    ]


@pytest.mark.parametrize("template", TEMPLATES)
def test_an_alike_batch_is_answered_as_its_queries_one_by_one(
    collection: Collection, template: Query
) -> None:
    batch = AlikeQueries(template.for_vector(QUERIES[0]), QUERIES)
    one_by_one = [template.for_vector(vector) for vector in QUERIES]
    together = collection.query(batch)
    assert answers(together) == answers(collection.query(one_by_one))
    assert plans(together) == plans(collection.query(one_by_one))
    assert not any(DELETED.count(hit[0]) for result in answers(together) for hit in result)
    bare = (
        batch.one_search and template.with_vector is False and template.with_payload.mode == "none"
    )
    assert all(isinstance(result.points, HitPage) for result in together) == bare


def test_an_alike_batch_reads_as_its_queries() -> None:
    template = Query(vector=QUERIES[0], limit=3, filter=ODD)
    batch = AlikeQueries(template, QUERIES)
    assert len(batch) == len(QUERIES)
    assert batch[2] == Query(vector=QUERIES[2], limit=3, filter=ODD)
    assert list(batch) == [template.for_vector(v) for v in QUERIES]
    assert batch[1:3] == [batch[1], batch[2]]
    assert batch.one_search
    assert not AlikeQueries(Query(vector=QUERIES[0], explain=True), QUERIES).one_search


def test_a_wrong_vector_in_an_alike_batch_is_refused_as_one_by_one(collection: Collection) -> None:
    vectors = [QUERIES[0], QUERIES[1][:3]]
    errors = []
    for queries in (AlikeQueries(Query(vector=vectors[0]), vectors),
                    [Query(vector=v) for v in vectors]):  # fmt: skip
        with pytest.raises(BadRequest) as refused:
            collection.query(queries)
        errors.append(str(refused.value))
    assert errors[0] == errors[1] and "expected dim: 4, got 3" in errors[0]


def test_an_alike_multi_vector_batch_takes_the_per_search_path(tmp_path: Path) -> None:
    params = VectorParams(
        size=DIM, distance=Distance.DOT, multivector_config={"comparator": "max_sim"}
    )
    collection = filled(tmp_path, params)
    try:
        sets = [[vector, vector[::-1]] for vector in QUERIES]
        batch = AlikeQueries(Query(vector=sets[0], limit=4), sets)
        together = collection.query(batch)
        assert answers(together) == answers(collection.query(list(batch)))
        assert all(type(result.points) is list and len(result.points) == 4 for result in together)
    finally:
        collection.close()
