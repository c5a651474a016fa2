"""The graph path of custom-score queries (candidates from each generating example's
HNSW neighbours, then exact re-scoring) against the exact scan, on an indexed
collection: recall@10 per query kind, measured, with the bound it must keep."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, wait_green
from tests.helpers.indexing import create, data, upsert

NAME = "reco"
POINTS = 3000
QUERIES = 20


@pytest.fixture
def indexed(api: Api) -> str:
    create(api, NAME)
    upsert(api, NAME, data(POINTS))
    wait_green(api, NAME)
    segments = api.result("GET", f"/collections/{NAME}/segments")
    assert any(s["index"] == "hnsw" for s in segments if s["kind"] == "sealed")
    return NAME


def _queries(kind: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for _ in range(QUERIES):
        ids = rng.choice(POINTS, size=5, replace=False).tolist()
        if kind in ("best_score", "sum_scores"):
            query = {"recommend": {"positive": ids[:3], "negative": ids[3:], "strategy": kind}}
        elif kind == "discover":
            pairs = [
                {"positive": ids[1], "negative": ids[2]},
                {"positive": ids[3], "negative": ids[4]},
            ]
            query = {"discover": {"target": ids[0], "context": pairs}}
        else:
            query = {"context": [{"positive": ids[0], "negative": ids[1]}]}
        out.append(query)
    return out


def _ids(api: Api, query: dict[str, Any], exact: bool) -> list[Any]:
    body = {"query": query, "limit": 10, "params": {"exact": exact, "hnsw_ef": 128}}
    points = api.result("POST", f"/collections/{NAME}/points/query", body)["points"]
    return [p["id"] for p in points]


@pytest.mark.parametrize(
    ("kind", "bound"), [("best_score", 0.95), ("sum_scores", 0.95), ("discover", 0.9)]
)
def test_graph_candidates_recall_against_exact(
    api: Api, indexed: str, kind: str, bound: float
) -> None:
    rng = np.random.default_rng(5)
    hits = total = 0
    for query in _queries(kind, rng):
        exact = _ids(api, query, True)
        graph = _ids(api, query, False)
        hits += len(set(exact) & set(graph))
        total += len(exact)
    recall = hits / total
    print(f"{kind}: recall@10 {recall:.3f}")
    assert recall >= bound
