"""Filtered search through the planner: every strategy, every selectivity, explain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green

DIM = 16
N = 4000


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, np.ndarray]]:
    """One indexed collection shared by the read-only tests (building it is the slow part)."""
    with make_client(tmp_path_factory.mktemp("planner")) as client:
        yield _build(Api(client))


def _build(api: Api) -> tuple[Api, np.ndarray]:
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
    assert sealed[0]["estimated"] == 40  # from the integer payload index, before any scan
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


def test_indexed_and_scanned_filters_agree_after_random_writes(api: Api) -> None:
    """Field ``a`` is indexed, its twin ``b`` is not: every filter must count the same."""
    body = {
        "vectors": {"size": 2, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 150, "default_segment_number": 1},
    }
    api.result("PUT", "/collections/twin", body)
    for field, schema in (("a", "integer"), ("k", "keyword")):
        api.result("PUT", "/collections/twin/index", {"field_name": field, "field_schema": schema})
    rng = np.random.default_rng(8)
    base = "/collections/twin/points"
    for step in range(30):
        ids = rng.integers(0, 400, size=40).tolist()
        values = rng.integers(0, 20, size=40).tolist()
        points = [
            {
                "id": i,
                "vector": [1.0, 0.0],
                "payload": {"a": v, "b": v, "k": f"v{v % 5}", "j": f"v{v % 5}"},
            }
            for i, v in zip(ids, values, strict=True)
        ]
        api.result("PUT", f"{base}?wait=true", {"points": points})
        if step % 3 == 0:
            api.result("POST", f"{base}/delete", {"points": rng.integers(0, 400, size=15).tolist()})
        if step % 4 == 1:
            edit = {"payload": {"a": 99, "b": 99}, "points": []}
            existing = [
                p["id"] for p in api.result("POST", f"{base}/scroll", {"limit": 5})["points"]
            ]
            api.result("POST", f"{base}/payload", edit | {"points": existing})
    wait_green(api, "twin")
    for lo, hi in [(0, 5), (3, 17), (99, 100), (19, 20)]:
        counts = [
            api.result(
                "POST",
                f"{base}/count",
                {"filter": {"must": [{"key": key, "range": {"gte": lo, "lt": hi}}]}},
            )
            for key in ("a", "b")
        ]
        assert counts[0] == counts[1]
    for word in ("v0", "v3"):
        counts = [
            api.result(
                "POST",
                f"{base}/count",
                {"filter": {"must_not": [{"key": key, "match": {"value": word}}]}},
            )
            for key in ("k", "j")
        ]
        assert counts[0] == counts[1]
