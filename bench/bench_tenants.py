"""Tenant-filtered search on GloVe-50 (50k) split into unequal tenants, three layouts.

(a) ``plain``: a keyword index on ``tenant``, the main HNSW graph (m 16);
(b) ``colocated``: the same index with ``is_tenant: true``: a build groups each tenant's
    rows into one range, and a tenant under 10% of the segment is scored exactly as a
    slice of the rows;
(c) ``payload_m``: ``is_tenant`` with ``hnsw_config.m: 0, payload_m: 16``: no main
    graph, one graph per tenant above the exact-scan threshold (Qdrant's multitenancy).

The tenants' sizes follow a Zipf law (s = 1.1, seeded), so a few are big and most
are small. ``full_scan_threshold`` is 100 KB (512 vectors of 50 floats) in all three,
so the planner scans a tenant exactly under that size whatever the layout. Queries
(GloVe's held-out words, one tenant each, drawn uniformly over the tenants) go through
the real app in-process, in batches of 100 searches per request; recall@10 against an
exact scan of the tenant's rows in numpy. Reported per layout: build time, q/s (the
median of rounds that alternate the layouts), recall@10 overall and for tenants under
and over the threshold, and what the planner chose (``explain`` on a sample).

    PYTHONPATH=. nice -n 10 python bench/bench_tenants.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from bench_tenant import Api  # the same in-process JSON client
from glove import load

from server.main import create_app
from server.settings import Settings

RESULTS = Path(__file__).parent / "results"
FULL_SCAN_KB = 100
BATCH = 100
LAYOUTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({"m": 16}, {"type": "keyword"}),
    "colocated": ({"m": 16}, {"type": "keyword", "is_tenant": True}),
    "payload_m": ({"m": 0, "payload_m": 16}, {"type": "keyword", "is_tenant": True}),
}


def tenant_of_rows(n: int, tenants: int, seed: int) -> np.ndarray:
    """Each row's tenant: Zipf-sized tenants (every one at least 20 rows), shuffled."""
    weights = 1.0 / np.arange(1, tenants + 1) ** 1.1
    sizes = np.maximum(20, np.floor(weights / weights.sum() * n)).astype(int)
    sizes[0] += n - sizes.sum()
    labels = np.repeat(np.arange(tenants), sizes)
    return np.random.default_rng(seed).permutation(labels)


def build(api: Api, name: str, xb: np.ndarray, tenant: np.ndarray) -> float:
    """Create, index, upsert and wait for the one sealed segment; seconds to green."""
    hnsw, schema = LAYOUTS[name]
    body = {
        "vectors": {"size": xb.shape[1], "distance": "Cosine"},
        "hnsw_config": hnsw | {"ef_construct": 100, "full_scan_threshold": FULL_SCAN_KB},
        "optimizers_config": {"indexing_threshold": len(xb), "default_segment_number": 1},
    }
    api.result("PUT", f"/collections/{name}", body)
    index = {"field_name": "tenant", "field_schema": schema}
    api.result("PUT", f"/collections/{name}/index?wait=true", index)
    started = time.perf_counter()
    for start in range(0, len(xb), 5000):
        points = [
            {"id": i, "vector": xb[i].tolist(), "payload": {"tenant": f"t{tenant[i]}"}}
            for i in range(start, min(len(xb), start + 5000))
        ]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
    while api.result("GET", f"/collections/{name}")["status"] != "green":
        time.sleep(0.1)
    return time.perf_counter() - started


def searches(queries: np.ndarray, picks: np.ndarray, explain: bool) -> list[dict[str, Any]]:
    return [
        {
            "query": q.tolist(),
            "limit": 10,
            "filter": {"must": [{"key": "tenant", "match": {"value": f"t{t}"}}]},
        }
        | ({"explain": True} if explain else {})
        for q, t in zip(queries, picks, strict=True)
    ]


def run(api: Api, name: str, queries: np.ndarray, picks: np.ndarray) -> tuple[float, list[Any]]:
    """q/s over all queries (batches of ``BATCH``) and each query's ids."""
    found: list[Any] = []
    started = time.perf_counter()
    for start in range(0, len(queries), BATCH):
        body = {"searches": searches(queries[start : start + BATCH], picks[start : start + BATCH],
                                     False)}  # fmt: skip
        for answer in api.result("POST", f"/collections/{name}/points/query/batch", body):
            found.append([p["id"] for p in answer["points"]])
    return len(queries) / (time.perf_counter() - started), found


def plans(api: Api, name: str, queries: np.ndarray, picks: np.ndarray) -> dict[str, int]:
    """What the sealed segment's planner chose, on a sample (with ``explain``)."""
    chosen: Counter[str] = Counter()
    for body in searches(queries, picks, True):
        answer = api.result("POST", f"/collections/{name}/points/query", body)
        for plan in answer["explain"]:
            if plan["segment"] is not None and plan["strategy"] != "none":
                graph = "tenant graph" if plan.get("payload_graph") else plan["strategy"]
                slice_ = " (slice)" if "one slice" in plan["reason"] else ""
                chosen[graph + slice_] += 1
    return dict(chosen)


def truth(xb: np.ndarray, tenant: np.ndarray, queries: np.ndarray, picks: np.ndarray) -> list[Any]:
    """Exact top-10 ids of each query among its tenant's rows (vectors are unit length)."""
    out = []
    for q, t in zip(queries, picks, strict=True):
        rows = np.flatnonzero(tenant == t)
        scores = xb[rows] @ q
        out.append(rows[np.argsort(-scores, kind="stable")[:10]].tolist())
    return out


def recall(found: list[Any], exact: list[Any], keep: np.ndarray) -> float:
    pairs = [(f, e) for f, e, k in zip(found, exact, keep, strict=True) if k]
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in pairs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stem", default="tenants_glove50")
    args = parser.parse_args()
    data = load(args.points)
    xb = np.ascontiguousarray(data.base, dtype=np.float32)
    tenant = tenant_of_rows(len(xb), args.tenants, seed=11)
    sizes = np.bincount(tenant, minlength=args.tenants)
    picks = np.random.default_rng(12).integers(0, args.tenants, size=args.queries)
    queries = np.ascontiguousarray(data.queries[: args.queries], dtype=np.float32)
    exact = truth(xb, tenant, queries, picks)
    big = sizes[picks] * xb.shape[1] * 4 >= FULL_SCAN_KB * 1024
    result: dict[str, Any] = {
        "points": len(xb), "tenants": args.tenants, "queries": args.queries,
        "tenant_sizes": {"max": int(sizes.max()), "median": int(np.median(sizes)),
                         "min": int(sizes.min())},
        "over_threshold_tenants": int((sizes * xb.shape[1] * 4 >= FULL_SCAN_KB * 1024).sum()),
        "layouts": {},
    }  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        TestClient(create_app(Settings(data_dir=Path(tmp)))) as client,
    ):
        api = Api(client)
        built = {name: build(api, name, xb, tenant) for name in LAYOUTS}
        rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        answers: dict[str, list[Any]] = {}
        for _ in range(args.rounds):  # layouts alternate: load on this machine drifts
            for name in LAYOUTS:
                run(api, name, queries[:200], picks[:200])  # warm-up
                qps, answers[name] = run(api, name, queries, picks)
                rates[name].append(qps)
        for name in LAYOUTS:
            found = answers[name]
            info = api.result("GET", f"/collections/{name}")
            result["layouts"][name] = {
                "build_s": round(built[name], 1),
                "qps": round(float(np.median(rates[name])), 1),
                "qps_rounds": [round(r, 1) for r in rates[name]],
                "recall": round(recall(found, exact, np.ones_like(big)), 4),
                "recall_small": round(recall(found, exact, ~big), 4),
                "recall_big": round(recall(found, exact, big), 4),
                "plans": plans(api, name, queries[:200], picks[:200]),
                "memory": info.get("memory"),
            }
            print(name, json.dumps(result["layouts"][name]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.stem}.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Tenant layouts, GloVe-50 {len(xb)} points, {args.tenants} Zipf tenants "
        f"(sizes {result['tenant_sizes']}), {args.queries} queries",
        "",
        "| layout | build s | q/s | recall@10 | small tenants | big tenants | plans (200) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["layouts"].items():
        lines.append(
            f"| {name} | {row['build_s']} | {row['qps']} | {row['recall']} | "
            f"{row['recall_small']} | {row['recall_big']} | {row['plans']} |"
        )
    (RESULTS / f"{args.stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
