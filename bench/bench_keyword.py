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
from collections.abc import Callable, Sequence
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
    """One side's answers and times: ids and scores per query, latency per unit (a batch
    or a single query)."""

    def __init__(self, n_queries: int) -> None:
        self.ids = np.full((n_queries, K), -1, dtype=np.int64)
        self.scores = np.zeros((n_queries, K), dtype=np.float32)
        self.latencies_s: list[float] = []

    @property
    def seconds(self) -> float:
        return sum(self.latencies_s)


Answers = tuple[np.ndarray, np.ndarray]
Searcher = Callable[[int], Answers]
"""Searches unit `u` (a batch of queries, or one) and returns its ids and scores."""


def take_turns(
    units: list[range], searchers: dict[str, Searcher], n_queries: int, turns: int
) -> dict[str, Side]:
    """Each turn, every searcher in order runs its share of the units (after a pause and
    one untimed unit), so that all of them see the same background load."""
    sides = {name: Side(n_queries) for name in searchers}
    for part in np.array_split(np.arange(len(units)), turns):
        for name, search in searchers.items():
            time.sleep(QUIET_S)
            search(int(part[0]))
            side = sides[name]
            for u in part:
                before = time.perf_counter()
                ids, scores = search(int(u))
                side.latencies_s.append(time.perf_counter() - before)
                side.ids[units[u].start : units[u].stop] = ids
                side.scores[units[u].start : units[u].stop] = scores
    return sides


def as_arrays(answers: list[tuple[list[int], list[float]]]) -> Answers:
    ids = np.full((len(answers), K), -1, dtype=np.int64)
    scores = np.zeros((len(answers), K), dtype=np.float32)
    for row, (found, found_scores) in enumerate(answers):
        ids[row, : len(found)], scores[row, : len(found)] = found, found_scores
    return ids, scores


def searchers(
    client: httpx.Client,
    retrievers: dict[str, Any],
    terms: kd.QuiverTerms,
    queries: Sequence[str],
    units: list[range],
    options: dict[str, Any],
) -> dict[str, Searcher]:
    """HTTP (a batch request per unit of several queries, else a single query) and bm25s
    on each backend; bm25s tokenizes its queries with Quiver's tokenizer (the server's time
    includes tokenizing too)."""
    single = all(len(unit) == 1 for unit in units)
    if single:
        bodies = [orjson.dumps(query_body(queries[unit.start], options)) for unit in units]
    else:
        bodies = [
            orjson.dumps({"searches": [query_body(queries[q], options) for q in unit]})
            for unit in units
        ]

    def http(u: int) -> Answers:
        if single:
            return as_arrays([post_single(client, bodies[u])])
        return as_arrays(post_batch(client, bodies[u]))

    def bm25s(retriever: Any) -> Searcher:
        return lambda u: kd.bm25s_search(
            retriever, terms.queries([queries[q] for q in units[u]]), K
        )

    return {"http": http} | {name: bm25s(r) for name, r in retrievers.items()}


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    n_docs = args.docs or (QUICK_DOCS if args.quick else kd.BASE_SIZE)
    n_queries = args.queries or (QUICK_QUERIES if args.quick else 2000)
    corpus = kd.load_corpus(n_docs, n_queries)
    busy = cpu_busy_fraction()
    terms = kd.QuiverTerms()
    started = time.perf_counter()
    doc_terms = terms.docs(corpus.docs)
    tokenize_s = time.perf_counter() - started
    avg_len = kd.average_length(doc_terms)
    options = {"k": kd.K1, "b": kd.B, "avg_len": avg_len}
    log(f"{corpus.n_docs:,} documents, avg_len {avg_len:.2f} terms; bm25s indexes {args.bm25s}")
    index_s, retrievers = {}, {}
    for backend in args.bm25s:
        started = time.perf_counter()
        retrievers[f"bm25s {backend}"] = kd.bm25s_index(doc_terms, backend)
        index_s[backend] = round(time.perf_counter() - started, 3)
    n_single = min(args.single_queries, len(corpus.queries))
    batches = [range(s, min(s + SEARCH_BATCH, n_queries)) for s in range(0, n_queries, 100)]
    singles = [range(q, q + 1) for q in range(n_single)]
    measured: dict[str, Any] = {}
    with (
        QuiverServer(args.port, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=600.0) as client,
    ):
        log(f"server up at {server.url}; ingesting {corpus.n_docs:,} BM25 documents")
        measured["ingest"] = create_and_ingest(client, corpus.docs, options)
        log(f"ingest {measured['ingest']}; HTTP floor, then batches")
        measured["floor_ms"] = http_floor(client)
        found = searchers(client, retrievers, terms, corpus.queries, batches, options)
        measured["batch"] = take_turns(batches, found, n_queries, args.turns)
        log("single queries")
        found = searchers(client, retrievers, terms, corpus.queries, singles, options)
        measured["single"] = take_turns(singles, found, n_single, args.turns)
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
        "bm25s_index_seconds": index_s,
        "bm25s": "method=atire, idf_method=lucene, one thread (n_threads=0)",
    }
    return build_results(config, corpus, measured, busy)


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
    config: dict[str, Any], corpus: kd.KeywordCorpus, measured: dict[str, Any], busy: float | None
) -> dict[str, Any]:
    batch, single = measured["batch"], measured["single"]
    n, n_single = config["queries"], config["single_queries"]
    rows = [
        side_row(f"{label(name)}, batches of 100", side, n, "per batch")
        for name, side in batch.items()
    ] + [
        side_row(f"{label(name)}, single queries", side, n_single, "per query")
        for name, side in single.items()
    ]
    fastest = max((name for name in batch if name != "http"), key=lambda m: -batch[m].seconds)
    reference = batch[fastest]
    agreement = {
        name: top_k_agreement(batch["http"].ids, batch["http"].scores, side.ids, side.scores)
        for name, side in batch.items()
        if name != "http"
    }
    p50 = {name: latency_summary(side.latencies_s)["p50"] for name, side in single.items()}
    floor = measured["floor_ms"]["p50"]
    checks = [
        check(
            f"top-10 equal to {fastest}'s up to ties (share of queries)",
            agreement[fastest]["tie_equal"],
            1.0,
        ),
        check(
            f"HTTP batch queries/s / {fastest} batch queries/s",
            round(reference.seconds / batch["http"].seconds, 3),
            TARGET_RATIO,
        ),
        check_at_most(
            f"HTTP single p50 - ({fastest} single p50 + HTTP floor p50)",
            round(p50["http"] - (p50[fastest] + floor), 3),
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
        "reference": fastest,
        "agreement": agreement,
        "relevance": {
            label(name): kd.relevance_metrics(side.ids, corpus.relevant, K)
            for name, side in batch.items()
        },
        "server_rss_bytes": measured["server_rss_bytes"],
        "server_peak_rss_bytes": measured["server_peak_rss_bytes"],
        "checks": checks,
        "cpu_busy_before_start": busy,
        "load_average_at_end": os.getloadavg(),
        "notes": busy_notes(busy),
    }


def label(name: str) -> str:
    return "Quiver over HTTP, 1 client" if name == "http" else f"{name} in-process"


def bm25s_version() -> str:
    import bm25s

    return str(getattr(bm25s, "__version__", "unknown"))


# --------------------------------------------------------------------------- report


def markdown_report(results: dict[str, Any]) -> str:
    c, ing, floor = results["config"], results["ingest"], results["http_floor_ms"]
    lines = [
        f"# Keyword search: Quiver BM25 over HTTP vs bm25s, {c['docs']:,} Debian descriptions",
        "",
        machine_line(results["machine"]),
        "",
        f"avg_len {c['options']['avg_len']:.2f} terms (k {c['options']['k']}, "
        f"b {c['options']['b']}); {c['queries']:,} synopsis queries in batches of 100, "
        f"{c['single_queries']:,} single; bm25s {c['bm25s']}, tokenizing its queries with "
        "Quiver's tokenizer inside the timings.",
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
        f"{floor['p50']} | {floor['p99']} |",
        "",
        f"Ingest: {ing['points']:,} documents in {ing['seconds']:.1f} s = "
        f"{ing['points_per_s']:,.0f} points/s (the server tokenizes and weighs), green "
        f"{ing['seconds_to_green']:.1f} s later; server RSS "
        f"{results['server_rss_bytes'] / 2**20:,.0f} MiB (peak "
        f"{results['server_peak_rss_bytes'] / 2**20:,.0f} MiB). Tokenizing the documents "
        f"in-process: {c['tokenize_docs_seconds']:.1f} s; bm25s index builds (s): "
        f"{c['bm25s_index_seconds']}.",
        "",
        "| Quiver's top-10 against | identical | same set | equal up to ties | overlap "
        "| max rel. score diff |",
        "|---|--:|--:|--:|--:|--:|",
        *(
            f"| {name} | {a['identical']:.4f} | {a['same_set']:.4f} | {a['tie_equal']:.4f} | "
            f"{a['overlap']:.4f} | {a['max_score_diff']:.1e} |"
            for name, a in results["agreement"].items()
        ),
        "",
        "Own description found (synopsis → its long description): "
        + "; ".join(
            f"{name} recall@10 {m['recall@10']:.4f}, nDCG@10 {m['ndcg@10']:.4f}"
            for name, m in results["relevance"].items()
        )
        + ".",
        "",
        f"Checks against the fastest bm25s backend ({results['reference']}):",
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
    add(
        "--bm25s",
        nargs="+",
        default=["numba", "numpy"],
        choices=["numba", "numpy"],
        help="bm25s backends to measure (the checks use the fastest)",
    )
    args = parser.parse_args(argv)
    if args.results_dir is None and not args.quick:
        args.results_dir = RESULTS_DIR / "keyword"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_and_finish(lambda: run(args), args, "keyword_debian", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
