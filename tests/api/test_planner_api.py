"""Filtered search through the planner: every strategy, every selectivity, explain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.api.conftest import Api
from tests.api.test_indexing import wait_green

DIM = 16
N = 4000


@pytest.fixture
def indexed(api: Api) -> tuple[Api, np.ndarray]:
    body = {
        "vectors": {"size": DIM, "distance": "Cosine"},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10},
        "optimizers_config": {"indexing_threshold": N, "default_segment_number": 1},
    }
    api.result("PUT", "/collections/f", body)
    xb = np.random.default_rng(21).normal(size=(N, DIM)).astype(np.float32)
    points = [
        {"id": i, "vector": v.tolist(), "payload": {"bucket": i % 1000, "tag": f"t{i % 7}"}}
        for i, v in enumerate(xb)
    ]
    for start in range(0, N, 1000):
        api.result(
            "PUT", "/collections/f/points?wait=true", {"points": points[start : start + 1000]}
        )
    api.result(
        "PUT", "/collections/f/index?wait=true", {"field_name": "bucket", "field_schema": "integer"}
    )
    wait_green(api, "f")
    return api, xb


def selectivity_filter(fraction: float) -> dict[str, Any]:
    return {"must": [{"key": "bucket", "range": {"lt": int(1000 * fraction)}}]}


def exact_ids(xb: np.ndarray, q: np.ndarray, allowed: np.ndarray, k: int = 10) -> list[int]:
    xn = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    scores = xn @ (q / np.linalg.norm(q))
    rows = np.flatnonzero(allowed)
    return rows[np.argsort(-scores[rows], kind="stable")[:k]].tolist()


@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.1, 0.01, 0.001])
@pytest.mark.parametrize("strategy", [None, "exact", "graph", "post_filter"])
def test_every_strategy_reaches_recall_at_every_selectivity(
    indexed: tuple[Api, np.ndarray], fraction: float, strategy: str | None
) -> None:
    api, xb = indexed
    allowed = (np.arange(N) % 1000) < int(1000 * fraction)
    queries = np.random.default_rng(5).normal(size=(20, DIM)).astype(np.float32)
    found_total = hits = 0
    for q in queries:
        body: dict[str, Any] = {
            "query": q.tolist(),
            "limit": 10,
            "filter": selectivity_filter(fraction),
        }
        if strategy:
            body["strategy"] = strategy
        got = [p["id"] for p in api.result("POST", "/collections/f/points/query", body)["points"]]
        want = exact_ids(xb, q, allowed)
        assert all(allowed[i] for i in got)
        assert len(got) == len(want)
        if strategy == "exact":
            assert got == want
        hits += len(set(got) & set(want))
        found_total += len(want)
    assert hits / found_total >= 0.95


def test_explain_reports_the_plan_per_segment(indexed: tuple[Api, np.ndarray]) -> None:
    api, xb = indexed
    body = {
        "query": xb[0].tolist(),
        "limit": 5,
        "filter": selectivity_filter(0.01),
        "explain": True,
    }
    answer = api.result("POST", "/collections/f/points/query", body)
    plans = answer["explain"]
    sealed = [p for p in plans if p["segment"] is not None]
    assert len(sealed) == 1
    assert sealed[0]["candidates"] == 40
    assert sealed[0]["strategy"] == "exact"
    assert sealed[0]["time_ms"] >= 0
    broad = api.result(
        "POST", "/collections/f/points/query", body | {"filter": selectivity_filter(0.8)}
    )
    assert [p["strategy"] for p in broad["explain"] if p["segment"] is not None] == ["post_filter"]
    mid = api.result(
        "POST", "/collections/f/points/query", body | {"filter": selectivity_filter(0.2)}
    )
    graph = next(p for p in mid["explain"] if p["segment"] is not None)
    assert graph["strategy"] == "graph"
    assert graph["ef"] > 100


def test_filter_matching_nothing_is_answered_without_search(
    indexed: tuple[Api, np.ndarray],
) -> None:
    api, xb = indexed
    body = {
        "query": xb[0].tolist(),
        "filter": {"must": [{"key": "tag", "match": {"value": "nope"}}]},
        "explain": True,
    }
    answer = api.result("POST", "/collections/f/points/query", body)
    assert answer["points"] == []
    assert {p["strategy"] for p in answer["explain"]} <= {"none"}
