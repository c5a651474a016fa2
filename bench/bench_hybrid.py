"""Hybrid search quality and latency: dense, BM25, and RRF / DBSF fusion via `prefetch`.

On the Debian package descriptions (`text_embeddings.py`'s cache: MiniLM vectors of the long
descriptions), a synopsis of a base package is the query and that package's own long
description its one relevant document. One collection holds both halves of every point:
a dense vector `dense` (384-d, Cosine) and a sparse vector `bm25` (`modifier: idf`) given
as a document that the server tokenizes and weighs itself. Queries:

* dense:  `{"query": <MiniLM of the synopsis>, "using": "dense"}`;
* BM25:   `{"query": {"text": <synopsis>, "model": "qdrant/bm25", ...}, "using": "bm25"}`;
* RRF / DBSF: `{"prefetch": [dense, BM25] (each `limit` --prefetch-limit),
  "query": {"fusion": "rrf" | "dbsf"}}`.

Every method answers every query in batches of 100 (recall@10, nDCG@10); then single
queries from one client, the four methods taking turns query by query, give each
method's p50. Check: a hybrid query's p50 <= dense p50 + BM25 p50 + 0.5 ms. The quality
numbers are reported as measured. Saves `bench/results/hybrid/hybrid_debian.*`
(`bench/data/hybrid_debian_quick.*` with `--quick`).

    .venv/bin/python bench/bench_hybrid.py            # 56,000 documents, 2,000 queries
    .venv/bin/python bench/bench_hybrid.py --quick    # 5,000 documents, 300 queries
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import keyword_data as kd
import numpy as np
import orjson
import text_embeddings as te
from harness.cli import RESULTS_DIR, SERVER_LOG, add_common_options, log, new_parser, run_and_finish
from harness.data import exact_top_k
from harness.http import QUIET_S, expect_ok, wait_green
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line, rss_bytes
from harness.metrics import latency_summary, padded_ids, recall_at_k
from harness.results import check_at_most, checks_table
from harness.server import QuiverServer, headers

COLLECTION = "debian"
DENSE, SPARSE = "dense", "bm25"
K = 10
SEARCH_BATCH = 100
INGEST_BATCH = 500
QUICK_DOCS, QUICK_QUERIES = 5_000, 300
TARGET_MARGIN_MS = 0.5
METHODS = ("dense", "bm25", "rrf", "dbsf")

Body = Callable[[int], dict[str, Any]]


# --------------------------------------------------------------------------- request bodies


def method_bodies(
    vectors: np.ndarray, texts: Sequence[str], options: dict[str, Any], prefetch_limit: int
) -> dict[str, Body]:
    """Per method, the query body of query `q` (without `limit`, added by the caller)."""

    def dense(q: int, limit: int = K) -> dict[str, Any]:
        return {"query": vectors[q].tolist(), "using": DENSE, "limit": limit}

    def bm25(q: int, limit: int = K) -> dict[str, Any]:
        return {"query": kd.document(texts[q], options), "using": SPARSE, "limit": limit}

    def fused(fusion: str) -> Body:
        return lambda q: {
            "prefetch": [dense(q, prefetch_limit), bm25(q, prefetch_limit)],
            "query": {"fusion": fusion},
            "limit": K,
        }

    return {"dense": dense, "bm25": bm25, "rrf": fused("rrf"), "dbsf": fused("dbsf")}


# --------------------------------------------------------------------------- ingest


def create_and_ingest(
    client: httpx.Client, base: np.ndarray, docs: Sequence[str], options: dict[str, Any]
) -> dict[str, Any]:
    create = {
        "vectors": {DENSE: {"size": int(base.shape[1]), "distance": "Cosine"}},
        "sparse_vectors": {SPARSE: {"modifier": "idf"}},
    }
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    bodies = [
        orjson.dumps(
            {"points": [
                {"id": i, "vector": {DENSE: base[i], SPARSE: kd.document(docs[i], options)}}
                for i in range(start, min(start + INGEST_BATCH, len(docs)))
            ]},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for start in range(0, len(docs), INGEST_BATCH)
    ]  # fmt: skip
    started = time.perf_counter()
    for body in bodies:
        expect_ok(client.put(f"/collections/{COLLECTION}/points?wait=true", content=body), "upsert")
    seconds = time.perf_counter() - started
    green = wait_green(client, 1200.0, "after ingest", COLLECTION)
    return {
        "points": len(docs),
        "seconds": round(seconds, 3),
        "points_per_s": round(len(docs) / seconds, 1),
        "seconds_to_green": green["seconds"],
    }


# --------------------------------------------------------------------------- measurements


def answer_all(client: httpx.Client, body: Body, n_queries: int) -> tuple[list[list[int]], float]:
    """Every query in batches of 100; returns the ids per query and the seconds taken."""
    time.sleep(QUIET_S)
    found: list[list[int]] = []
    started = time.perf_counter()
    for start in range(0, n_queries, SEARCH_BATCH):
        searches = [body(q) for q in range(start, min(start + SEARCH_BATCH, n_queries))]
        response = client.post(
            f"/collections/{COLLECTION}/points/query/batch",
            content=orjson.dumps({"searches": searches}),
        )
        for result in expect_ok(response, "query batch"):
            found.append([int(point["id"]) for point in result["points"][:K]])
    return found, time.perf_counter() - started


def single_latencies(
    client: httpx.Client, bodies: dict[str, Body], n_queries: int
) -> dict[str, list[float]]:
    """One client; per query every method once, the order rotating from query to query, so
    that all methods see the same load and the same warm caches."""
    encoded = {m: [orjson.dumps(bodies[m](q)) for q in range(n_queries)] for m in METHODS}
    url = f"/collections/{COLLECTION}/points/query"
    for method in METHODS:  # warm-up
        expect_ok(client.post(url, content=encoded[method][0]), f"{method} warm-up")
    time.sleep(QUIET_S)
    latencies: dict[str, list[float]] = {m: [] for m in METHODS}
    for q in range(n_queries):
        for i in range(len(METHODS)):
            method = METHODS[(q + i) % len(METHODS)]
            before = time.perf_counter()
            response = client.post(url, content=encoded[method][q])
            latencies[method].append(time.perf_counter() - before)
            expect_ok(response, f"{method} query")
    return latencies


def run(args: argparse.Namespace) -> dict[str, Any]:
    n_docs = args.docs or (QUICK_DOCS if args.quick else kd.BASE_SIZE)
    n_queries = args.queries or (QUICK_QUERIES if args.quick else 2000)
    corpus = kd.load_corpus(n_docs, n_queries)
    base = te.load_debian(n_docs).base
    log(f"{n_docs:,} documents; embedding {len(corpus.queries):,} synopses (cached)")
    query_vectors, _ = te.ChunkedEmbedder(te.DATA_DIR / "chunks").embed("synopses", corpus.queries)
    terms = kd.QuiverTerms()
    avg_len = kd.average_length(terms.docs(corpus.docs))
    options = {"k": kd.K1, "b": kd.B, "avg_len": avg_len}
    bodies = method_bodies(query_vectors, corpus.queries, options, args.prefetch_limit)
    busy = cpu_busy_fraction()
    measured: dict[str, Any] = {}
    with (
        QuiverServer(args.port, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=600.0) as client,
    ):
        log(f"server up at {server.url}; ingesting dense + BM25 points")
        measured["ingest"] = create_and_ingest(client, base, corpus.docs, options)
        log(f"ingest {measured['ingest']}; all queries per method in batches")
        measured["answers"] = {m: answer_all(client, bodies[m], n_queries) for m in METHODS}
        log("single queries, methods taking turns")
        n_single = min(args.single_queries, len(corpus.queries))
        measured["latencies"] = single_latencies(client, bodies, n_single)
        measured["server_peak_rss_bytes"] = rss_bytes(server.pid, "VmHWM")
        server.check_alive()
    _, exact_dense = exact_top_k(base, query_vectors, K)
    config = {
        "docs": n_docs,
        "queries": len(corpus.queries),
        "single_queries": n_single,
        "prefetch_limit": args.prefetch_limit,
        "options": options,
        "quick": args.quick,
    }
    return build_results(config, corpus, measured, exact_dense, busy)


def build_results(
    config: dict[str, Any],
    corpus: kd.KeywordCorpus,
    measured: dict[str, Any],
    exact_dense: np.ndarray,
    busy: float | None,
) -> dict[str, Any]:
    rows = []
    for method in METHODS:
        found, seconds = measured["answers"][method]
        ids = padded_ids(found, K)
        rows.append(
            {
                "method": method,
                **kd.relevance_metrics(ids, corpus.relevant, K),
                "batch_queries_per_s": round(len(found) / seconds, 1),
                "single_latency_ms": latency_summary(measured["latencies"][method]),
            }
        )
    p50 = {row["method"]: row["single_latency_ms"]["p50"] for row in rows}
    dense_ids = padded_ids(measured["answers"]["dense"][0], K)
    checks = [
        check_at_most(
            f"{fusion.upper()} p50 - (dense p50 + BM25 p50)",
            round(p50[fusion] - (p50["dense"] + p50["bm25"]), 3),
            TARGET_MARGIN_MS,
            "ms",
        )
        for fusion in ("rrf", "dbsf")
    ]
    return {
        "benchmark": "hybrid_debian",
        "config": config,
        "machine": machine_info(),
        "ingest": measured["ingest"],
        "methods": rows,
        "dense_recall_vs_exact": recall_at_k(dense_ids, exact_dense, K),
        "server_peak_rss_bytes": measured["server_peak_rss_bytes"],
        "checks": checks,
        "cpu_busy_before_start": busy,
        "load_average_at_end": os.getloadavg(),
        "notes": busy_notes(busy),
    }


# --------------------------------------------------------------------------- report


def markdown_report(results: dict[str, Any]) -> str:
    c, ing = results["config"], results["ingest"]
    lines = [
        f"# Hybrid search: dense + BM25 with RRF / DBSF, {c['docs']:,} Debian descriptions",
        "",
        machine_line(results["machine"]),
        "",
        f"{c['queries']:,} synopsis queries (one relevant document each: the package's own "
        f"long description); prefetch limit {c['prefetch_limit']} per half; BM25 avg_len "
        f"{c['options']['avg_len']:.2f}. Latency: {c['single_queries']:,} single queries "
        "from one client, the methods taking turns.",
        "",
        "| method | recall@10 | nDCG@10 | batch queries/s | single p50 ms | p99 ms |",
        "|---|--:|--:|--:|--:|--:|",
        *(
            f"| {r['method']} | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} | "
            f"{r['batch_queries_per_s']:,.0f} | {r['single_latency_ms']['p50']} | "
            f"{r['single_latency_ms']['p99']} |"
            for r in results["methods"]
        ),
        "",
        f"Ingest: {ing['points']:,} points (dense vector + BM25 document) in "
        f"{ing['seconds']:.1f} s = {ing['points_per_s']:,.0f} points/s, green "
        f"{ing['seconds_to_green']:.1f} s later; server peak RSS "
        f"{results['server_peak_rss_bytes'] / 2**20:,.0f} MiB. Dense top-10 against the exact "
        f"top-10: recall {results['dense_recall_vs_exact']:.4f}.",
        "",
        *checks_table(results["checks"]),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(
        parser, quick_help=f"{QUICK_DOCS:,} documents, {QUICK_QUERIES} queries", port=True
    )
    add = parser.add_argument
    add("--docs", type=int, default=None, help="documents (default 56,000; quick 5,000)")
    add("--queries", type=int, default=None, help="queries (default 2,000; quick 300)")
    add("--single-queries", type=int, default=500, help="queries timed one at a time")
    add("--prefetch-limit", type=int, default=20, help="candidates per half of a hybrid query")
    args = parser.parse_args(argv)
    if args.results_dir is None and not args.quick:
        args.results_dir = RESULTS_DIR / "hybrid"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_and_finish(lambda: run(args), args, "hybrid_debian", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
