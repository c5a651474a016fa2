"""Quiver core benchmark on GloVe 6B 50-d: HTTP ingest, exact search over HTTP, faiss reference.

One run measures, on the same machine and the same data:

1. ingest: `PUT /collections/glove/points?wait=true`, JSON batches of 1000 points, points/s;
2. exact single queries: `POST .../points/query` from 8 client processes, QPS + recall@10;
3. exact batches of 100: `POST .../points/query/batch`, queries/s + recall@10;
4. the reference: in-process faiss `IndexFlatIP`, batches of 100 (taking turns with step 3,
   so both see the same machine load) and single queries.

It prints a markdown table and saves it, with the raw numbers and machine details, to
`bench/results/core_glove50.{md,json}` (`bench/data/core_glove50_quick.*` with `--quick`).

    .venv/bin/python bench/bench_core.py            # full: 390k base vectors
    .venv/bin/python bench/bench_core.py --quick    # smoke: 50k base vectors, fewer queries
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Barrier
from typing import Any

import faiss
import glove
import httpx
import numpy as np
import orjson
from harness.cli import SERVER_LOG, add_common_options, finish, guarded, log, new_parser
from harness.clients import merge_outcomes, run_client_processes
from harness.http import (
    QUIET_S,
    BatchAnswer,
    HttpOutcome,
    expect_ok,
    new_outcome,
    record_batch,
    send_batch,
    send_singles,
)
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line
from harness.metrics import latency_summary, rate, recall_at_k
from harness.results import check
from harness.server import QuiverServer, headers

COLLECTION = "glove"
K = 10
INGEST_BATCH = 1000
SEARCH_BATCH = 100
QUICK_BASE = 50_000
TARGET_BATCH_RATIO = 0.70
TARGET_INGEST_RATE = 20_000.0


@dataclass
class Measurement:
    """One row of the results table; `rate` is `count / seconds`."""

    name: str
    how: str
    count: int
    unit: str
    seconds: float
    recall_at_10: float | None = None
    errors: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return rate(self.count, self.seconds)


# --------------------------------------------------------------------------- faiss reference


def faiss_index(dataset: glove.GloveDataset) -> Any:
    """The reference: exact inner product over the same base vectors, in this process."""
    index = faiss.IndexFlatIP(dataset.dimension)
    index.add(dataset.base)
    return index


def faiss_batches(index: Any, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Search `queries` in batches of 100; returns (seconds, ids)."""
    ids = np.empty((queries.shape[0], K), dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, queries.shape[0], SEARCH_BATCH):
        stop = start + SEARCH_BATCH
        _, ids[start:stop] = index.search(queries[start:stop], K)
    return time.perf_counter() - started, ids


def measure_faiss_singles(index: Any, dataset: glove.GloveDataset, n_queries: int) -> Measurement:
    """Search the queries one at a time from one caller."""
    queries = dataset.queries[:n_queries]
    ids = np.empty((n_queries, K), dtype=np.int64)
    latencies: list[float] = []
    index.search(queries[:1], K)  # warm-up
    started = time.perf_counter()
    for row in range(n_queries):
        before = time.perf_counter()
        _, ids[row : row + 1] = index.search(queries[row : row + 1], K)
        latencies.append(time.perf_counter() - before)
    return Measurement(
        "exact, single queries",
        "faiss IndexFlatIP in-process, 1 caller",
        n_queries,
        "queries/s",
        time.perf_counter() - started,
        recall_at_k(ids, dataset.ground_truth[:n_queries], K),
        latency_ms=latency_summary(latencies),
    )


# --------------------------------------------------------------------------- HTTP helpers


def query_body(vector: np.ndarray) -> dict[str, Any]:
    return {"query": vector.tolist(), "limit": K, "params": {"exact": True}}


# --------------------------------------------------------------------------- ingest


def ingest_bodies(dataset: glove.GloveDataset) -> list[bytes]:
    """Upsert bodies in the list form, 1000 points each, serialised before the clock starts."""
    bodies = []
    for start in range(0, dataset.n_base, INGEST_BATCH):
        stop = min(start + INGEST_BATCH, dataset.n_base)
        points = [
            {"id": i, "vector": dataset.base[i], "payload": {"word_id": int(dataset.base_rows[i])}}
            for i in range(start, stop)
        ]
        bodies.append(orjson.dumps({"points": points}, option=orjson.OPT_SERIALIZE_NUMPY))
    return bodies


def measure_ingest(client: httpx.Client, dataset: glove.GloveDataset, threads: int) -> Measurement:
    create = {"vectors": {"size": dataset.dimension, "distance": "Cosine"}}
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    bodies = ingest_bodies(dataset)
    latencies: list[float] = []

    def upload(body: bytes) -> None:
        before = time.perf_counter()
        response = client.put(f"/collections/{COLLECTION}/points?wait=true", content=body)
        latencies.append(time.perf_counter() - before)
        result = expect_ok(response, "upsert")
        if result.get("status") != "completed":
            raise RuntimeError(f"upsert with wait=true returned {result!r}")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(upload, bodies))
    seconds = time.perf_counter() - started
    return Measurement(
        "ingest, upsert 1000 points/request",
        f"HTTP PUT ?wait=true, {threads} uploader thread(s)",
        dataset.n_base,
        "points/s",
        seconds,
        latency_ms=latency_summary(latencies),
    )


def collection_state(client: httpx.Client) -> dict[str, Any]:
    info = expect_ok(client.get(f"/collections/{COLLECTION}"), "collection info")
    keys = ("status", "points_count", "indexed_vectors_count", "segments_count")
    return {key: info.get(key) for key in keys}


def poll_until_green(client: httpx.Client, timeout_s: float) -> tuple[dict[str, Any], float]:
    """Poll collection info until status is green (background work done), up to `timeout_s`;
    the state and seconds either way (`harness/http.py`: `wait_green` raises at the timeout,
    `wait_settled` also waits for a still segment layout)."""
    started = time.perf_counter()
    state = collection_state(client)
    while state["status"] != "green" and time.perf_counter() - started < timeout_s:
        time.sleep(0.5)
        state = collection_state(client)
    return state, time.perf_counter() - started


# --------------------------------------------------------------------------- single queries


def single_query_client(
    barrier: Barrier, base_url: str, queries: np.ndarray, deadline_s: float
) -> HttpOutcome:
    """One client process: send its queries one at a time, starting with the others."""
    bodies = [orjson.dumps(query_body(vector)) for vector in queries]
    with httpx.Client(base_url=base_url, headers=headers(), timeout=120.0) as client:
        return send_singles(client, bodies, deadline_s, barrier, COLLECTION)


def measure_http_singles(
    base_url: str, dataset: glove.GloveDataset, n_queries: int, clients: int, deadline_s: float
) -> tuple[Measurement, list[str]]:
    rows = np.array_split(np.arange(n_queries), clients)
    outcomes = run_client_processes(
        single_query_client,
        [(base_url, dataset.queries[r], deadline_s) for r in rows],
        deadline_s + 300,
    )
    merged = merge_outcomes(outcomes, rows)
    measurement = Measurement(
        "exact, single queries",
        f"HTTP POST points/query, {clients} client processes",
        len(merged.rows),
        "queries/s",
        merged.seconds,
        recall_at_k(merged.ids, dataset.ground_truth[merged.rows], K),
        merged.errors,
        latency_summary(merged.latencies_s),
    )
    return measurement, merged.error_samples


# --------------------------------------------------------------------------- batches


def batch_body(queries: np.ndarray) -> bytes:
    return orjson.dumps({"searches": [query_body(vector) for vector in queries]})


def http_batch_round(
    client: httpx.Client, bodies: list[tuple[bytes, int]], clients: int, deadline_s: float
) -> tuple[float, list[tuple[float, BatchAnswer] | None]]:
    """Send `(body, n_searches)` batches, `clients` in flight; unsent after the deadline: None."""
    started = time.perf_counter()

    def run(body: tuple[bytes, int]) -> tuple[float, BatchAnswer] | None:
        if time.perf_counter() - started > deadline_s:
            return None
        before = time.perf_counter()
        answer = send_batch(client, *body, COLLECTION)
        return time.perf_counter() - before, answer

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(run, bodies))
    return time.perf_counter() - started, answers


def measure_batches(
    client: httpx.Client,
    index: Any,
    dataset: glove.GloveDataset,
    config: dict[str, Any],
) -> tuple[Measurement, Measurement, list[str]]:
    """HTTP batches and faiss batches over the same queries, taking turns in rounds.

    Turns (HTTP, then faiss, on each fifth of the queries) expose both sides of the ratio to
    the same background load, which a shared machine does not hold steady.
    """
    n_queries, clients = config["batch_queries"], config["batch_clients"]
    batches = [
        range(s, min(s + SEARCH_BATCH, n_queries)) for s in range(0, n_queries, SEARCH_BATCH)
    ]
    bodies = [(batch_body(dataset.queries[r.start : r.stop]), len(r)) for r in batches]
    outcome, faiss_ids = new_outcome(n_queries), np.full((n_queries, K), -1, dtype=np.int64)
    http_seconds = faiss_seconds = 0.0
    per_round = -(-len(batches) // config["batch_rounds"])
    for first in range(0, len(batches), per_round):
        chosen = range(first, min(first + per_round, len(batches)))
        budget = config["time_limit_s"] - http_seconds
        round_bodies = [(bodies[i], batches[i]) for i in chosen]
        http_seconds += http_round(client, round_bodies, clients, budget, outcome)
        rows = slice(batches[chosen[0]].start, batches[chosen[-1]].stop)
        faiss_seconds += faiss_round(index, dataset.queries[rows], faiss_ids[rows])
    http = batch_measurement(
        f"HTTP POST points/query/batch, {clients} client thread(s)", outcome, http_seconds, dataset
    )
    reference = Measurement(
        "exact, batches of 100",
        f"faiss IndexFlatIP in-process, {faiss.omp_get_max_threads()} OpenMP threads",
        n_queries,
        "queries/s",
        faiss_seconds,
        recall_at_k(faiss_ids, dataset.ground_truth[:n_queries], K),
    )
    return http, reference, outcome.error_samples


def http_round(
    client: httpx.Client,
    bodies: list[tuple[tuple[bytes, int], range]],
    clients: int,
    budget_s: float,
    outcome: HttpOutcome,
) -> float:
    """One HTTP turn: pause, one untimed warm-up batch, then the timed batches."""
    time.sleep(QUIET_S)
    send_batch(client, *bodies[0][0], COLLECTION)
    seconds, answers = http_batch_round(client, [body for body, _ in bodies], clients, budget_s)
    for (_, rows), answer in zip(bodies, answers, strict=True):
        if answer is not None:
            outcome.latencies_s.append(answer[0])
            record_batch(outcome, rows, answer[1])
    return seconds


def faiss_round(index: Any, queries: np.ndarray, ids_out: np.ndarray) -> float:
    """One faiss turn: pause, one untimed warm-up batch, then the timed batches."""
    time.sleep(QUIET_S)
    index.search(queries[:SEARCH_BATCH], K)
    seconds, ids_out[:] = faiss_batches(index, queries)
    return seconds


def batch_measurement(
    how: str, outcome: HttpOutcome, seconds: float, dataset: glove.GloveDataset
) -> Measurement:
    answered = outcome.answered
    truth = dataset.ground_truth[: answered.shape[0]][answered]
    return Measurement(
        "exact, batches of 100",
        how,
        int(answered.sum()),
        "queries/s",
        seconds,
        recall_at_k(outcome.ids[answered], truth, K),
        outcome.errors,
        latency_summary(outcome.latencies_s),
    )


# --------------------------------------------------------------------------- report


def markdown_report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Quiver core benchmark: GloVe 6B 50-d, {results['config']['n_base']:,} base vectors",
        "",
        machine_line(m),
        "",
        "| measurement | how | n | seconds | rate | recall@10 | p50 ms | p99 ms | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        *(table_row(row) for row in results["measurements"]),
        "",
        "| check | value | target | |",
        "|---|--:|--:|---|",
        *(
            f"| {c['name']} | {c['value']:,.2f} | ≥ {c['target']:,.2f} | "
            f"{'PASS' if c['passed'] else 'FAIL'} |"
            for c in results["checks"]
        ),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def table_row(row: dict[str, Any]) -> str:
    recall = "-" if row["recall_at_10"] is None else f"{row['recall_at_10']:.4f}"
    latency = row["latency_ms"]
    return (
        f"| {row['name']} | {row['how']} | {row['count']:,} | {row['seconds']:.2f} | "
        f"{row['rate']:,.0f} {row['unit']} | {recall} | {latency.get('p50', '-')} | "
        f"{latency.get('p99', '-')} | {row['errors']} |"
    )


def as_row(measurement: Measurement) -> dict[str, Any]:
    return {**asdict(measurement), "rate": measurement.rate}


def build_results(
    config: dict[str, Any], rows: list[Measurement], notes: list[str], extra: dict[str, Any]
) -> dict[str, Any]:
    ingest, _, http_batch, faiss_batch, _ = rows
    checks = [
        check(
            "HTTP batch QPS / faiss batch QPS",
            http_batch.rate / faiss_batch.rate,
            TARGET_BATCH_RATIO,
        ),
        check("ingest points/s", ingest.rate, TARGET_INGEST_RATE),
    ]
    return {
        "benchmark": "core_glove50",
        "config": config,
        "machine": machine_info(),
        "measurements": [as_row(row) for row in rows],
        "checks": checks,
        "notes": notes,
        **extra,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(
        parser, quick_help=f"smoke run on the first {QUICK_BASE:,} base vectors", port=True
    )
    add = parser.add_argument
    add("--queries", type=int, default=None, help="single queries (default 2000; quick 500)")
    add(
        "--batch-queries",
        type=int,
        default=None,
        help="queries sent in batches of 100 (default 10000; quick 2000)",
    )
    add("--clients", type=int, default=8, help="client processes for single queries")
    add("--upload-threads", type=int, default=1, help="concurrent upsert requests")
    add("--batch-clients", type=int, default=1, help="concurrent batch requests")
    add("--batch-rounds", type=int, default=5, help="HTTP/faiss turns over the batch queries")
    add("--time-limit", type=float, default=90.0, help="seconds per HTTP search phase, at most")
    add(
        "--settle-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the collection to turn green after ingest",
    )
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    n_single = args.queries or (500 if args.quick else 2000)
    n_batch = args.batch_queries or (2000 if args.quick else 10_000)
    if not 0 < n_single <= glove.N_QUERIES or not 0 < n_batch <= glove.N_QUERIES:
        raise SystemExit(f"query counts must be in 1..{glove.N_QUERIES}")
    return {
        "quick": args.quick,
        "n_base": QUICK_BASE if args.quick else None,
        "dimension": glove.DIMENSION,
        "distance": "Cosine",
        "k": K,
        "single_queries": n_single,
        "batch_queries": n_batch,
        "search_batch": SEARCH_BATCH,
        "ingest_batch": INGEST_BATCH,
        "clients": args.clients,
        "upload_threads": args.upload_threads,
        "batch_clients": args.batch_clients,
        "time_limit_s": args.time_limit,
        "batch_rounds": args.batch_rounds,
    }


def load_notes(busy_at_start: float | None) -> list[str]:
    notes = ["Ingest time excludes JSON serialisation (bodies are built before the clock)."]
    return notes + busy_notes(busy_at_start)


def settle_notes(state: dict[str, Any], settle_s: float, n_base: int) -> list[str]:
    """Say how the collection looked once ingest returned, and flag what skews the searches."""
    notes = [
        f"After ingest the collection took {settle_s:.1f} s to reach status "
        f"{state['status']!r} ({state['segments_count']} segments, "
        f"{state['indexed_vectors_count']} indexed vectors)."
    ]
    if state["status"] != "green":
        notes.append("Background work was still running during the search measurements.")
    if state["points_count"] != n_base:
        notes.append(f"points_count is {state['points_count']}, expected {n_base}.")
    return notes


def run_http(
    args: argparse.Namespace,
    config: dict[str, Any],
    dataset: glove.GloveDataset,
    index: Any,
    extra: dict[str, Any],
) -> tuple[list[Measurement], list[str]]:
    """Start a server, then ingest, single queries, and batches (alternating with faiss)."""
    notes: list[str] = []
    with (
        QuiverServer(args.port, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=300.0) as client,
    ):
        log(f"server up at {server.url} (log: {SERVER_LOG}); ingesting {dataset.n_base:,} points")
        ingest = measure_ingest(client, dataset, args.upload_threads)
        log(f"ingest: {ingest.rate:,.0f} points/s; waiting for the collection to settle")
        state, settle_s = poll_until_green(client, args.settle_timeout)
        extra["collection_after_ingest"] = {**state, "settle_seconds": round(settle_s, 2)}
        notes.extend(settle_notes(state, settle_s, dataset.n_base))
        log(f"collection {state} after {settle_s:.1f}s; single queries")
        single, errors = measure_http_singles(
            server.url, dataset, config["single_queries"], args.clients, args.time_limit
        )
        notes.extend(f"single-query error: {e}" for e in errors)
        log(f"single: {single.rate:,.0f} QPS, recall {single.recall_at_10}; batches vs faiss")
        batch, faiss_batch, errors = measure_batches(client, index, dataset, config)
        notes.extend(f"batch error: {e}" for e in errors)
        log(f"batch: {batch.rate:,.0f} QPS, faiss {faiss_batch.rate:,.0f} QPS")
        server.check_alive()
    return [ingest, single, batch, faiss_batch], notes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = run_config(args)
    dataset = glove.load(config["n_base"])
    config["n_base"] = dataset.n_base
    log(f"data: {dataset.n_base:,} base vectors, {config['batch_queries']:,} queries")
    index = faiss_index(dataset)
    extra: dict[str, Any] = {"cpu_busy_before_start": cpu_busy_fraction()}
    measured = guarded(lambda: run_http(args, config, dataset, index, extra))
    if measured is None:
        return 2
    rows, notes = measured
    log("faiss single queries")
    rows.append(measure_faiss_singles(index, dataset, config["single_queries"]))
    extra["load_average_at_end"] = os.getloadavg()
    notes.extend(load_notes(extra["cpu_busy_before_start"]))
    results = build_results(config, rows, notes, extra)
    return finish(results, args, "core_glove50", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
