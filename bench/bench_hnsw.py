"""Quiver's indexing pipeline on GloVe 6B 50-d: ingest, background HNSW builds, recall vs QPS.

One run measures, on the same machine and the same data:

1. ingest over HTTP (`PUT /collections/glove/points?wait=true`, 1,000 points per request), then
   the background builds until the collection reports `green`: upload time, build time (first
   job start to last job finish, from `GET /collections/glove/jobs`), segments, memory/vector;
2. recall@10 vs QPS over HTTP for each `hnsw_ef`: batches of 100 queries from one client, and
   single queries from 8 client processes (QPS, median and p99 latency);
3. the raw library reference: in-process faiss `IndexHNSWFlat` (M=16, efConstruction=100) on
   the same vectors, batches of 100 (taking turns with the HTTP batches, so both see the same
   machine load) and single queries from one thread, one at a time;
4. the HTTP floor: median latency of `GET /healthz` from one client, and the single-query
   latency from one client, so "HTTP latency = raw latency + floor + at most 1 ms" can be read
   per ef;
5. restart: SIGTERM, a new server process on the same data folder, time until `/healthz`
   answers and until the collection is `green` with no new jobs (indexes loaded, not rebuilt).

It prints markdown tables and saves them, with the raw numbers, machine details and a
recall/QPS chart, to `bench/results/hnsw_glove50.{md,json,png}`
(`bench/data/hnsw_glove50_quick.*` with `--quick`).

    .venv/bin/python bench/bench_hnsw.py            # full: 390k base vectors (~10 min, 2 cores)
    .venv/bin/python bench/bench_hnsw.py --quick    # smoke: 50k base vectors, 1k queries
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import faiss
import glove
import httpx
import numpy as np
import orjson
from harness.cli import SERVER_LOG, add_common_options, log, new_parser, run_and_finish
from harness.clients import merge_outcomes, run_client_processes
from harness.http import (
    MAX_ERRORS_KEPT,
    QUIET_S,
    HttpOutcome,
    batch_ranges,
    collection_info,
    expect_ok,
    jobs,
    search_batches,
    segments,
    send_singles,
    wait_green,
)
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line
from harness.metrics import latency_summary, rate, recall_at_k
from harness.results import pyplot
from harness.server import QuiverServer, ServerError, headers

FAISS: Any = faiss  # typed Any: faiss's bundled stubs miss much of the SWIG surface
COLLECTION = "glove"
K = 10
M = 16
EF_CONSTRUCT = 100
INDEXING_THRESHOLD = 20_000
SEGMENT_NUMBER = 0
EF_VALUES = (16, 32, 64, 128, 256)
QUICK_EF_VALUES = (16, 64, 256)
QUICK_BASE = 50_000
INGEST_BATCH = 1000
SEARCH_BATCH = 100
RECALL_TARGET = 0.95
TARGET_BATCH_RATIO = 0.75
TARGET_LATENCY_GAP_MS = 1.0
PERCENTILES = (50, 99)
"""Latency percentiles this benchmark reports (median and tail)."""


@dataclass
class SearchRun:
    """One (method, ef) point: `count` answered queries in `seconds`, recall@10 over them."""

    method: str
    ef: int
    count: int
    seconds: float
    recall_at_10: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: int = 0

    @property
    def qps(self) -> float:
        return rate(self.count, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "qps": self.qps}


# --------------------------------------------------------------------------- faiss reference


def build_faiss(dataset: glove.GloveDataset) -> tuple[Any, float]:
    """The raw library: faiss HNSW with Quiver's graph parameters; returns (index, seconds)."""
    index = faiss.IndexHNSWFlat(dataset.dimension, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCT
    started = time.perf_counter()
    index.add(dataset.base)
    return index, time.perf_counter() - started


def faiss_bytes_per_vector(index: Any) -> float:
    """Links + vectors, counted the way Quiver's HNSW backend reports `memory_bytes`."""
    links = int(index.hnsw.neighbors.size()) * 4
    return float((links + index.ntotal * index.d * 4) / index.ntotal)


def faiss_search(index: Any, queries: np.ndarray, ef: int) -> np.ndarray:
    params = FAISS.SearchParametersHNSW(efSearch=max(ef, K))
    _, ids = index.search(queries, K, params=params)
    return np.asarray(ids, dtype=np.int64)


def faiss_batches(index: Any, dataset: glove.GloveDataset, n: int, ef: int) -> SearchRun:
    """Batches of 100 with faiss's default OpenMP threads, after a pause and a warm-up."""
    queries = dataset.queries[:n]
    ids = np.empty((n, K), dtype=np.int64)
    time.sleep(QUIET_S)
    faiss_search(index, queries[:SEARCH_BATCH], ef)
    started = time.perf_counter()
    for start in range(0, n, SEARCH_BATCH):
        ids[start : start + SEARCH_BATCH] = faiss_search(
            index, queries[start : start + SEARCH_BATCH], ef
        )
    seconds = time.perf_counter() - started
    recall = recall_at_k(ids, dataset.ground_truth[:n], K)
    return SearchRun("faiss batch", ef, n, seconds, recall)


def faiss_singles(index: Any, dataset: glove.GloveDataset, n: int, ef: int) -> SearchRun:
    """One query at a time from one thread (OpenMP limited to 1 while it runs)."""
    queries = dataset.queries[:n]
    ids = np.empty((n, K), dtype=np.int64)
    latencies: list[float] = []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        faiss_search(index, queries[:1], ef)
        started = time.perf_counter()
        for row in range(n):
            before = time.perf_counter()
            ids[row] = faiss_search(index, queries[row : row + 1], ef)[0]
            latencies.append(time.perf_counter() - before)
        seconds = time.perf_counter() - started
    finally:
        faiss.omp_set_num_threads(threads)
    recall = recall_at_k(ids, dataset.ground_truth[:n], K)
    latency = latency_summary(latencies, PERCENTILES)
    return SearchRun("faiss single, 1 thread", ef, n, seconds, recall, latency)


# --------------------------------------------------------------------------- HTTP helpers


def query_body(vector: np.ndarray, ef: int) -> dict[str, Any]:
    return {"query": vector.tolist(), "limit": K, "params": {"hnsw_ef": ef}}


def outcome_run(
    method: str, ef: int, outcome: HttpOutcome, seconds: float, truth: np.ndarray
) -> SearchRun:
    answered = outcome.answered
    return SearchRun(
        method,
        ef,
        int(answered.sum()),
        seconds,
        recall_at_k(outcome.ids[answered], truth[: len(answered)][answered], K),
        latency_summary(outcome.latencies_s, PERCENTILES),
        outcome.errors,
    )


# --------------------------------------------------------------------------- ingest and build


def create_body(full_scan_threshold: int | None) -> dict[str, Any]:
    hnsw: dict[str, Any] = {"m": M, "ef_construct": EF_CONSTRUCT}
    if full_scan_threshold is not None:
        hnsw["full_scan_threshold"] = full_scan_threshold
    return {
        "vectors": {"size": glove.DIMENSION, "distance": "Cosine"},
        "hnsw_config": hnsw,
        "optimizers_config": {
            "indexing_threshold": INDEXING_THRESHOLD,
            "default_segment_number": SEGMENT_NUMBER,
        },
    }


def ingest(
    client: httpx.Client, dataset: glove.GloveDataset, collection: str = COLLECTION
) -> dict[str, Any]:
    """Upsert every base vector, 1,000 per request, bodies serialised before the clock starts."""
    bodies = [
        orjson.dumps(
            {"points": [{"id": i, "vector": dataset.base[i]} for i in range(s, s + INGEST_BATCH)]},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for s in range(0, dataset.n_base, INGEST_BATCH)
    ]
    latencies: list[float] = []
    started_epoch, started = time.time(), time.perf_counter()
    for body in bodies:
        before = time.perf_counter()
        response = client.put(f"/collections/{collection}/points?wait=true", content=body)
        latencies.append(time.perf_counter() - before)
        result = expect_ok(response, "upsert")
        if result.get("status") != "completed":
            raise RuntimeError(f"upsert with wait=true returned {result!r}")
    seconds = time.perf_counter() - started
    return {
        "points": dataset.n_base,
        "seconds": round(seconds, 3),
        "points_per_s": round(dataset.n_base / seconds, 1),
        "request_latency_ms": latency_summary(latencies, PERCENTILES),
        "started_epoch": started_epoch,
        "finished_epoch": started_epoch + seconds,
    }


def build_summary(job_list: list[dict[str, Any]], upload: dict[str, Any]) -> dict[str, Any]:
    """Background build time from the jobs' own clocks (server epoch seconds)."""
    started = [j["started"] for j in job_list if j["started"] is not None]
    finished = [j["finished"] for j in job_list if j["finished"] is not None]
    busy = sum(j["finished"] - j["started"] for j in job_list if j["started"] and j["finished"])
    first, last = (min(started), max(finished)) if started and finished else (None, None)
    return {
        "jobs": len(job_list),
        "jobs_by_kind": dict(Counter(j["kind"] for j in job_list)),
        "jobs_by_state": dict(Counter(j["state"] for j in job_list)),
        "points_built": sum(j["points_total"] for j in job_list),
        "seconds": None if first is None or last is None else round(last - first, 3),
        "busy_seconds": round(busy, 3),
        "first_start_after_upload_start_s": (
            None if first is None else round(first - upload["started_epoch"], 3)
        ),
        "last_finish_after_upload_end_s": (
            None if last is None else round(last - upload["finished_epoch"], 3)
        ),
        "errors": [j["error"] for j in job_list if j["error"]][:MAX_ERRORS_KEPT],
    }


def segment_summary(segment_list: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    sealed = [s for s in segment_list if s["kind"] == "sealed"]
    sealed_points = sum(s["points"] for s in sealed)
    memory = sum(s.get("memory_bytes") or 0 for s in sealed)
    return {
        "segments_count": info["segments_count"],
        "points_count": info["points_count"],
        "indexed_vectors_count": info["indexed_vectors_count"],
        "sealed": [
            {k: s.get(k) for k in ("segment_id", "points", "index", "memory_bytes")} for s in sealed
        ],
        "appendable_points": sum(s["points"] for s in segment_list if s["kind"] == "appendable"),
        "sealed_memory_bytes": memory,
        "bytes_per_vector": round(memory / sealed_points, 1) if sealed_points else None,
    }


def load_collection(
    client: httpx.Client, dataset: glove.GloveDataset, config: dict[str, Any]
) -> dict[str, Any]:
    """Create, ingest, wait for green; returns the ingest/build/collection sections."""
    create = create_body(config["full_scan_threshold_kb"])
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    upload = ingest(client, dataset)
    log(f"upload: {upload['seconds']:.1f}s ({upload['points_per_s']:,.0f} points/s); waiting")
    settle = wait_green(client, config["settle_timeout_s"], "build")
    job_list = jobs(client)
    build = {**build_summary(job_list, upload), "settle": settle}
    info = collection_info(client)
    collection = segment_summary(segments(client), info)
    if info["points_count"] != dataset.n_base:
        raise RuntimeError(f"points_count is {info['points_count']}, expected {dataset.n_base}")
    log(f"build: {build['seconds']}s of jobs {build['jobs_by_kind']}; segments {collection}")
    return {"upload": upload, "build": build, "collection": collection}


# --------------------------------------------------------------------------- HTTP search


def http_batches(
    client: httpx.Client, dataset: glove.GloveDataset, n: int, ef: int, deadline_s: float
) -> tuple[SearchRun, list[str]]:
    """Batches of 100 from one client, in order, after a pause and one untimed batch."""
    batches = batch_ranges(n, SEARCH_BATCH)
    bodies = [
        orjson.dumps({"searches": [query_body(v, ef) for v in dataset.queries[r.start : r.stop]]})
        for r in batches
    ]
    outcome, seconds = search_batches(client, bodies, batches, deadline_s, COLLECTION)
    run = outcome_run("HTTP batch", ef, outcome, seconds, dataset.ground_truth)
    return run, outcome.error_samples


def single_bodies(queries: np.ndarray, ef: int) -> list[bytes]:
    return [orjson.dumps(query_body(vector, ef)) for vector in queries]


def http_singles_one_client(
    client: httpx.Client, dataset: glove.GloveDataset, n: int, ef: int, deadline_s: float
) -> SearchRun:
    outcome = send_singles(
        client, single_bodies(dataset.queries[:n], ef), deadline_s, collection=COLLECTION
    )
    seconds = outcome.finished - outcome.started
    return outcome_run("HTTP single, 1 client", ef, outcome, seconds, dataset.ground_truth)


def single_client_process(
    barrier: Barrier, base_url: str, queries: np.ndarray, efs: Sequence[int], deadline_s: float
) -> list[HttpOutcome]:
    """One client process: for each ef, send its queries one by one, starting with the others."""
    with httpx.Client(base_url=base_url, headers=headers(), timeout=120.0) as client:
        return [
            send_singles(client, single_bodies(queries, ef), deadline_s, barrier, COLLECTION)
            for ef in efs
        ]


def http_singles_processes(
    base_url: str,
    dataset: glove.GloveDataset,
    config: dict[str, Any],
) -> tuple[list[SearchRun], list[str]]:
    """`clients` spawned processes (own interpreter, own GIL) run every ef, starting together."""
    n, clients, efs = config["single_queries"], config["clients"], config["ef_values"]
    deadline_s = config["time_limit_s"]
    rows = np.array_split(np.arange(n), clients)
    by_worker = run_client_processes(
        single_client_process,
        [(base_url, dataset.queries[r], efs, deadline_s) for r in rows],
        len(efs) * (deadline_s + 60) + 120,
    )
    runs = [
        merged_run(ef, [outcomes[i] for outcomes in by_worker], rows, dataset)
        for i, ef in enumerate(efs)
    ]
    errors = [e for outcomes in by_worker for o in outcomes for e in o.error_samples]
    return runs, errors[:MAX_ERRORS_KEPT]


def merged_run(
    ef: int, outcomes: list[HttpOutcome], rows: list[np.ndarray], dataset: glove.GloveDataset
) -> SearchRun:
    """QPS is answered queries over first start to last finish; latencies are per request."""
    merged = merge_outcomes(outcomes, rows)
    return SearchRun(
        f"HTTP single, {len(outcomes)} client processes",
        ef,
        len(merged.rows),
        merged.seconds,
        recall_at_k(merged.ids, dataset.ground_truth[merged.rows], K),
        latency_summary(merged.latencies_s, PERCENTILES),
        merged.errors,
    )


def http_floor(client: httpx.Client, n: int) -> dict[str, float]:
    """Latency of `GET /healthz` from one client: an empty round trip through the server."""
    for _ in range(10):
        client.get("/healthz")
    latencies: list[float] = []
    for _ in range(n):
        before = time.perf_counter()
        response = client.get("/healthz")
        latencies.append(time.perf_counter() - before)
        if response.status_code != 200:
            raise RuntimeError(f"GET /healthz: HTTP {response.status_code}: {response.text}")
    return latency_summary(latencies, PERCENTILES)


# --------------------------------------------------------------------------- restart


def wait_healthz(server: QuiverServer, client: httpx.Client, timeout_s: float) -> float:
    """Seconds until `GET /healthz` answers 200 (polled every 20 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        server.check_alive()
        try:
            if client.get("/healthz", timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise ServerError(f"no /healthz answer {timeout_s:.0f}s after the restart")


def measure_restart(
    server: QuiverServer,
    client: httpx.Client,
    dataset: glove.GloveDataset,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Stop, start on the same data, time to healthy and to green; check nothing was rebuilt."""
    jobs_before = {j["id"] for j in jobs(client)}
    segments_before = segments(client)
    stop_s, exit_code = server.terminate()
    started = time.perf_counter()
    server.relaunch()
    healthz_s = wait_healthz(server, client, config["settle_timeout_s"])
    settle_started = time.perf_counter()
    settle = wait_green(client, config["settle_timeout_s"], "restart")
    green_s = settle_started - started + settle["seconds"]
    new_jobs = [j for j in jobs(client) if j["id"] not in jobs_before]
    n = min(1000, config["batch_queries"])
    ef = 64 if 64 in config["ef_values"] else config["ef_values"][0]
    after, _ = http_batches(client, dataset, n, ef, config["time_limit_s"])
    return {
        "stop_seconds": round(stop_s, 3),
        "exit_code": exit_code,
        "start_to_healthz_seconds": round(healthz_s, 3),
        "start_to_green_seconds": round(green_s, 3),
        "settle": settle,
        "new_jobs": [{k: j[k] for k in ("kind", "state", "segment_ids")} for j in new_jobs],
        "segments_unchanged": same_segments(segments_before, segments(client)),
        "recall_after_restart": {"ef": ef, "queries": after.count, "recall": after.recall_at_10},
    }


def same_segments(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> bool:
    def key(segment_list: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (str(s["segment_id"]), s["kind"], s["points"], s.get("memory_bytes"))
            for s in segment_list
        )

    return key(before) == key(after)


# --------------------------------------------------------------------------- checks and report


def find(runs: list[SearchRun], method_prefix: str, ef: int) -> SearchRun:
    return next(r for r in runs if r.method.startswith(method_prefix) and r.ef == ef)


def compute_checks(
    runs: list[SearchRun], efs: Sequence[int], floor_ms: dict[str, float]
) -> tuple[int | None, list[dict[str, Any]]]:
    """At the smallest ef whose HTTP batch recall@10 reaches the target, compare with faiss."""
    ef = next((e for e in efs if find(runs, "HTTP batch", e).recall_at_10 >= RECALL_TARGET), None)
    if ef is None:
        missing = {"value": None, "passed": False, "at_ef": None}
        return None, [
            {"name": "HTTP batch QPS / faiss batch QPS", "target": f">= {TARGET_BATCH_RATIO}"}
            | missing,
            {"name": "HTTP single p50 - (faiss p50 + floor)", "target": "<= 1 ms"} | missing,
        ]
    ratio = find(runs, "HTTP batch", ef).qps / find(runs, "faiss batch", ef).qps
    gap = latency_gap_ms(runs, ef, floor_ms)
    return ef, [
        {
            "name": "HTTP batch QPS / faiss batch QPS",
            "at_ef": ef,
            "value": round(ratio, 3),
            "target": f">= {TARGET_BATCH_RATIO}",
            "passed": bool(ratio >= TARGET_BATCH_RATIO),
        },
        {
            "name": "HTTP single p50 (1 client) - (faiss single p50 + HTTP floor p50), ms",
            "at_ef": ef,
            "value": round(gap, 3),
            "target": f"<= {TARGET_LATENCY_GAP_MS}",
            "passed": bool(gap <= TARGET_LATENCY_GAP_MS),
        },
    ]


def latency_gap_ms(runs: list[SearchRun], ef: int, floor_ms: dict[str, float]) -> float:
    http = find(runs, "HTTP single, 1 client", ef).latency_ms["p50"]
    raw = find(runs, "faiss single", ef).latency_ms["p50"]
    return http - (raw + floor_ms["p50"])


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def search_tables(results: dict[str, Any]) -> list[str]:
    runs = [SearchRun(**{k: v for k, v in r.items() if k != "qps"}) for r in results["search"]]
    floor = results["http_floor_ms"]
    clients = results["config"]["clients"]
    lines = [
        "## Throughput: recall@10 and queries/s",
        "",
        "| ef | HTTP batch recall | HTTP batch QPS | faiss batch recall | faiss batch QPS "
        f"| ratio | HTTP single x{clients} recall | QPS | p50 ms | p99 ms |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for ef in results["config"]["ef_values"]:
        batch, raw = find(runs, "HTTP batch", ef), find(runs, "faiss batch", ef)
        many = find_many(runs, ef)
        lines.append(
            f"| {ef} | {batch.recall_at_10:.4f} | {batch.qps:,.0f} | {raw.recall_at_10:.4f} "
            f"| {raw.qps:,.0f} | {batch.qps / raw.qps:.2f} | {many.recall_at_10:.4f} "
            f"| {many.qps:,.0f} | {many.latency_ms.get('p50')} | {many.latency_ms.get('p99')} |"
        )
    lines += [
        "",
        f"## Latency, one client: HTTP floor (`GET /healthz`) p50 {floor['p50']} ms, "
        f"p99 {floor['p99']} ms",
        "",
        "| ef | faiss single p50 ms | p99 ms | HTTP single p50 ms | p99 ms | recall "
        "| HTTP p50 - (faiss p50 + floor) ms |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for ef in results["config"]["ef_values"]:
        raw, one = find(runs, "faiss single", ef), find(runs, "HTTP single, 1 client", ef)
        lines.append(
            f"| {ef} | {raw.latency_ms['p50']} | {raw.latency_ms['p99']} "
            f"| {one.latency_ms['p50']} | {one.latency_ms['p99']} | {one.recall_at_10:.4f} "
            f"| {latency_gap_ms(runs, ef, floor):+.3f} |"
        )
    return lines


def find_many(runs: list[SearchRun], ef: int) -> SearchRun:
    return next(r for r in runs if "client processes" in r.method and r.ef == ef)


def summary_table(results: dict[str, Any]) -> list[str]:
    upload, build = results["upload"], results["build"]
    collection, restart, raw = results["collection"], results["restart"], results["faiss"]
    sealed = ", ".join(f"{s['points']:,}" for s in collection["sealed"])
    return [
        "| what | value |",
        "|---|--:|",
        f"| upload, {upload['points']:,} points (1,000/request) | {upload['seconds']:.1f} s "
        f"({upload['points_per_s']:,.0f} points/s) |",
        f"| background build, first job start to last job finish "
        f"| {fmt(build['seconds'], '.1f')} s |",
        f"| jobs | {build['jobs_by_kind']} (busy {build['busy_seconds']:.1f} s) |",
        f"| last job finished after the upload ended | "
        f"{fmt(build['last_finish_after_upload_end_s'], '.1f')} s |",
        f"| upload end to green | {build['settle']['seconds']:.1f} s |",
        f"| segments (incl. appendable) | {collection['segments_count']} "
        f"(sealed: {sealed}; appendable: {collection['appendable_points']:,}) |",
        f"| memory per vector, sealed segments | {fmt(collection['bytes_per_vector'], '.1f')} B |",
        f"| faiss in-process build | {raw['build_seconds']:.1f} s |",
        f"| faiss memory per vector (links + vectors) | {raw['bytes_per_vector']:.1f} B |",
        f"| server start, empty data folder, to /healthz "
        f"| {results['empty_start_seconds']:.2f} s |",
        f"| SIGTERM to exit | {restart['stop_seconds']:.2f} s (code {restart['exit_code']}) |",
        f"| restart to /healthz | {restart['start_to_healthz_seconds']:.2f} s |",
        f"| restart to green | {restart['start_to_green_seconds']:.2f} s "
        f"(new jobs: {len(restart['new_jobs'])}, segments unchanged: "
        f"{restart['segments_unchanged']}) |",
        f"| recall@10 after restart (ef {restart['recall_after_restart']['ef']}) "
        f"| {restart['recall_after_restart']['recall']:.4f} |",
    ]


def markdown_report(results: dict[str, Any]) -> str:
    m, config = results["machine"], results["config"]
    full_scan = config["full_scan_threshold_kb"]
    lines = [
        f"# Quiver HNSW pipeline: GloVe 6B 50-d, {config['n_base']:,} base vectors",
        "",
        machine_line(m),
        "",
        f"M={M}, ef_construct={EF_CONSTRUCT}, indexing_threshold={INDEXING_THRESHOLD:,}, "
        f"default_segment_number={SEGMENT_NUMBER}, full_scan_threshold="
        f"{'server default' if full_scan is None else f'{full_scan} KB'}; "
        f"{config['batch_queries']:,} batch queries, {config['single_queries']:,} single "
        f"queries ({config['clients']} processes), {config['single_queries_one_client']:,} "
        "single queries from one client.",
        "",
        *summary_table(results),
        "",
        *search_tables(results),
        "",
        "## Checks",
        "",
        "| check | at ef | value | target | |",
        "|---|--:|--:|--:|---|",
        *(
            f"| {c['name']} | {fmt(c['at_ef'], 'd')} | {fmt(c['value'], '.3f')} | {c['target']} "
            f"| {'PASS' if c['passed'] else 'FAIL'} |"
            for c in results["checks"]
        ),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Recall@10 (x) vs queries/s (y, log) for the three throughput series, ef labelled."""
    plt = pyplot()

    runs = [SearchRun(**{k: v for k, v in r.items() if k != "qps"}) for r in results["search"]]
    clients, efs = results["config"]["clients"], results["config"]["ef_values"]
    series = [
        ("Quiver HTTP, batches of 100", [find(runs, "HTTP batch", e) for e in efs], "o-"),
        (
            f"Quiver HTTP, single queries x{clients} clients",
            [find_many(runs, e) for e in efs],
            "s-",
        ),
        ("faiss in-process, batches of 100", [find(runs, "faiss batch", e) for e in efs], "^--"),
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, chosen, style in series:
        ax.plot([r.recall_at_10 for r in chosen], [r.qps for r in chosen], style, label=label)
        for r in chosen:
            ax.annotate(f"ef {r.ef}", (r.recall_at_10, r.qps), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries / s")
    ax.set_title(f"GloVe 50-d, {results['config']['n_base']:,} vectors, M={M}, efC={EF_CONSTRUCT}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def notes_for(results: dict[str, Any]) -> list[str]:
    notes = [
        "Upload time excludes JSON serialisation (bodies are built before the clock). Builds "
        "start while the upload runs, so the two overlap and share the CPUs.",
        "Quiver searches every sealed segment's graph with the same ef plus the appendable "
        "segment exactly, then merges; faiss searches one graph. Equal ef is not equal work.",
        "Latency check uses one client (like the floor); the x-client latencies include "
        "queueing behind the other clients.",
    ]
    appendable = results["collection"]["appendable_points"]
    if appendable:
        notes.append(
            f"{appendable:,} points stay in the appendable segment (below indexing_threshold) "
            "and are scanned exactly by every query."
        )
    flickers = results["build"]["settle"]["flickers"] + results["restart"]["settle"]["flickers"]
    if flickers:
        notes.append(f"status went green then back to yellow {flickers} time(s) while settling.")
    if results["restart"]["new_jobs"]:
        notes.append(f"restart queued jobs: {results['restart']['new_jobs']}")
    notes += busy_notes(results["cpu_busy_before_start"])
    return notes + [f"error: {e}" for e in results["errors"]]


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(
        parser, quick_help=f"smoke run: first {QUICK_BASE:,} base vectors", port=True
    )
    add = parser.add_argument
    add("--clients", type=int, default=8, help="client processes for HTTP single queries")
    add("--time-limit", type=float, default=60.0, help="seconds per HTTP search phase, at most")
    add("--settle-timeout", type=float, default=900.0, help="seconds to wait for green")
    add(
        "--full-scan-threshold",
        type=int,
        default=None,
        help="hnsw_config.full_scan_threshold in KB (default: the server's; 10 with --quick)",
    )
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    full_scan = args.full_scan_threshold
    return {
        "quick": quick,
        "n_base": QUICK_BASE if quick else None,
        "ef_values": list(QUICK_EF_VALUES if quick else EF_VALUES),
        "batch_queries": 1000 if quick else 10_000,
        "single_queries": 1000 if quick else 2000,
        "single_queries_one_client": 500 if quick else 1000,
        "faiss_single_queries": 1000 if quick else 2000,
        "healthz_requests": 1000 if quick else 2000,
        "clients": args.clients,
        "time_limit_s": args.time_limit,
        "settle_timeout_s": args.settle_timeout,
        # The quick run's 20k-point segments are under the server's default full-scan
        # threshold (10,000 KB = 51,200 vectors of 50 floats) and would be scanned exactly;
        # 10 KB is the smallest value the API accepts (as in Qdrant).
        "full_scan_threshold_kb": 10 if quick and full_scan is None else full_scan,
        "k": K,
        "search_batch": SEARCH_BATCH,
        "ingest_batch": INGEST_BATCH,
    }


def search_all(
    client: httpx.Client,
    server: QuiverServer,
    dataset: glove.GloveDataset,
    index: Any,
    config: dict[str, Any],
) -> tuple[list[SearchRun], dict[str, float], list[str]]:
    """Per ef, HTTP and faiss take turns (batches, then one-at-a-time); then x-client singles."""
    runs: list[SearchRun] = []
    errors: list[str] = []
    floor = http_floor(client, config["healthz_requests"])
    log(f"HTTP floor: GET /healthz {floor}")
    for ef in config["ef_values"]:
        batch, batch_errors = http_batches(
            client, dataset, config["batch_queries"], ef, config["time_limit_s"]
        )
        errors += batch_errors
        raw = faiss_batches(index, dataset, config["batch_queries"], ef)
        one = http_singles_one_client(
            client, dataset, config["single_queries_one_client"], ef, config["time_limit_s"]
        )
        raw_one = faiss_singles(index, dataset, config["faiss_single_queries"], ef)
        runs += [batch, raw, one, raw_one]
        log(
            f"ef {ef}: HTTP batch {batch.qps:,.0f} QPS r@10 {batch.recall_at_10:.4f} | faiss "
            f"{raw.qps:,.0f} QPS r@10 {raw.recall_at_10:.4f} | p50 HTTP "
            f"{one.latency_ms.get('p50')} ms, faiss {raw_one.latency_ms.get('p50')} ms"
        )
    many, many_errors = http_singles_processes(server.url, dataset, config)
    for run in many:
        log(f"ef {run.ef}: {run.method}: {run.qps:,.0f} QPS, {run.latency_ms}")
    server.check_alive()
    return runs + many, floor, errors + many_errors


def run(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    dataset = glove.load(config["n_base"])
    config["n_base"] = dataset.n_base
    log(f"data: {dataset.n_base:,} base vectors; building the faiss reference")
    index, build_s = build_faiss(dataset)
    results: dict[str, Any] = {
        "benchmark": "hnsw_glove50",
        "config": config,
        "machine": machine_info(),
        "cpu_busy_before_start": cpu_busy_fraction(),
        "faiss": {
            "build_seconds": round(build_s, 3),
            "bytes_per_vector": round(faiss_bytes_per_vector(index), 1),
        },
    }
    log(f"faiss build: {build_s:.1f}s")
    server = QuiverServer(args.port, keep_log=SERVER_LOG)
    started = time.perf_counter()
    with server, httpx.Client(base_url=server.url, headers=headers(), timeout=300.0) as client:
        results["empty_start_seconds"] = round(time.perf_counter() - started, 3)
        log(f"server up at {server.url} (log: {SERVER_LOG}); ingesting")
        results |= load_collection(client, dataset, config)
        runs, floor, errors = search_all(client, server, dataset, index, config)
        log("restart")
        results["restart"] = measure_restart(server, client, dataset, config)
        log(f"restart: {results['restart']}")
    ef, checks = compute_checks(runs, config["ef_values"], floor)
    results |= {
        "search": [r.as_dict() for r in runs],
        "http_floor_ms": floor,
        "ef_at_recall_target": ef,
        "checks": checks,
        "errors": errors,
        "load_average_at_end": os.getloadavg(),
    }
    results["notes"] = notes_for(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = run_config(args)
    return run_and_finish(lambda: run(args, config), args, "hnsw_glove50", markdown_report, plot)


if __name__ == "__main__":
    sys.exit(main())
