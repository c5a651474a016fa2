"""``is_tenant`` honoured by the planner: a small tenant's rows are scored exactly,
with the same answers as without the option, and ``explain`` names the tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green

DIM = 64  # 60 rows x 256 B = 15 KB: over the minimum full_scan_threshold (10 KB)
N = 2000
SMALL, BIG = "small", "big"  # 60 rows (3%) and 1200 rows (60%) of the one segment


def _group(i: int) -> str:
    return SMALL if i < 60 else BIG if i < 1260 else f"g{i % 20}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Two collections of the same points: ``t`` with ``is_tenant``, ``p`` without."""
    with make_client(tmp_path_factory.mktemp("tenant")) as client:
        api = Api(client)
        xb = np.random.default_rng(17).normal(size=(N, DIM)).astype(np.float32)
        points = [
            {"id": i, "vector": v.tolist(), "payload": {"group": _group(i)}}
            for i, v in enumerate(xb)
        ]
        for name, schema in (("t", {"type": "keyword", "is_tenant": True}), ("p", "keyword")):
            body = {
                "vectors": {"size": DIM, "distance": "Cosine"},
                "hnsw_config": {"m": 16, "ef_construct": 64, "full_scan_threshold": 10},
                "optimizers_config": {"indexing_threshold": N, "default_segment_number": 1},
            }
            api.result("PUT", f"/collections/{name}", body)
            api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
            index = {"field_name": "group", "field_schema": schema}
            api.result("PUT", f"/collections/{name}/index?wait=true", index)
            wait_green(api, name)
        yield api


def _query(api: Api, name: str, tenant: str, q: np.ndarray) -> dict[str, Any]:
    body = {
        "query": q.tolist(),
        "limit": 10,
        "filter": {"must": [{"key": "group", "match": {"value": tenant}}]},
        "params": {"exact": name == "p"},
        "explain": True,
    }
    answer: dict[str, Any] = api.result("POST", f"/collections/{name}/points/query", body)
    return answer


def _sealed(answer: dict[str, Any]) -> dict[str, Any]:
    plans = [p for p in answer["explain"] if p["segment"] is not None]
    assert len(plans) == 1
    plan: dict[str, Any] = plans[0]
    return plan


def test_a_small_tenant_is_scored_exactly_with_the_same_answers(api: Api) -> None:
    for q in np.random.default_rng(3).normal(size=(5, DIM)).astype(np.float32):
        tenant, plain = _query(api, "t", SMALL, q), _query(api, "p", SMALL, q)
        plan = _sealed(tenant)
        assert (plan["strategy"], plan["tenant"], plan["candidates"]) == (
            "exact",
            "group=small",
            60,
        )
        assert "tenant holds" in plan["reason"]
        assert "as one slice" in plan["reason"]  # the index, made after the points, re-laid them
        got = [(p["id"], p["score"]) for p in tenant["points"]]
        assert got == [(p["id"], p["score"]) for p in plain["points"]]


def test_without_is_tenant_the_same_filter_walks_the_graph(api: Api) -> None:
    body = {
        "query": [1.0] * DIM,
        "limit": 10,
        "filter": {"must": [{"key": "group", "match": {"value": SMALL}}]},
        "explain": True,
    }
    plan = _sealed(api.result("POST", "/collections/p/points/query", body))
    assert (plan["strategy"], plan["tenant"]) == ("graph", None)


def test_a_big_tenant_falls_back_to_the_graph(api: Api) -> None:
    plan = _sealed(_query(api, "t", BIG, np.ones(DIM, dtype=np.float32)))
    assert (plan["strategy"], plan["tenant"], plan["candidates"]) == (
        "post_filter",
        "group=big",
        1200,
    )
