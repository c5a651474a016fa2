"""One search request's memory is bounded (issue 18, finding 4): result buffers are
sized by what a collection can return, not by ``limit + offset``, and a batch whose
results would still exceed ``QUIVER_MAX_REQUEST_RESULT_BYTES`` is a 400 before any
search runs."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import Api, make_client

POINTS = 1_000
DIM = 8


def fill(api: Api, shards: int, points: int = POINTS) -> np.ndarray:
    """A Dot collection ``big`` of random points 0..points-1; returns their vectors."""
    api.result(
        "PUT",
        "/collections/big",
        {"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": shards},
    )
    vectors = np.random.default_rng(7).normal(size=(points, DIM)).astype(np.float32)
    batch = {"ids": list(range(points)), "vectors": vectors.tolist()}
    api.result("PUT", "/collections/big/points?wait=true", {"batch": batch})
    return vectors


def searches(queries: np.ndarray, limit: int, offset: int) -> dict[str, Any]:
    return {"searches": [{"vector": q.tolist(), "limit": limit, "offset": offset} for q in queries]}


def oracle_ids(vectors: np.ndarray, queries: np.ndarray, offset: int) -> list[list[int]]:
    """Brute force: every point by descending dot product, the page from ``offset``."""
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")
    return [row[offset:].tolist() for row in order]


@pytest.mark.parametrize("shards", [1, 2])
def test_a_huge_page_on_a_small_collection_is_fast_and_small(tmp_path: Path, shards: int) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        vectors = fill(api, shards)
        queries = np.random.default_rng(8).normal(size=(1_000, DIM)).astype(np.float32)
        body = searches(queries, 100_000, 100_000)
        tracemalloc.start()
        started = time.perf_counter()
        try:
            status, answer = api.post("/collections/big/points/search/batch", body)
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert status == 200, answer
        assert answer["result"] == [[] for _ in queries]  # the offset is past every point
        assert peak < 200 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
        assert elapsed < 10, f"{elapsed:.1f} s"
        tail = api.result(
            "POST", "/collections/big/points/search/batch", searches(queries[:50], 100_000, 990)
        )
        assert [[hit["id"] for hit in hits] for hits in tail] == oracle_ids(
            vectors, queries[:50], 990
        )


@pytest.mark.parametrize("shards", [1, 2])
@pytest.mark.parametrize("route", ["search/batch", "query/batch"])
def test_a_batch_over_the_result_budget_is_a_400(tmp_path: Path, shards: int, route: str) -> None:
    with make_client(tmp_path, max_request_result_bytes=1_000_000) as client:
        api = Api(client)
        vectors = fill(api, shards)
        queries = np.random.default_rng(9).normal(size=(100, DIM)).astype(np.float32)
        body = searches(queries, 1_000, 0)
        if route == "query/batch":
            body = {"searches": [{"query": s["vector"], "limit": 1_000} for s in body["searches"]]}
        before = api.result("GET", "/collections/big")
        status, answer = api.post(f"/collections/big/points/{route}", body)
        assert status == 400, answer
        assert "QUIVER_MAX_REQUEST_RESULT_BYTES" in answer["status"]["error"]
        assert "1,000,000" in answer["status"]["error"]
        assert api.result("GET", "/collections/big")["points_count"] == before["points_count"]
        small = api.result(
            "POST", "/collections/big/points/search/batch", searches(queries[:10], 5, 0)
        )
        assert [[hit["id"] for hit in hits] for hits in small] == [
            ids[:5] for ids in oracle_ids(vectors, queries[:10], 0)
        ]
