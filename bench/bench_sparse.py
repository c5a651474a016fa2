"""Sparse vectors at scale: 1M synthetic SPLADE-like vectors over HTTP, against scipy.sparse.

One run, on the vectors `splade_synthetic.py` draws (about 120 non-zeros per document and
30 per query, Zipf-distributed terms over a 30k vocabulary, seeded):

1. the reference, in this process: the documents as a CSC matrix (an exact inverted
   index in scipy's C loops), and the same restricted to the 1% of documents whose payload
   `bucket` is 7;
2. ingest over HTTP: a collection with one sparse vector `splade`, an integer payload
   index on `bucket`, then the points 1,000 per `PUT ?wait=true` (bodies serialised
   before the clock, 100 requests at a time), points/s;
3. index build: the background worker's jobs until the collection is green (seconds from
   the end of the upload, and the jobs' own span), server RSS after it and its peak;
4. queries, without a filter and with `bucket == 7`: batches of 100 over
   `POST .../points/query/batch` taking turns with the reference on the same queries,
   then single queries from one client; queries/s, p50, and the top-10 agreement with the
   exact reference (equal up to ties).

Checks: the top-10 equals the exact reference's (up to ties) for >= 99% of queries,
filtered and not. Saves `bench/results/sparse/sparse_splade1m.*`
(`bench/data/sparse_splade1m_quick.*` with `--quick`).

    nice -n 10 .venv/bin/python bench/bench_sparse.py            # 1M documents (~10+ min)
    .venv/bin/python bench/bench_sparse.py --quick               # 20,000 documents
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import orjson
import splade_synthetic as ss
from harness.cli import RESULTS_DIR, SERVER_LOG, add_common_options, log, new_parser, run_and_finish
from harness.http import QUIET_S, expect_ok, jobs, wait_green
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line, rss_bytes
from harness.metrics import latency_summary, rate, top_k_agreement
from harness.results import check, checks_table
from harness.server import QuiverServer, headers

COLLECTION = "splade"
VECTOR = "splade"
K = 10
SEARCH_BATCH = 100
INGEST_BATCH = 1000
SERIALISE_AHEAD = 100  # requests serialised per untimed step (100k points, ~250 MB of JSON)
FILTER_BUCKET = 7
QUICK_DOCS = 20_000
TARGET_AGREEMENT = 0.99
FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "bucket == 7 (1%)": {"must": [{"key": "bucket", "match": {"value": FILTER_BUCKET}}]},
}


# --------------------------------------------------------------------------- ingest


def create(client: httpx.Client) -> None:
    body = {"sparse_vectors": {VECTOR: {}}}
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(body)), "create")
    index = {"field_name": "bucket", "field_schema": "integer"}
    url = f"/collections/{COLLECTION}/index?wait=true"
    expect_ok(client.put(url, content=orjson.dumps(index)), "payload index")


def upsert_bodies(docs: ss.SparseSet, buckets: np.ndarray, start: int, stop: int) -> list[bytes]:
    """Upsert bodies for documents `start..stop`, 1,000 points each."""
    bodies = []
    for first in range(start, stop, INGEST_BATCH):
        points = []
        for i in range(first, min(first + INGEST_BATCH, stop)):
            indices, values = docs.row(i)
            vector = {VECTOR: {"indices": indices, "values": values}}
            points.append({"id": i, "vector": vector, "payload": {"bucket": int(buckets[i])}})
        bodies.append(orjson.dumps({"points": points}, option=orjson.OPT_SERIALIZE_NUMPY))
    return bodies


def ingest(client: httpx.Client, docs: ss.SparseSet, buckets: np.ndarray) -> dict[str, Any]:
    """Upload every document; only the requests are timed, not building their bodies."""
    seconds, latencies, sent_bytes = 0.0, [], 0
    started_epoch = time.time()
    step = INGEST_BATCH * SERIALISE_AHEAD
    for start in range(0, docs.n, step):
        bodies = upsert_bodies(docs, buckets, start, min(start + step, docs.n))
        for body in bodies:
            before = time.perf_counter()
            response = client.put(f"/collections/{COLLECTION}/points?wait=true", content=body)
            latencies.append(time.perf_counter() - before)
            expect_ok(response, "upsert")
            sent_bytes += len(body)
        seconds += sum(latencies[-len(bodies) :])
        done = min(start + step, docs.n)
        log(f"ingest: {done:,} points, {rate(done, seconds):,.0f} points/s")
    return {
        "points": docs.n,
        "seconds": round(seconds, 3),
        "points_per_s": round(rate(docs.n, seconds), 1),
        "json_mib": round(sent_bytes / 2**20, 1),
        "request_latency_ms": latency_summary(latencies),
        "finished_epoch": time.time(),
        "started_epoch": started_epoch,
    }


def build_summary(job_list: list[dict[str, Any]], finished_epoch: float) -> dict[str, Any]:
    """The background jobs' span by their own clocks (server epoch seconds)."""
    started = [j["started"] for j in job_list if j.get("started") is not None]
    finished = [j["finished"] for j in job_list if j.get("finished") is not None]
    busy = sum(j["finished"] - j["started"] for j in job_list if j["started"] and j["finished"])
    last = max(finished) if finished else None
    return {
        "jobs": len(job_list),
        "jobs_by_kind": dict(Counter(j["kind"] for j in job_list)),
        "jobs_by_state": dict(Counter(j["state"] for j in job_list)),
        "span_seconds": round(last - min(started), 3) if started and last else None,
        "busy_seconds": round(busy, 3),
        "last_finish_after_upload_s": None if last is None else round(last - finished_epoch, 3),
        "errors": [j["error"] for j in job_list if j.get("error")][:5],
    }


# --------------------------------------------------------------------------- queries


class Side:
    """One side's answers and times."""

    def __init__(self, n: int) -> None:
        self.ids = np.full((n, K), -1, dtype=np.int64)
        self.scores = np.zeros((n, K), dtype=np.float32)
        self.latencies_s: list[float] = []
        self.answered = 0

    @property
    def seconds(self) -> float:
        return sum(self.latencies_s)


def query_body(queries: ss.SparseSet, q: int, where: dict[str, Any] | None) -> dict[str, Any]:
    indices, values = queries.row(q)
    body: dict[str, Any] = {
        "query": {"indices": indices.tolist(), "values": values.tolist()},
        "using": VECTOR,
        "limit": K,
    }
    return body if where is None else {**body, "filter": where}


def parse(points: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    return [int(p["id"]) for p in points[:K]], [float(p["score"]) for p in points[:K]]


def http_batch(client: httpx.Client, body: bytes) -> list[tuple[list[int], list[float]]]:
    url = f"/collections/{COLLECTION}/points/query/batch"
    return [parse(r["points"]) for r in expect_ok(client.post(url, content=body), "batch")]


def reference_rows(reference: ss.BruteForce, queries: ss.SparseSet, rows: Sequence[int]) -> Any:
    return [reference.search(*queries.row(q), K) for q in rows]


def batch_turns(
    client: httpx.Client,
    reference: ss.BruteForce,
    queries: ss.SparseSet,
    where: dict[str, Any] | None,
    turns: int,
) -> tuple[Side, Side]:
    """Batches of 100, HTTP then the reference on each turn's share of the batches."""
    batches = [range(s, min(s + SEARCH_BATCH, queries.n)) for s in range(0, queries.n, 100)]
    bodies = [
        orjson.dumps({"searches": [query_body(queries, q, where) for q in rows]})
        for rows in batches
    ]
    http, ref = Side(queries.n), Side(queries.n)
    for part in np.array_split(np.arange(len(batches)), turns):
        if not len(part):
            continue
        time.sleep(QUIET_S)
        http_batch(client, bodies[part[0]])
        for b in part:
            before = time.perf_counter()
            answers = http_batch(client, bodies[b])
            http.latencies_s.append(time.perf_counter() - before)
            for row, (ids, scores) in zip(batches[b], answers, strict=True):
                http.ids[row, : len(ids)], http.scores[row, : len(scores)] = ids, scores
        time.sleep(QUIET_S)
        for b in part:
            before = time.perf_counter()
            found = reference_rows(reference, queries, batches[b])
            ref.latencies_s.append(time.perf_counter() - before)
            for row, (ids, scores) in zip(batches[b], found, strict=True):
                ref.ids[row], ref.scores[row] = ids, scores
    return http, ref


def single_turns(
    client: httpx.Client,
    reference: ss.BruteForce,
    queries: ss.SparseSet,
    where: dict[str, Any] | None,
    n: int,
) -> tuple[list[float], list[float]]:
    """Single-query latencies from one caller, HTTP and reference alternating per query."""
    url = f"/collections/{COLLECTION}/points/query"
    bodies = [orjson.dumps(query_body(queries, q, where)) for q in range(n)]
    expect_ok(client.post(url, content=bodies[0]), "warm-up")
    time.sleep(QUIET_S)
    http, ref = [], []
    for q in range(n):
        before = time.perf_counter()
        expect_ok(client.post(url, content=bodies[q]), "query")
        http.append(time.perf_counter() - before)
        before = time.perf_counter()
        reference.search(*queries.row(q), K)
        ref.append(time.perf_counter() - before)
    return http, ref


def measure_filter(
    client: httpx.Client,
    reference: ss.BruteForce,
    queries: ss.SparseSet,
    name: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    where = FILTERS[name]
    http, ref = batch_turns(client, reference, queries, where, args.turns)
    http_single, ref_single = single_turns(
        client, reference, queries, where, min(args.single_queries, queries.n)
    )
    agreement = top_k_agreement(http.ids, http.scores, ref.ids, ref.scores)
    http_qps, ref_qps = rate(queries.n, http.seconds), rate(queries.n, ref.seconds)
    log(f"filter {name}: HTTP {http_qps:,.1f} q/s, scipy {ref_qps:,.1f} q/s, {agreement}")
    return {
        "filter": name,
        "http_batch_queries_per_s": round(http_qps, 2),
        "scipy_batch_queries_per_s": round(ref_qps, 2),
        "ratio": round(http_qps / ref_qps, 3),
        "http_batch_latency_ms": latency_summary(http.latencies_s),
        "http_single_latency_ms": latency_summary(http_single),
        "scipy_single_latency_ms": latency_summary(ref_single),
        "agreement": agreement,
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    n_docs = args.docs or (QUICK_DOCS if args.quick else 1_000_000)
    started = time.perf_counter()
    docs = ss.draw(n_docs, ss.DOC_NNZ, ss.DOCS, args.seed)
    queries = ss.draw(args.queries, ss.QUERY_NNZ, ss.QUERIES, args.seed)
    buckets = ss.buckets(n_docs, args.seed)
    generate_s = time.perf_counter() - started
    log(f"{n_docs:,} documents drawn in {generate_s:.1f} s; scipy references")
    started = time.perf_counter()
    references = {
        "none": ss.BruteForce(docs),
        "bucket == 7 (1%)": ss.BruteForce(docs, np.flatnonzero(buckets == FILTER_BUCKET)),
    }
    reference_s = time.perf_counter() - started
    busy = cpu_busy_fraction()
    measured: dict[str, Any] = {}
    with (
        QuiverServer(args.port, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=1200.0) as client,
    ):
        create(client)
        measured["ingest"] = ingest(client, docs, buckets)
        measured["rss_after_upload"] = rss_bytes(server.pid)
        log(f"ingest: {measured['ingest']['points_per_s']:,.0f} points/s; waiting for green")
        started = time.perf_counter()
        green = wait_green(client, args.settle_timeout, "index build", COLLECTION)
        measured["build"] = {
            "seconds_to_green_after_upload": round(time.perf_counter() - started, 3),
            "flickers": green["flickers"],
            **build_summary(jobs(client, COLLECTION), measured["ingest"]["finished_epoch"]),
        }
        measured["rss_after_build"] = rss_bytes(server.pid)
        log(f"build: {measured['build']}")
        measured["filters"] = [
            measure_filter(client, references[name], queries, name, args) for name in FILTERS
        ]
        measured["rss_peak"] = rss_bytes(server.pid, "VmHWM")
        measured["points_count"] = expect_ok(client.get(f"/collections/{COLLECTION}"), "info").get(
            "points_count"
        )
        server.check_alive()
    config = {
        "docs": n_docs,
        "queries": queries.n,
        "single_queries": min(args.single_queries, queries.n),
        "vocab": ss.VOCAB,
        "zipf": ss.ZIPF,
        "doc_nnz_mean": round(float(np.mean(np.diff(docs.indptr))), 2),
        "query_nnz_mean": round(float(np.mean(np.diff(queries.indptr))), 2),
        "seed": args.seed,
        "turns": args.turns,
        "quick": args.quick,
        "generate_seconds": round(generate_s, 2),
        "reference_build_seconds": round(reference_s, 2),
        "reference_bytes": {name: ref.bytes for name, ref in references.items()},
        "client_rss_bytes": rss_bytes(),
    }
    return build_results(config, measured, busy)


def build_results(
    config: dict[str, Any], measured: dict[str, Any], busy: float | None
) -> dict[str, Any]:
    checks = [
        check(
            f"top-10 equal to the exact reference up to ties, filter {row['filter']}",
            row["agreement"]["tie_equal"],
            TARGET_AGREEMENT,
        )
        for row in measured["filters"]
    ]
    notes = busy_notes(busy)
    if measured["points_count"] != config["docs"]:
        notes.append(f"points_count is {measured['points_count']}, expected {config['docs']}")
    return {
        "benchmark": "sparse_splade1m",
        "config": config,
        "machine": machine_info(scipy=scipy_version()),
        **{key: measured[key] for key in ("ingest", "build", "filters")},
        "server_rss_bytes": {
            "after_upload": measured["rss_after_upload"],
            "after_build": measured["rss_after_build"],
            "peak": measured["rss_peak"],
        },
        "checks": checks,
        "cpu_busy_before_start": busy,
        "load_average_at_end": os.getloadavg(),
        "notes": notes,
    }


def scipy_version() -> str:
    import scipy

    return str(scipy.__version__)


# --------------------------------------------------------------------------- report


def markdown_report(results: dict[str, Any]) -> str:
    c, ing, b, rss = (
        results["config"],
        results["ingest"],
        results["build"],
        results["server_rss_bytes"],
    )
    mib = 2**20
    lines = [
        f"# Sparse vectors at scale: {c['docs']:,} synthetic SPLADE-like vectors",
        "",
        machine_line(results["machine"]),
        "",
        f"{c['doc_nnz_mean']} non-zeros per document, {c['query_nnz_mean']} per query, Zipf "
        f"{c['zipf']} over {c['vocab']:,} terms (seed {c['seed']}); {c['queries']:,} queries.",
        "",
        f"- ingest: {ing['points']:,} points in {ing['seconds']:.1f} s = "
        f"**{ing['points_per_s']:,.0f} points/s** ({ing['json_mib']:,.0f} MiB of JSON, 1,000 "
        f"points per request, p50 {ing['request_latency_ms'].get('p50')} ms per request)",
        f"- index build: green {b['seconds_to_green_after_upload']:.1f} s after the upload "
        f"ended; jobs {b['jobs_by_kind']} spanning {b['span_seconds']} s "
        f"({b['busy_seconds']} s busy)",
        f"- server RSS: {rss['after_upload'] / mib:,.0f} MiB after the upload, "
        f"{rss['after_build'] / mib:,.0f} MiB after the build, peak **{rss['peak'] / mib:,.0f} "
        f"MiB**; the scipy reference holds {c['reference_bytes']['none'] / mib:,.0f} MiB",
        "",
        "| filter | HTTP batch q/s | scipy q/s | ratio | HTTP single p50 ms | scipy p50 ms "
        "| identical | equal up to ties | overlap |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        *(
            f"| {r['filter']} | {r['http_batch_queries_per_s']:,.1f} | "
            f"{r['scipy_batch_queries_per_s']:,.1f} | {r['ratio']:.2f} | "
            f"{r['http_single_latency_ms'].get('p50')} | {r['scipy_single_latency_ms'].get('p50')}"
            f" | {r['agreement']['identical']:.4f} | {r['agreement']['tie_equal']:.4f} | "
            f"{r['agreement']['overlap']:.4f} |"
            for r in results["filters"]
        ),
        "",
        *checks_table(results["checks"]),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help=f"{QUICK_DOCS:,} documents", port=True)
    add = parser.add_argument
    add("--docs", type=int, default=None, help="documents (default 1,000,000; quick 20,000)")
    add("--queries", type=int, default=300, help="queries per filter")
    add("--single-queries", type=int, default=50, help="queries timed one at a time")
    add("--turns", type=int, default=4, help="HTTP / scipy turns per filter")
    add("--seed", type=int, default=42, help="generator seed")
    add("--settle-timeout", type=float, default=3600.0, help="seconds to wait for green")
    args = parser.parse_args(argv)
    if args.results_dir is None and not args.quick:
        args.results_dir = RESULTS_DIR / "sparse"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_and_finish(lambda: run(args), args, "sparse_splade1m", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
