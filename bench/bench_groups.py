"""Grouped search and facets on GloVe 6B 50-d (issue 16's targets), over HTTP.

The 390,000 base vectors (the `glove.py` recipe: L2-normalised, seeded split) are loaded
with two payload fields: `cat`, a keyword drawn uniformly from 1,000 values (seeded), and
`sel`, an integer in [0, 10) (`sel == 0` is a 10% filter); both indexed. Then:

- plain `/points/query`, limit 10, and `/points/query/groups` with `group_by: cat`,
  `group_size: 3`, `limit: 10`, both at the same `hnsw_ef`, single requests from one
  client; recall@10 of the plain query against the exact top-10, and the groups' recall
  (hits found / hits of the exact grouped answer, computed here with numpy);
- facet over `cat` (limit 10) under the 10% filter vs `points/count` under the same filter:
  p50 latency of each.

Plain and grouped queries take turns in blocks of 25 (facet and count request by
request), so a busy shared machine slows both sides of each ratio alike. Both are
measured on the settled collection: after `green`, the run waits until the segment
layout has not changed for `SETTLE_S` (`harness/http.py`'s `wait_settled`; longer than
the server's 10 s idle seal), so the idle tail's seal and the merge that follows (a
minute of graph building on 390k points) no longer run under the measured queries, as
they did before.

Targets: groups ≥ 0.5x the plain query's queries/s at the same recall; facet p50 ≤ 5x a
filtered count's. Results: `bench/results/groups_facets_glove50.{md,json}`.

    .venv/bin/python bench/bench_groups.py            # 390k points (~3 min on 2 cores)
    .venv/bin/python bench/bench_groups.py --base 50000 --queries 100   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import glove
import httpx
import numpy as np
from harness.http import expect_ok, wait_green, wait_settled
from harness.server import QuiverServer, headers

CATEGORIES = 1_000
GROUP_SIZE, GROUPS = 3, 10
EF = 128
BLOCK = 25
RESULTS = Path(__file__).resolve().parent / "results"
NAME = "glove"


def dataset(n_base: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Base and query vectors, by the `glove.py` recipe (normalised, seed 42 split)."""
    vectors = np.load(glove.source_path()).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    order = np.random.default_rng(glove.SEED).permutation(len(vectors))
    queries = vectors[order[: glove.N_QUERIES]][:n_queries]
    return vectors[order[glove.N_QUERIES :]][:n_base], queries


def load(client: httpx.Client, base: np.ndarray, cats: np.ndarray, sel: np.ndarray) -> None:
    config = {"vectors": {"size": base.shape[1], "distance": "Dot"}}
    expect_ok(client.put(f"/collections/{NAME}", json=config), "create")
    for field, kind in (("cat", "keyword"), ("sel", "integer")):
        body = {"field_name": field, "field_schema": kind}
        expect_ok(client.put(f"/collections/{NAME}/index?wait=true", json=body), "index")
    for start in range(0, len(base), 2_000):
        rows = range(start, min(start + 2_000, len(base)))
        batch = {
            "ids": list(rows),
            "vectors": base[start : rows.stop].tolist(),
            "payloads": [{"cat": f"c{cats[i]}", "sel": int(sel[i])} for i in rows],
        }
        expect_ok(client.put(f"/collections/{NAME}/points?wait=true", json={"batch": batch}), "up")


def exact_groups(scores: np.ndarray, cats: np.ndarray) -> dict[int, list[int]]:
    """The exact grouped answer: first GROUPS categories in score order, top hits each."""
    order = np.argsort(-scores)
    groups: dict[int, list[int]] = {}
    for row in order.tolist():
        cat = int(cats[row])
        if cat not in groups and len(groups) == GROUPS:
            if all(len(hits) >= GROUP_SIZE for hits in groups.values()):
                break
            continue
        hits = groups.setdefault(cat, [])
        if len(hits) < GROUP_SIZE:
            hits.append(row)
    return groups


def timed(client: httpx.Client, path: str, bodies: list[dict[str, Any]]) -> tuple[float, list[Any]]:
    """Seconds for all ``bodies`` (one after another) and their results."""
    answers = []
    started = time.perf_counter()
    for body in bodies:
        answers.append(expect_ok(client.post(path, json=body), path))
    return time.perf_counter() - started, answers


def taking_turns(
    client: httpx.Client, runs: dict[str, tuple[str, list[dict[str, Any]]]]
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Seconds per kind of request and the answers, the kinds taking turns in blocks of
    ``BLOCK`` requests (in alternating order): the shared cores' load then weighs on every
    kind alike, so their ratio holds even when the machine is busy."""
    seconds = dict.fromkeys(runs, 0.0)
    answers: dict[str, list[Any]] = {kind: [] for kind in runs}
    count = len(next(iter(runs.values()))[1])
    for turn, start in enumerate(range(0, count, BLOCK)):
        kinds = list(runs) if turn % 2 == 0 else list(reversed(runs))
        for kind in kinds:
            path, bodies = runs[kind]
            spent, found = timed(client, path, bodies[start : start + BLOCK])
            seconds[kind] += spent
            answers[kind] += found
    return seconds, answers


def latencies(
    client: httpx.Client, requests: dict[str, tuple[str, dict[str, Any]]], n: int
) -> dict[str, list[float]]:
    """Milliseconds of ``n`` requests of each kind, the kinds taking turns request by
    request."""
    out: dict[str, list[float]] = {kind: [] for kind in requests}
    for _ in range(n):
        for kind, (path, body) in requests.items():
            started = time.perf_counter()
            expect_ok(client.post(path, json=body), path)
            out[kind].append((time.perf_counter() - started) * 1000)
    return out


def measure(
    client: httpx.Client, base: np.ndarray, queries: np.ndarray, cats: np.ndarray
) -> dict[str, Any]:
    params = {"hnsw_ef": EF}
    plain = [{"query": q.tolist(), "limit": 10, "params": params} for q in queries]
    grouped = [
        {"query": q.tolist(), "group_by": "cat", "group_size": GROUP_SIZE, "limit": GROUPS,
         "params": params}
        for q in queries
    ]  # fmt: skip
    timed(client, f"/collections/{NAME}/points/query", plain[:20])  # warm up
    timed(client, f"/collections/{NAME}/points/query/groups", grouped[:20])
    seconds, answers = taking_turns(
        client,
        {
            "plain": (f"/collections/{NAME}/points/query", plain),
            "groups": (f"/collections/{NAME}/points/query/groups", grouped),
        },
    )
    plain_s, plain_answers = seconds["plain"], answers["plain"]
    groups_s, group_answers = seconds["groups"], answers["groups"]
    plain_recall, group_recall = [], []
    for q, plain_answer, group_answer in zip(queries, plain_answers, group_answers, strict=True):
        scores = base @ q
        truth = set(np.argsort(-scores)[:10].tolist())
        plain_recall.append(len(truth & {p["id"] for p in plain_answer["points"]}) / 10)
        exact = exact_groups(scores, cats)
        wanted = {(c, row) for c, rows in exact.items() for row in rows}
        found = {(int(g["id"][1:]), h["id"]) for g in group_answer["groups"] for h in g["hits"]}
        group_recall.append(len(wanted & found) / len(wanted))
    return {
        "plain_qps": len(queries) / plain_s,
        "groups_qps": len(queries) / groups_s,
        "plain_recall": float(np.mean(plain_recall)),
        "groups_recall": float(np.mean(group_recall)),
    }


def facet_vs_count(client: httpx.Client, n: int) -> dict[str, Any]:
    flt = {"must": [{"key": "sel", "match": {"value": 0}}]}
    found = latencies(
        client,
        {
            "facet": (f"/collections/{NAME}/facet", {"key": "cat", "filter": flt}),
            "count": (f"/collections/{NAME}/points/count", {"filter": flt, "exact": True}),
        },
        n,
    )
    return {
        "facet_p50_ms": statistics.median(found["facet"]),
        "count_p50_ms": statistics.median(found["count"]),
    }


def markdown(results: dict[str, Any]) -> str:
    r = results
    lines = [
        f"# Groups and facets: GloVe 6B 50-d, {r['n_base']:,} points, {r['n_queries']} queries",
        "",
        f"{r['when']} · 1 HTTP client, single requests · hnsw_ef {EF} · `cat`: 1,000 values",
        "",
        "| measurement | queries/s | recall | p50 ms |",
        "|---|--:|--:|--:|",
        f"| plain query, limit 10 | {r['plain_qps']:.1f} | {r['plain_recall']:.4f} | - |",
        f"| groups: group_by cat, group_size 3, limit 10 | {r['groups_qps']:.1f} | "
        f"{r['groups_recall']:.4f} | - |",
        f"| facet cat, 10% filter | - | exact | {r['facet_p50_ms']:.2f} |",
        f"| count, 10% filter | - | exact | {r['count_p50_ms']:.2f} |",
        "",
        "| check | value | target | |",
        "|---|--:|--:|---|",
    ]
    for check in r["checks"]:
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(f"| {check['name']} | {check['value']:.2f} | {check['target']} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=int, default=390_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    base, queries = dataset(args.base, args.queries)
    rng = np.random.default_rng(16)
    cats, sel = rng.integers(0, CATEGORIES, len(base)), rng.integers(0, 10, len(base))
    with QuiverServer() as server, httpx.Client(base_url=server.url, headers=headers(),
                                                timeout=120) as client:  # fmt: skip
        load(client, base, cats, sel)
        wait_green(client, 900, "build", NAME)
        wait_settled(client, collection=NAME)
        results: dict[str, Any] = measure(client, base, queries, cats)
        results |= facet_vs_count(client, 50)
    results |= {
        "n_base": len(base),
        "n_queries": len(queries),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    results["checks"] = [
        _check("groups q/s / plain q/s", results["groups_qps"] / results["plain_qps"], 0.5, True),
        _check(
            "facet p50 / count p50", results["facet_p50_ms"] / results["count_p50_ms"], 5, False
        ),
    ]
    stem = "groups_facets_glove50" if len(base) == 390_000 else f"groups_facets_{len(base)}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))


def _check(name: str, value: float, target: float, at_least: bool) -> dict[str, Any]:
    passed = value >= target if at_least else value <= target
    return {"name": name, "value": value, "target": f"{'≥' if at_least else '≤'} {target}",
            "passed": bool(passed)}  # fmt: skip


if __name__ == "__main__":
    main()
