"""Sparse search must answer what qdrant-client's local mode answers: the same hits, in
the same order, with the same scores (float tolerance), with and without ``idf``, with
filters, pages and thresholds, after overwrites and deletes, and across a seal by the
background build worker.

Ties: two hits with equal scores may come back in either order (local mode's order for
ties is numpy's argsort's), so each Quiver hit is checked against local mode's score of
that point, and the score sequence against local mode's page.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api, make_client, wait_green

VOCAB = 12
NAMES = ("plain", "weighted")
_counter = itertools.count()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with tempfile.TemporaryDirectory() as folder, make_client(Path(folder)) as client:
        yield Api(client)


@pytest.fixture(scope="module")
def local() -> QdrantClient:
    return QdrantClient(":memory:")


def sparse_vectors() -> st.SearchStrategy[dict[str, list[Any]]]:
    """Few terms from a small vocabulary (so points share terms), weights that tie now
    and then."""
    weight = st.sampled_from([0.5, 1.0, 2.0]) | st.floats(-3, 5, allow_nan=False, width=32)
    pairs = st.lists(
        st.tuples(st.integers(0, VOCAB - 1), weight), max_size=5, unique_by=lambda t: t[0]
    )
    return pairs.map(lambda p: {"indices": [i for i, _ in p], "values": [v for _, v in p]})


point = st.fixed_dictionaries(
    {
        "id": st.integers(0, 25),
        "vector": st.fixed_dictionaries(
            {}, optional={"plain": sparse_vectors(), "weighted": sparse_vectors()}
        ),
        "payload": st.fixed_dictionaries({"g": st.integers(0, 3)}),
    }
)
operation = st.one_of(
    st.tuples(st.just("upsert"), st.lists(point, min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 25), min_size=1, max_size=6)),
)
query = st.fixed_dictionaries(
    {
        "vector": sparse_vectors().filter(lambda v: len(v["indices"]) > 0),
        "using": st.sampled_from(NAMES),
        "limit": st.integers(1, 8),
        "offset": st.integers(0, 3),
        "group": st.none() | st.integers(0, 3),
        "threshold": st.none() | st.floats(-2, 4, allow_nan=False),
    }
)


def _create(api: Api, local: QdrantClient, name: str, seal: bool) -> None:
    sparse = {"plain": {}, "weighted": {"modifier": "idf"}}
    body: dict[str, Any] = {"sparse_vectors": sparse}
    if seal:
        body["optimizers_config"] = {"indexing_threshold": 6}
    api.result("PUT", f"/collections/{name}", body)
    local.create_collection(
        name,
        vectors_config={},
        sparse_vectors_config={
            "plain": models.SparseVectorParams(),
            "weighted": models.SparseVectorParams(modifier=models.Modifier.IDF),
        },
    )


def _apply(api: Api, local: QdrantClient, name: str, op: tuple[str, Any]) -> None:
    kind, arg = op
    if kind == "delete":
        api.result("POST", f"/collections/{name}/points/delete?wait=true", {"points": arg})
        local.delete(name, models.PointIdsList(points=arg))
        return
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": arg})
    local.upsert(
        name,
        [
            models.PointStruct(
                id=p["id"],
                vector={n: models.SparseVector(**v) for n, v in p["vector"].items()},
                payload=p["payload"],
            )
            for p in arg
        ],
    )


def _compare(api: Api, local: QdrantClient, name: str, q: dict[str, Any]) -> None:
    flt = None if q["group"] is None else {"must": [{"key": "g", "match": {"value": q["group"]}}]}
    body = {
        "query": q["vector"],
        "using": q["using"],
        "limit": q["limit"],
        "offset": q["offset"],
        "filter": flt,
        "score_threshold": q["threshold"],
    }
    got = api.result("POST", f"/collections/{name}/points/query", body)["points"]
    local_filter = None if flt is None else models.Filter(**flt)
    vector = models.SparseVector(**q["vector"])

    def ask(limit: int, offset: int) -> list[models.ScoredPoint]:
        return local.query_points(
            name, vector, using=q["using"], limit=limit, offset=offset,
            query_filter=local_filter, score_threshold=q["threshold"],
        ).points  # fmt: skip

    page = ask(q["limit"], q["offset"])
    every = {p.id: p.score for p in ask(1000, 0)}
    assert len(got) == len(page), (got, page)
    for hit, want in zip(got, page, strict=True):
        assert hit["score"] == pytest.approx(want.score, rel=1e-4, abs=1e-4)
        assert hit["id"] in every
        assert hit["score"] == pytest.approx(every[hit["id"]], rel=1e-4, abs=1e-4)
    assert len({h["id"] for h in got}) == len(got)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(operation, min_size=1, max_size=5),
    queries=st.lists(query, min_size=1, max_size=4),
    seal=st.booleans(),
)
def test_sparse_search_matches_qdrant_local(
    api: Api,
    local: QdrantClient,
    ops: list[tuple[str, Any]],
    queries: list[dict[str, Any]],
    seal: bool,
) -> None:
    name = f"sparse{next(_counter)}"
    _create(api, local, name, seal)
    try:
        for op in ops:  # a search between writes: the appendable index grows, or is rebuilt
            _apply(api, local, name, op)
            _compare(api, local, name, queries[0])
        if seal:
            wait_green(api, name)
        for q in queries:
            _compare(api, local, name, q)
    finally:
        api.result("DELETE", f"/collections/{name}")
        local.delete_collection(name)
