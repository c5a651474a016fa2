"""The graph walk of custom-score queries (each sealed HNSW segment walked with the
score itself, ``index/graph_walk.py``) against the exact scan, on an indexed collection
small enough to search exactly unless told not to (``full_scan_threshold`` 10 KB):
recall@10 per query kind, measured, with the bound it must keep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.indexing import create, data, upsert

NAME = "reco"
POINTS = 3000
QUERIES = 20


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One indexed collection for every query kind: the build is most of this module's
    time, and the queries only read it."""
    with make_client(tmp_path_factory.mktemp("reco")) as client:
        yield Api(client)


@pytest.fixture(scope="module")
def indexed(api: Api) -> str:
    create(api, NAME, hnsw_config={"full_scan_threshold": 10})
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


def _top(api: Api, query: dict[str, Any], exact: bool) -> list[tuple[Any, float]]:
    body = {"query": query, "limit": 10, "params": {"exact": exact, "hnsw_ef": 128}}
    answer = api.result("POST", f"/collections/{NAME}/points/query", body | {"explain": True})
    plans = [plan["strategy"] for plan in answer["explain"][0]["plans"] if plan["segment"]]
    assert plans and set(plans) == ({"exact"} if exact else {"graph"})
    return [(p["id"], p["score"]) for p in answer["points"]]


@pytest.mark.parametrize(
    ("kind", "bound"),
    [("best_score", 0.95), ("sum_scores", 0.95), ("discover", 0.9), ("context", 0.9)],
)
def test_graph_walk_recall_against_exact(api: Api, indexed: str, kind: str, bound: float) -> None:
    """Recall counts a walked point as found when it scores at least the exact 10th
    best: a context score is 0 for every point on the right side of all pairs, so its
    top-10 is a tie among many points and ids alone would not say whether it is right."""
    rng = np.random.default_rng(5)
    hits = total = 0
    for query in _queries(kind, rng):
        exact = _top(api, query, True)
        graph = _top(api, query, False)
        assert len(graph) == len(exact)
        tenth = exact[-1][1]
        hits += sum(score >= tenth - 1e-9 for _, score in graph)
        total += len(exact)
    recall = hits / total
    print(f"{kind}: recall@10 {recall:.3f}")
    assert recall >= bound
