"""Keyword search: Quiver's server-side BM25 over HTTP against `bm25s` in-process.

On the Debian package descriptions (the long descriptions are the documents, synopses of
base packages the queries), in one run:

1. Quiver's tokenizer, in this process, tokenizes every document: the tokens feed `bm25s`
   and their mean count is the `avg_len` option both sides use (`keyword_data.py` says why
   the two then compute the same BM25 exactly);
2. ingest over HTTP: a collection with one sparse vector `bm25` (`modifier: idf`), points
   whose vector is a document `{"text", "model": "qdrant/bm25", "options"}`, 1,000 per
   `PUT ?wait=true`, until green;
3. the HTTP floor: `GET /healthz` from one client;
4. batches of 100 queries (documents) over `POST .../points/query/batch` taking turns with
   `bm25s` (Quiver's tokenizer + `retrieve`) on the same batches, then single queries from
   one client, also in turns; top-10 agreement of the two, and recall@10 / nDCG@10 of the
   package's own description.

Checks: the same top-10 (up to ties), HTTP batch queries/s >= 0.5x bm25s's, and single
p50 <= bm25s p50 + HTTP floor p50 + 1 ms. Saves `bench/results/keyword/keyword_debian.*`
(`bench/data/keyword_debian_quick.*` with `--quick`).

    .venv/bin/python bench/bench_keyword.py            # 56,000 documents, 2,000 queries
    .venv/bin/python bench/bench_keyword.py --quick    # 5,000 documents, 400 queries
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
import keyword_data as kd
import numpy as np
import orjson
from harness.cli import (
    RESULTS_DIR,
    SERVER_LOG,
    add_common_options,
    log,
    new_parser,
    run_and_finish,
)
from harness.http import QUIET_S, expect_ok, wait_green
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line, rss_bytes
from harness.metrics import latency_summary, rate, top_k_agreement
from harness.results import check, check_at_most, checks_table
from harness.server import QuiverServer, headers

COLLECTION = "debian"
VECTOR = "bm25"
K = 10
SEARCH_BATCH = 100
INGEST_BATCH = 1000
QUICK_DOCS, QUICK_QUERIES = 5_000, 400
TARGET_RATIO = 0.5
TARGET_P50_MARGIN_MS = 1.0
FLOOR_REQUESTS = 300


# --------------------------------------------------------------------------- HTTP side


def create_and_ingest(
    client: httpx.Client, docs: Sequence[str], options: dict[str, Any]
) -> dict[str, Any]:
    """Create the collection, upload the documents (bodies built first), wait for green."""
    create = {"sparse_vectors": {VECTOR: {"modifier": "idf"}}}
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    bodies = [
        orjson.dumps({"points": [
            {"id": i, "vector": {VECTOR: kd.document(docs[i], options)}}
            for i in range(start, min(start + INGEST_BATCH, len(docs)))
        ]})
        for start in range(0, len(docs), INGEST_BATCH)
    ]  # fmt: skip
    started = time.perf_counter()
    for body in bodies:
        expect_ok(client.put(f"/collections/{COLLECTION}/points?wait=true", content=body), "upsert")
    seconds = time.perf_counter() - started
    green = wait_green(client, 600.0, "after ingest", COLLECTION)
    info = expect_ok(client.get(f"/collections/{COLLECTION}"), "collection info")
    if info.get("points_count") != len(docs):
        raise RuntimeError(f"points_count {info.get('points_count')}, expected {len(docs)}")
    return {
        "points": len(docs),
        "seconds": round(seconds, 3),
        "points_per_s": round(rate(len(docs), seconds), 1),
        "seconds_to_green": green["seconds"],
    }


def query_body(text: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"query": kd.document(text, options), "using": VECTOR, "limit": K}


def parse_points(points: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    return [int(p["id"]) for p in points[:K]], [float(p["score"]) for p in points[:K]]


def post_batch(client: httpx.Client, body: bytes) -> list[tuple[list[int], list[float]]]:
    response = client.post(f"/collections/{COLLECTION}/points/query/batch", content=body)
    return [parse_points(r["points"]) for r in expect_ok(response, "query batch")]


def post_single(client: httpx.Client, body: bytes) -> tuple[list[int], list[float]]:
    response = client.post(f"/collections/{COLLECTION}/points/query", content=body)
    result: dict[str, Any] = expect_ok(response, "query")
    return parse_points(result["points"])


def http_floor(client: httpx.Client, n: int = FLOOR_REQUESTS) -> dict[str, float]:
    """Latency of `GET /healthz` from one client: an empty round trip through the server."""
    for _ in range(20):
        client.get("/healthz")
    latencies = []
    for _ in range(n):
        before = time.perf_counter()
        expect_status = client.get("/healthz").status_code
        latencies.append(time.perf_counter() - before)
        if expect_status != 200:
            raise RuntimeError(f"GET /healthz: HTTP {expect_status}")
    return latency_summary(latencies)


# --------------------------------------------------------------------------- turns


class Side:
    """One side's answers and times: ids and scores per query, batch or single latencies."""

    def __init__(self, n_queries: int) -> None:
        self.ids = np.full((n_queries, K), -1, dtype=np.int64)
        self.scores = np.zeros((n_queries, K), dtype=np.float32)
        self.seconds = 0.0
        self.latencies_s: list[float] = []

    def store(self, row: int, ids: Sequence[int], scores: Sequence[float]) -> None:
        self.ids[row, : len(ids)] = ids
        self.scores[row, : len(scores)] = scores


def batch_turns(
    client: httpx.Client,
    retriever: Any,
    terms: kd.QuiverTerms,
    queries: Sequence[str],
    options: dict[str, Any],
    turns: int,
) -> tuple[Side, Side]:
    """Batches of 100: each turn sends its share over HTTP, then searches it with bm25s."""
    batches = [range(s, min(s + SEARCH_BATCH, len(queries))) for s in range(0, len(queries), 100)]
    bodies = [
        orjson.dumps({"searches": [query_body(queries[q], options) for q in rows]})
        for rows in batches
    ]
    http, ref = Side(len(queries)), Side(len(queries))
    for part in np.array_split(np.arange(len(batches)), turns):
        time.sleep(QUIET_S)
        post_batch(client, bodies[part[0]])  # warm-up, untimed
        for b in part:
            before = time.perf_counter()
            answers = post_batch(client, bodies[b])
            http.latencies_s.append(time.perf_counter() - before)
            for row, (ids, scores) in zip(batches[b], answers, strict=True):
                http.store(row, ids, scores)
        time.sleep(QUIET_S)
        bm25s_batch(retriever, terms, [queries[q] for q in batches[part[0]]])
        for b in part:
            before = time.perf_counter()
            ids, scores = bm25s_batch(retriever, terms, [queries[q] for q in batches[b]])
            ref.latencies_s.append(time.perf_counter() - before)
            ref.ids[batches[b].start : batches[b].stop] = ids
            ref.scores[batches[b].start : batches[b].stop] = scores
    http.seconds, ref.seconds = sum(http.latencies_s), sum(ref.latencies_s)
    return http, ref


def bm25s_batch(retriever: Any, terms: kd.QuiverTerms, texts: Sequence[str]) -> tuple[Any, Any]:
    """What bm25s does for a batch, the query tokenizing included (the server does it too)."""
    return kd.bm25s_search(retriever, terms.queries(list(texts)), K)


def single_turns(
    client: httpx.Client,
    retriever: Any,
    terms: kd.QuiverTerms,
    queries: Sequence[str],
    options: dict[str, Any],
    turns: int,
) -> tuple[Side, Side]:
    """Single queries from one caller, HTTP and bm25s taking turns over the same queries."""
    bodies = [orjson.dumps(query_body(text, options)) for text in queries]
    http, ref = Side(len(queries)), Side(len(queries))
    for part in np.array_split(np.arange(len(queries)), turns):
        time.sleep(QUIET_S)
        post_single(client, bodies[part[0]])
        for q in part:
            before = time.perf_counter()
            ids, scores = post_single(client, bodies[q])
            http.latencies_s.append(time.perf_counter() - before)
            http.store(q, ids, scores)
        time.sleep(QUIET_S)
        bm25s_batch(retriever, terms, [queries[part[0]]])
        for q in part:
            before = time.perf_counter()
            found, found_scores = bm25s_batch(retriever, terms, [queries[q]])
            ref.latencies_s.append(time.perf_counter() - before)
            ref.store(q, found[0], found_scores[0])
    http.seconds, ref.seconds = sum(http.latencies_s), sum(ref.latencies_s)
    return http, ref


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    n_docs = args.docs or (QUICK_DOCS if args.quick else kd.BASE_SIZE)
    n_queries = args.queries or (QUICK_QUERIES if args.quick else 2000)
    corpus = kd.load_corpus(n_docs, n_queries)
    busy = cpu_busy_fraction()
    terms = kd.QuiverTerms()
    started = time.perf_counter()
    doc_tokens = terms.docs(corpus.docs)
    tokenize_s = time.perf_counter() - started
    avg_len = kd.average_length(doc_tokens)
    options = {"k": kd.K1, "b": kd.B, "avg_len": avg_len}
    log(f"{corpus.n_docs:,} documents, avg_len {avg_len:.2f} tokens; bm25s index")
    started = time.perf_counter()
    retriever = kd.bm25s_index(doc_tokens)
    bm25s_index_s = time.perf_counter() - started
    measured: dict[str, Any] = {}
    with (
        QuiverServer(args.port, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=600.0) as client,
    ):
        log(f"server up at {server.url}; ingesting {corpus.n_docs:,} BM25 documents")
        measured["ingest"] = create_and_ingest(client, corpus.docs, options)
        log(f"ingest {measured['ingest']}; HTTP floor, then batches")
        measured["floor_ms"] = http_floor(client)
        batch = batch_turns(client, retriever, terms, corpus.queries, options, args.turns)
        n_single = min(args.single_queries, len(corpus.queries))
        log("single queries")
        single = single_turns(
            client, retriever, terms, corpus.queries[:n_single], options, args.turns
        )
        measured["server_rss_bytes"] = rss_bytes(server.pid)
        measured["server_peak_rss_bytes"] = rss_bytes(server.pid, "VmHWM")
        server.check_alive()
    config = {
        "docs": corpus.n_docs,
        "queries": len(corpus.queries),
        "single_queries": n_single,
        "options": options,
        "search_batch": SEARCH_BATCH,
        "turns": args.turns,
        "quick": args.quick,
        "tokenize_docs_seconds": round(tokenize_s, 3),
        "bm25s_index_seconds": round(bm25s_index_s, 3),
        "bm25s": "method=atire, idf_method=lucene, numpy backend, 1 thread",
    }
    return build_results(config, corpus, measured, batch, single, busy)


def side_row(name: str, side: Side, n: int, unit_latency: str) -> dict[str, Any]:
    return {
        "name": name,
        "queries": n,
        "seconds": round(side.seconds, 4),
        "queries_per_s": round(rate(n, side.seconds), 1),
        "latency": unit_latency,
        "latency_ms": latency_summary(side.latencies_s),
    }


def build_results(
    config: dict[str, Any],
    corpus: kd.KeywordCorpus,
    measured: dict[str, Any],
    batch: tuple[Side, Side],
    single: tuple[Side, Side],
    busy: float | None,
) -> dict[str, Any]:
    (http_b, ref_b), (http_s, ref_s) = batch, single
    n, n_single = config["queries"], config["single_queries"]
    rows = [
        side_row("Quiver HTTP, batches of 100", http_b, n, "per batch"),
        side_row("bm25s in-process, batches of 100", ref_b, n, "per batch"),
        side_row("Quiver HTTP, single queries, 1 client", http_s, n_single, "per query"),
        side_row("bm25s in-process, single queries", ref_s, n_single, "per query"),
    ]
    agreement = top_k_agreement(http_b.ids, http_b.scores, ref_b.ids, ref_b.scores)
    floor = measured["floor_ms"]["p50"]
    http_p50, ref_p50 = rows[2]["latency_ms"]["p50"], rows[3]["latency_ms"]["p50"]
    checks = [
        check("top-10 equal to bm25s's up to ties (share of queries)", agreement["tie_equal"], 1.0),
        check(
            "HTTP batch queries/s / bm25s batch queries/s",
            rows[0]["queries_per_s"] / rows[1]["queries_per_s"],
            TARGET_RATIO,
        ),
        check_at_most(
            "HTTP single p50 - (bm25s single p50 + HTTP floor p50)",
            round(http_p50 - (ref_p50 + floor), 3),
            TARGET_P50_MARGIN_MS,
            "ms",
        ),
    ]
    return {
        "benchmark": "keyword_debian",
        "config": config,
        "machine": machine_info(bm25s=bm25s_version()),
        "ingest": measured["ingest"],
        "http_floor_ms": measured["floor_ms"],
        "measurements": rows,
        "agreement": agreement,
        "relevance": {
            "quiver": kd.relevance_metrics(http_b.ids, corpus.relevant, K),
            "bm25s": kd.relevance_metrics(ref_b.ids, corpus.relevant, K),
        },
        "server_rss_bytes": measured["server_rss_bytes"],
        "server_peak_rss_bytes": measured["server_peak_rss_bytes"],
        "checks": checks,
        "cpu_busy_before_start": busy,
        "load_average_at_end": os.getloadavg(),
        "notes": busy_notes(busy),
    }


def bm25s_version() -> str:
    import bm25s

    return str(getattr(bm25s, "__version__", "unknown"))


# --------------------------------------------------------------------------- report


def markdown_report(results: dict[str, Any]) -> str:
    c, a, ing = results["config"], results["agreement"], results["ingest"]
    rel = results["relevance"]
    lines = [
        f"# Keyword search: Quiver BM25 over HTTP vs bm25s, {c['docs']:,} Debian descriptions",
        "",
        machine_line(results["machine"]),
        "",
        f"avg_len {c['options']['avg_len']:.2f} tokens (k {c['options']['k']}, "
        f"b {c['options']['b']}); {c['queries']:,} synopsis queries; bm25s: {c['bm25s']}.",
        "",
        "| measurement | queries | seconds | queries/s | latency | p50 ms | p99 ms |",
        "|---|--:|--:|--:|---|--:|--:|",
        *(
            f"| {r['name']} | {r['queries']:,} | {r['seconds']:.2f} | {r['queries_per_s']:,.0f} "
            f"| {r['latency']} | {r['latency_ms'].get('p50', '-')} | "
            f"{r['latency_ms'].get('p99', '-')} |"
            for r in results["measurements"]
        ),
        f"| HTTP floor (`GET /healthz`, 1 client) | {FLOOR_REQUESTS} | | | per request | "
        f"{results['http_floor_ms']['p50']} | {results['http_floor_ms']['p99']} |",
        "",
        f"Ingest: {ing['points']:,} documents in {ing['seconds']:.1f} s = "
        f"{ing['points_per_s']:,.0f} points/s (server-side tokenizing and BM25), green "
        f"{ing['seconds_to_green']:.1f} s later; server RSS "
        f"{results['server_rss_bytes'] / 2**20:,.0f} MiB (peak "
        f"{results['server_peak_rss_bytes'] / 2**20:,.0f} MiB). bm25s index build "
        f"{c['bm25s_index_seconds']:.1f} s after tokenizing in {c['tokenize_docs_seconds']:.1f} s.",
        "",
        f"Top-10 agreement with bm25s (batch answers): identical {a['identical']:.4f}, same set "
        f"{a['same_set']:.4f}, equal up to ties {a['tie_equal']:.4f}, overlap {a['overlap']:.4f}, "
        f"largest relative score difference {a['max_score_diff']:.2e}.",
        "",
        f"Own description found (synopsis → long description): Quiver recall@10 "
        f"{rel['quiver']['recall@10']:.4f}, nDCG@10 {rel['quiver']['ndcg@10']:.4f}; bm25s "
        f"{rel['bm25s']['recall@10']:.4f} / {rel['bm25s']['ndcg@10']:.4f}.",
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
    add("--queries", type=int, default=None, help="batch queries (default 2,000; quick 400)")
    add("--single-queries", type=int, default=500, help="queries sent one at a time")
    add("--turns", type=int, default=4, help="HTTP / bm25s turns per phase")
    args = parser.parse_args(argv)
    if args.results_dir is None and not args.quick:
        args.results_dir = RESULTS_DIR / "keyword"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_and_finish(lambda: run(args), args, "keyword_debian", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
