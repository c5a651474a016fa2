"""Tenant-filtered query time and recall, with vs without ``is_tenant``.

Two collections of the same seeded synthetic points (one sealed, indexed segment
each; a keyword ``group`` of equal tenants), the keyword index plain in one and
``is_tenant`` in the other. ``full_scan_threshold`` is set below one tenant's vectors,
so without the option a tenant filter walks the graph (``ef`` widened by the planner)
and with it the planner's tenant rule scores the tenant's rows exactly. Queries go
through the real app in-process; reported per query: wall time of the request and
the sealed segment's plan time (``explain``), and recall@10 against exact search.

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_tenant.py   # 20,000 points, 40 tenants
    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_tenant.py --points 2000 --tenants 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from server.main import create_app
from server.settings import Settings

DIM = 128


class Api:
    """The in-process app's JSON results (no HTTP socket: both sides pay the same)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def result(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()["result"]


def wait_green(api: Api, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while api.result("GET", f"/collections/{name}")["status"] != "green":
        assert time.monotonic() < deadline, f"{name} not green after {timeout}s"
        time.sleep(0.1)


def create(api: Api, name: str, schema: Any, xb: np.ndarray, tenants: int) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Cosine"},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 100},
        "optimizers_config": {"indexing_threshold": len(xb), "default_segment_number": 1},
    }
    api.result("PUT", f"/collections/{name}", body)
    for start in range(0, len(xb), 2000):
        chunk = xb[start : start + 2000]
        points = [
            {
                "id": start + i,
                "vector": v.tolist(),
                "payload": {"group": f"t{(start + i) % tenants}"},
            }
            for i, v in enumerate(chunk)
        ]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
    index = {"field_name": "group", "field_schema": schema}
    api.result("PUT", f"/collections/{name}/index?wait=true", index)
    wait_green(api, name, timeout=600)


def run(api: Api, name: str, queries: np.ndarray, tenants: int, exact: bool) -> list[Any]:
    """Per query: (ids, wall ms, plan ms, strategy)."""
    out = []
    for i, q in enumerate(queries):
        body = {
            "query": q.tolist(),
            "limit": 10,
            "filter": {"must": [{"key": "group", "match": {"value": f"t{i % tenants}"}}]},
            "params": {"exact": exact},
            "explain": True,
        }
        start = time.perf_counter()
        answer = api.result("POST", f"/collections/{name}/points/query", body)
        wall = (time.perf_counter() - start) * 1000
        plan = next(p for p in answer["explain"] if p["segment"] is not None)
        ids = [p["id"] for p in answer["points"]]
        out.append((ids, wall, plan["time_ms"], plan["strategy"]))
    return out


def report(label: str, rows: list[Any], truth: list[Any]) -> None:
    recall = np.mean([len(set(r[0]) & set(t[0])) / 10 for r, t in zip(rows, truth, strict=True)])
    strategies = sorted({r[3] for r in rows})
    print(
        f"{label}: wall {np.median([r[1] for r in rows]):.3f} ms, plan "
        f"{np.median([r[2] for r in rows]):.3f} ms (medians), recall@10 {recall:.4f}, "
        f"strategy {strategies}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    xb = rng.normal(size=(args.points, DIM)).astype(np.float32)
    queries = rng.normal(size=(args.queries, DIM)).astype(np.float32)
    with (
        tempfile.TemporaryDirectory() as tmp,
        TestClient(create_app(Settings(data_dir=Path(tmp)))) as client,
    ):
        api = Api(client)
        create(api, "plain", "keyword", xb, args.tenants)
        create(api, "tenant", {"type": "keyword", "is_tenant": True}, xb, args.tenants)
        print(
            f"{args.points} points x {DIM}, {args.tenants} tenants of {args.points // args.tenants}"
        )
        run(api, "plain", queries[:20], args.tenants, False)  # warm-up
        run(api, "tenant", queries[:20], args.tenants, False)
        truth = run(api, "plain", queries, args.tenants, True)
        report("without is_tenant", run(api, "plain", queries, args.tenants, False), truth)
        report("with is_tenant   ", run(api, "tenant", queries, args.tenants, False), truth)


if __name__ == "__main__":
    main()
