"""Serving benchmark (issue 20): Quiver over HTTP against qdrant-edge and faiss, in one run.

Same data and search width for everyone: GloVe 6B 50-d (390,000 base vectors, 10,000
held-out queries), HNSW m 16 / ef_construct 200, cosine, top 10, ef 96 for single queries
and ef 128 for batches of 100. One run measures, on the same machine:

1. Quiver, `POST /points/query` with one vector per request, driven by `wrk` at 1, 8 and
   32 connections (a Lua script posting the held-out queries in turn): queries/s, p50, p99,
   and recall@10 over HTTP from a separate pass of 1,000 queries; once with one server
   process (`QUIVER_WORKERS=1`), then restarted on the same data folder with the worker
   count `quiver serve` picks by default (min(CPUs, 4), ADR 0013), once every worker
   answers from its own view; each worker count first with the direct lane off
   (`QUIVER_DIRECT_LANE=false`, ADR 0021), then on;
2. qdrant-edge (Qdrant's Rust engine as a Python library), in process, 1 and 8 threads;
3. raw faiss `IndexHNSWFlat`, one query at a time from one caller;
4. batches of 100: `POST /points/query/batch` against faiss searching the same batches,
   taking turns so both see the same background load (for each worker count).

The targets are checked against the default worker count (what `quiver serve` runs).

The faiss index and the qdrant-edge shard are cached under `bench/data/` (git-ignored);
Quiver builds its index from an HTTP upload (one Arrow body to `/points/bulk`) in every
run; the in-process rows are measured after the servers stop. Results go to
`bench/results/serving.{md,json}` (`bench/data/serving_quick.*` with `--quick`).

    nice -n 10 .venv/bin/python bench/bench_serving.py           # full: 390k, 15 s per wrk run
    nice -n 10 .venv/bin/python bench/bench_serving.py --quick   # smoke: 50k, 3 s per run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import glove
import httpx
import numpy as np
import orjson
from bench_bulk import bulk_load
from harness.cli import DATA_DIR, SERVER_LOG, add_common_options, log, new_parser, run_and_finish
from harness.http import SETTLE_S, expect_ok, segments, wait_green, wait_settled
from harness.machine import machine_info, machine_line, process_cpu_s
from harness.metrics import latency_summary, recall_at_k
from harness.results import Results, check, check_at_most, checks_table
from harness.server import QuiverServer, headers

from server.settings import default_workers

COLLECTION = "glove"
K = 10
M = 16
EF_CONSTRUCT = 200
EF_SINGLE = 96
EF_BATCH = 128
BATCH = 100
INGEST_BATCH = 1000
CONNECTIONS = (1, 8, 32)
EDGE_THREADS = (1, 8)
QUICK_BASE = 50_000
RECALL_QUERIES = 1000
TARGET_EDGE_RATIO = 1.0
TARGET_P50_OVER_FAISS_MS = 0.5
TARGET_BATCH_RATIO = 0.75
LANE_OFF = ", direct lane off"
"""The label's ending of a row measured with ``QUIVER_DIRECT_LANE=false`` (the lean
requests through the ASGI app, as before ``server/api/direct_lane.py``), first for each
worker count."""

WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("QUIVER_QUERIES")) do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("QUIVER_API_KEY")
if key and key ~= "" then wrk.headers["api-key"] = key end
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/collections/%s/points/query", nil, bodies[i])
end
"""


# --------------------------------------------------------------------------- Quiver over HTTP


def load_quiver(client: httpx.Client, dataset: glove.GloveDataset) -> dict[str, Any]:
    """Create the collection, upload every base vector, wait for the index; timings."""
    create = {
        "vectors": {"size": dataset.dimension, "distance": "Cosine"},
        # full_scan_threshold 10 KB, as for qdrant-edge: the graph at every size (a 50k
        # quick run is under the 10 MB default and would be scanned exactly)
        "hnsw_config": {"m": M, "ef_construct": EF_CONSTRUCT, "full_scan_threshold": 10},
    }
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    started = time.perf_counter()
    bulk_load(client, COLLECTION, dataset.base)  # one streamed Arrow body
    wait_green(client, 1800.0, "index build", COLLECTION)
    searchable_s = round(time.perf_counter() - started, 1)
    layout = _segments(client)
    return {"searchable_s": searchable_s, "segments": layout,
            "settled": wait_settled(client, collection=COLLECTION)}  # fmt: skip


def _segments(client: httpx.Client) -> list[dict[str, Any]]:
    """The harness's segment list (``segments``), the three keys the report shows."""
    return [{k: s.get(k) for k in ("kind", "points", "index")} for s in segments(client)]


def query_body(vector: np.ndarray, ef: int) -> dict[str, Any]:
    return {"query": vector, "limit": K, "params": {"hnsw_ef": ef}}


def http_recall(client: httpx.Client, dataset: glove.GloveDataset, n: int) -> float:
    """recall@10 of single queries over HTTP at ef 96 (also warms the server up)."""
    found = np.full((n, K), -1, dtype=np.int64)
    for row in range(n):
        body = orjson.dumps(query_body(dataset.queries[row], EF_SINGLE), option=_NUMPY)
        points = expect_ok(
            client.post(f"/collections/{COLLECTION}/points/query", content=body), "q"
        )
        ids = [p["id"] for p in points["points"]]
        found[row, : len(ids)] = ids
    return recall_at_k(found, dataset.ground_truth[:n], K)


def run_wrk(
    url: str, queries_file: Path, script: Path, connections: int, seconds: int, pid: int | None
) -> dict:
    """One `wrk` run: queries/s, p50 / p99 in ms, requests that were not 2xx, and the
    server's CPU time per request (when its process id is known)."""
    threads = min(connections, 2)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
        url,
    ]  # fmt: skip
    env = {**os.environ, "QUIVER_QUERIES": str(queries_file)}
    cpu_before = None if pid is None else process_cpu_s(pid)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    requests = int(_grab(r"(\d+) requests in", out))
    cpu_ms = None if pid is None else (process_cpu_s(pid) - cpu_before) / requests * 1e3  # type: ignore[operator]
    rate = float(_grab(r"Requests/sec:\s+([\d.]+)", out))
    errors = _grab(r"Non-2xx or 3xx responses:\s+(\d+)", out, "0")
    socket_errors = _grab(r"Socket errors:(.*)", out, "")
    return {
        "connections": connections,
        "threads": threads,
        "seconds": seconds,
        "requests": requests,
        "cpu_ms_per_query": None if cpu_ms is None else round(cpu_ms, 3),
        "queries_per_s": round(rate, 1),
        "p50_ms": _ms(_grab(r"^\s+50%\s+(\S+)", out)),
        "p99_ms": _ms(_grab(r"^\s+99%\s+(\S+)", out)),
        "non_2xx": int(errors),
        "socket_errors": socket_errors.strip(),
    }


def _grab(pattern: str, text: str, default: str | None = None) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        if default is None:
            raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
        return default
    return found.group(1)


def _ms(value: str) -> float:
    """wrk's `812.00us` / `1.28ms` / `1.02s` in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:  # e.g. no request finished in time to have a percentile
        log(f"wrk latency {value!r} not understood; kept as NaN")
        return float("nan")
    number, unit = found.groups()
    return round(float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit], 3)


def http_batches(client: httpx.Client, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Batches of 100 over `POST /points/query/batch` at ef 128; (seconds, ids)."""
    ids = np.full((queries.shape[0], K), -1, dtype=np.int64)
    bodies = [
        orjson.dumps(
            {"searches": [query_body(v, EF_BATCH) for v in queries[s : s + BATCH]]}, option=_NUMPY
        )
        for s in range(0, queries.shape[0], BATCH)
    ]
    started = time.perf_counter()
    for n, body in enumerate(bodies):
        path = f"/collections/{COLLECTION}/points/query/batch"
        answers = expect_ok(client.post(path, content=body), "batch")
        for i, answer in enumerate(answers):
            found = [p["id"] for p in answer["points"]]
            ids[n * BATCH + i, : len(found)] = found
    return time.perf_counter() - started, ids


_NUMPY = orjson.OPT_SERIALIZE_NUMPY


# --------------------------------------------------------------------------- faiss


def faiss_hnsw(dataset: glove.GloveDataset) -> Any:
    """faiss `IndexHNSWFlat` (inner product on normalised vectors), cached in bench/data."""
    path = DATA_DIR / f"serving_faiss_hnsw_m{M}_efc{EF_CONSTRUCT}_{dataset.n_base}.index"
    if path.exists():
        return faiss.read_index(str(path))
    index = faiss.IndexHNSWFlat(dataset.dimension, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCT
    index.add(dataset.base)
    faiss.write_index(index, str(path))
    return index


def faiss_singles(index: Any, dataset: glove.GloveDataset, n: int) -> dict[str, Any]:
    """One query at a time from one caller at ef 96."""
    index.hnsw.efSearch = EF_SINGLE
    ids = np.empty((n, K), dtype=np.int64)
    latencies = []
    cpu, started = time.process_time(), time.perf_counter()
    for row in range(n):
        before = time.perf_counter()
        _, ids[row : row + 1] = index.search(dataset.queries[row : row + 1], K)
        latencies.append(time.perf_counter() - before)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _row(n, seconds, latencies, recall_at_k(ids, dataset.ground_truth[:n], K), cpu)


def faiss_batches(index: Any, queries: np.ndarray) -> tuple[float, np.ndarray]:
    index.hnsw.efSearch = EF_BATCH
    ids = np.empty((queries.shape[0], K), dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, queries.shape[0], BATCH):
        _, ids[start : start + BATCH] = index.search(queries[start : start + BATCH], K)
    return time.perf_counter() - started, ids


# --------------------------------------------------------------------------- qdrant-edge


def edge_shard(dataset: glove.GloveDataset) -> Any:
    """A qdrant-edge shard of the base vectors with the same HNSW settings, cached."""
    import qdrant_edge as edge

    path = DATA_DIR / f"serving_edge_m{M}_efc{EF_CONSTRUCT}_{dataset.n_base}"
    if path.exists():
        return edge.EdgeShard.load(str(path))
    config = edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(size=dataset.dimension, distance=edge.Distance.Cosine),
        hnsw_config=edge.HnswIndexConfig(m=M, ef_construct=EF_CONSTRUCT, full_scan_threshold=10),
        optimizers=edge.EdgeOptimizersConfig(indexing_threshold=10),
    )
    building = Path(tempfile.mkdtemp(dir=DATA_DIR))
    shard = edge.EdgeShard.create(str(building / "shard"), config)
    for start in range(0, dataset.n_base, INGEST_BATCH):
        rows = range(start, min(start + INGEST_BATCH, dataset.n_base))
        points = [edge.Point(i, dataset.base[i].tolist()) for i in rows]
        shard.update(edge.UpdateOperation.upsert_points(points))
    shard.optimize()
    shard.close()
    (building / "shard").rename(path)
    shutil.rmtree(building)
    return edge.EdgeShard.load(str(path))


def edge_queries(shard: Any, dataset: glove.GloveDataset, n: int, threads: int) -> dict:
    """`n` queries at ef 96 from `threads` caller threads, each one query per call."""
    import qdrant_edge as edge

    params = edge.SearchParams(hnsw_ef=EF_SINGLE)
    vectors = [dataset.queries[row].tolist() for row in range(n)]
    ids = np.full((n, K), -1, dtype=np.int64)
    latencies = [0.0] * n

    def one(row: int) -> None:
        request = edge.QueryRequest(limit=K, query=edge.Query.Nearest(vectors[row]), params=params)
        before = time.perf_counter()
        found = shard.query(request)
        latencies[row] = time.perf_counter() - before
        ids[row, : len(found)] = [p.id for p in found]

    one(0)  # warm-up
    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _row(n, seconds, latencies, recall_at_k(ids, dataset.ground_truth[:n], K), cpu)


def _row(
    n: int, seconds: float, latencies: Sequence[float], recall: float, cpu_s: float
) -> dict[str, Any]:
    """An in-process row; CPU is this process's, all threads (faiss's OpenMP included)."""
    summary = latency_summary(latencies, (50, 99))
    return {
        "queries": n,
        "cpu_ms_per_query": round(cpu_s / n * 1e3, 3),
        "seconds": round(seconds, 3),
        "queries_per_s": round(n / seconds, 1),
        "p50_ms": summary["p50"],
        "p99_ms": summary["p99"],
        "recall_at_10": round(recall, 4),
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Results:
    dataset = glove.load(QUICK_BASE if args.quick else None)
    log(f"data: {dataset.n_base:,} base vectors; faiss index (cached)")
    index = faiss_hnsw(dataset)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        files = _wrk_files(Path(scratch), dataset)
        if args.url:
            rows["quiver_load"] = {"searchable_s": None, "segments": None, "settled": None}
            rows["quiver"] = {"given": measure_quiver(args, args.url, None, dataset, index, files)}
        else:
            rows.update(run_quiver(args, dataset, index, files))
    # in process once the servers are gone (the qdrant-edge shard, cached, is only
    # opened now: its build is the longest step of a first run)
    rows["faiss_single"] = faiss_singles(index, dataset, args.singles)
    shard = edge_shard(dataset)
    for threads in EDGE_THREADS:
        rows[f"edge_{threads}_threads"] = edge_queries(shard, dataset, args.singles, threads)
    shard.close()
    log(f"faiss and qdrant-edge done: {rows}")
    return build_results(args, dataset, rows)


def run_quiver(
    args: argparse.Namespace, dataset: glove.GloveDataset, index: Any, files: tuple[Path, Path]
) -> dict[str, Any]:
    """Load one server process, then measure the same data folder restarted as one
    process and with the default worker count, each without the direct lane and with it."""
    workers = default_workers()
    measured: dict[str, Any] = {}
    answered: dict[str, Any] = {}
    single = {"QUIVER_WORKERS": "1"}
    lane_off = {"QUIVER_DIRECT_LANE": "false"}
    with QuiverServer(args.port, env=single, keep_log=SERVER_LOG, startup_timeout_s=300) as server:
        with httpx.Client(base_url=server.url, headers=headers(), timeout=600.0) as client:
            load = load_quiver(client, dataset)
        log(f"Quiver searchable: {load}")
        # each row on freshly started processes: without the protocol-level lane
        # (ADR 0021) first, then with it; one process, then the default worker count
        for label, env in ((f"1{LANE_OFF}", single | lane_off), ("1", single)):
            restart(server, env)
            measured[label] = measure_quiver(args, server.url, server.pid, dataset, index, files)
        several = {"QUIVER_WORKERS": str(workers)}
        for label, env in ((f"{workers}{LANE_OFF}", several | lane_off), (str(workers), several)):
            restart(server, env)
            answered[label] = wait_for_workers(server.url, dataset, workers)
            log(f"{label} workers answering: {answered[label]}")
            measured[label] = measure_quiver(args, server.url, server.pid, dataset, index, files)
    return {"quiver_load": load, "quiver": measured, "default_workers": workers,
            "answered_by": answered}  # fmt: skip


def restart(server: QuiverServer, env: dict[str, str]) -> None:
    """The same data folder in a new process with exactly ``env`` as its settings."""
    server.terminate()
    server._extra_env = dict(env)
    server.relaunch()
    server._wait_healthy()


def measure_quiver(
    args: argparse.Namespace,
    url: str,
    pid: int | None,
    dataset: glove.GloveDataset,
    index: Any,
    files: tuple[Path, Path],
) -> dict[str, Any]:
    """HTTP recall, `wrk` at each connection count and batches against one server."""
    n_batch = 2000 if args.quick else args.batch_queries
    row: dict[str, Any] = {}
    with httpx.Client(base_url=url, headers=headers(), timeout=600.0) as client:
        row["http_recall_at_10"] = round(http_recall(client, dataset, RECALL_QUERIES), 4)
        for connections in CONNECTIONS:
            row[f"http_{connections}_conn"] = run_wrk(url, *files, connections, wrk_seconds(args),
                                                      pid)  # fmt: skip
            log(f"wrk {connections}: {row[f'http_{connections}_conn']}")
        row["batches"] = measure_batches(client, index, dataset, n_batch)
    return row


def wait_for_workers(url: str, dataset: glove.GloveDataset, workers: int) -> dict[str, int]:
    """Queries over fresh connections (the kernel spreads them over the workers'
    sockets) until every worker has answered one from its own view; who answered how
    often. A reader forwards reads to the owner until its view is loaded."""
    body = orjson.dumps(query_body(dataset.queries[0], EF_SINGLE), option=_NUMPY)
    answered: dict[str, int] = {}
    fresh = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + 600.0
    with httpx.Client(base_url=url, headers=headers(), timeout=60, limits=fresh) as client:
        while len(answered) < workers and time.monotonic() < deadline:
            response = client.post(f"/collections/{COLLECTION}/points/query", content=body)
            worker = response.headers.get("x-quiver-worker", "single")
            answered[worker] = answered.get(worker, 0) + 1
            if len(answered) < workers:
                time.sleep(0.05)
    return answered


def _wrk_files(scratch: Path, dataset: glove.GloveDataset) -> tuple[Path, Path]:
    """The Lua script and the JSON bodies it posts (one held-out query per line)."""
    queries_file = scratch / "queries.jsonl"
    lines = [orjson.dumps(query_body(v, EF_SINGLE), option=_NUMPY) for v in dataset.queries]
    queries_file.write_bytes(b"\n".join(lines) + b"\n")
    script = scratch / "query.lua"
    script.write_text(WRK_SCRIPT.replace("%s", COLLECTION))
    return queries_file, script


def measure_batches(
    client: httpx.Client, index: Any, dataset: glove.GloveDataset, n: int, rounds: int = 5
) -> dict[str, Any]:
    """HTTP and faiss batches of 100 at ef 128 over the same queries, in alternate turns."""
    http_s = faiss_s = 0.0
    http_ids, faiss_ids = np.empty((n, K), np.int64), np.empty((n, K), np.int64)
    http_batches(client, dataset.queries[:BATCH])  # warm-up
    step = -(-n // rounds // BATCH) * BATCH
    for start in range(0, n, step):
        part = slice(start, min(start + step, n))
        seconds, http_ids[part] = http_batches(client, dataset.queries[part])
        http_s += seconds
        seconds, faiss_ids[part] = faiss_batches(index, dataset.queries[part])
        faiss_s += seconds
    truth = dataset.ground_truth[:n]
    return {
        "queries": n,
        "http_queries_per_s": round(n / http_s, 1),
        "faiss_queries_per_s": round(n / faiss_s, 1),
        "http_recall_at_10": round(recall_at_k(http_ids, truth, K), 4),
        "faiss_recall_at_10": round(recall_at_k(faiss_ids, truth, K), 4),
        "faiss_threads": faiss.omp_get_max_threads(),
    }


def build_results(
    args: argparse.Namespace, dataset: glove.GloveDataset, rows: dict[str, Any]
) -> Results:
    edge8, faiss_single = rows["edge_8_threads"], rows["faiss_single"]
    judged = str(rows.get("default_workers", "given"))
    quiver = rows["quiver"][judged]
    batches = quiver["batches"]
    checks = [
        check(
            f"HTTP q/s at 8 connections ({judged} workers) / qdrant-edge q/s at 8 threads",
            quiver["http_8_conn"]["queries_per_s"] / edge8["queries_per_s"],
            TARGET_EDGE_RATIO,
        ),
        check_at_most(
            f"HTTP p50 at 1 connection ({judged} workers) - faiss single-query p50",
            quiver["http_1_conn"]["p50_ms"] - faiss_single["p50_ms"],
            TARGET_P50_OVER_FAISS_MS,
            "ms",
        ),
        check(
            f"HTTP batch q/s ({judged} workers) / faiss batch q/s",
            batches["http_queries_per_s"] / batches["faiss_queries_per_s"],
            TARGET_BATCH_RATIO,
        ),
    ]
    return {
        "benchmark": "serving",
        "config": {
            "n_base": dataset.n_base,
            "m": M,
            "ef_construct": EF_CONSTRUCT,
            "ef_single": EF_SINGLE,
            "ef_batch": EF_BATCH,
            "k": K,
            "wrk_seconds": wrk_seconds(args),
            "singles": args.singles,
            "quiver_workers": list(rows["quiver"]),
            "server": "given by --url" if args.url else "started by this run",
        },
        "machine": machine_info(load_average_at_end=os.getloadavg()),
        "rows": rows,
        "checks": checks,
    }


def markdown_report(results: Results) -> str:
    rows, config = results["rows"], results["config"]
    table = [
        "| system | how asked | queries/s | p50 ms | p99 ms | CPU ms/query | recall@10 |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for workers, quiver in rows["quiver"].items():
        table += _quiver_lines(workers, quiver)
    for threads in EDGE_THREADS:
        row = rows[f"edge_{threads}_threads"]
        table.append(_line("qdrant-edge, in process", f"{threads} thread(s)", row))
    table.append(_line("faiss HNSWFlat, in process", "one query at a time", rows["faiss_single"]))
    for workers, quiver in rows["quiver"].items():
        b = quiver["batches"]
        table += [
            f"| {_system(workers)} | `/points/query/batch`, 100 per request, "
            f"ef {EF_BATCH} | {b['http_queries_per_s']:,.0f} | - | - | - | "
            f"{b['http_recall_at_10']:.4f} |",
            f"| faiss HNSWFlat, in process (same turns) | batches of 100, ef {EF_BATCH}, "
            f"{b['faiss_threads']} OpenMP threads | {b['faiss_queries_per_s']:,.0f} | - | - | - | "
            f"{b['faiss_recall_at_10']:.4f} |",
        ]
    load = rows["quiver_load"]
    searchable = (
        f"Quiver searchable {load['searchable_s']} s after the upload began (one process; "
        f"segments: {load['segments']}); its segments settled (green, unchanged for "
        f"{SETTLE_S:.0f} s) {load['settled']['waited_s']} s later "
        f"({load['settled']['segments']}), before any row was measured; then restarted on "
        "the same folder with "
        f"{rows['default_workers']} workers, measured once every worker answered from its "
        f"own view (answers while waiting: {rows['answered_by']})"
        if load["searchable_s"] is not None
        else "Quiver server given by --url, its collection loaded beforehand"
    )
    return (
        "\n".join(
            [
                f"# Serving: GloVe 6B 50-d, {config['n_base']:,} base vectors, HNSW m {M} / "
                f"ef_construct {EF_CONSTRUCT}, ef {EF_SINGLE} (batches ef {EF_BATCH})",
                "",
                machine_line(results["machine"]),
                "",
                *table,
                "",
                *checks_table(results["checks"]),
                "",
                f"- {searchable}; `wrk` runs of {config['wrk_seconds']} s; "
                f"in-process rows over {config['singles']:,} queries.",
                "- CPU ms/query: the server's CPU time (every worker process) over the `wrk` "
                "run per request (HTTP parsing, Python, search threads); in-process rows: "
                "this process's CPU per query. Less disturbed than rates by other load on a "
                "shared machine.",
                "- HTTP recall@10 is from a separate pass of "
                f"{RECALL_QUERIES:,} single queries (wrk does not read the answers).",
            ]
        )
        + "\n"
    )


def _quiver_lines(workers: str, quiver: dict[str, Any]) -> list[str]:
    lines = []
    for connections in CONNECTIONS:
        row = quiver[f"http_{connections}_conn"]
        errors = row["non_2xx"] + (1 if row["socket_errors"] else 0)
        how = f"`/points/query` one vector, `wrk` {connections} conn" + (
            f" ({row['non_2xx']} non-2xx, {row['socket_errors']})" if errors else ""
        )
        lines.append(_line(_system(workers), how, row, quiver["http_recall_at_10"]))
    return lines


def _system(label: str) -> str:
    return f"Quiver, HTTP, {label.removesuffix(LANE_OFF)} worker(s)" + (
        LANE_OFF if label.endswith(LANE_OFF) else ""
    )


def _line(system: str, how: str, row: dict[str, Any], recall: float | None = None) -> str:
    recall = row.get("recall_at_10", recall)
    shown = "-" if recall is None else f"{recall:.4f}"
    cpu = "-" if row.get("cpu_ms_per_query") is None else f"{row['cpu_ms_per_query']:.3f}"
    return (
        f"| {system} | {how} | {row['queries_per_s']:,.0f} | {row['p50_ms']:.3f} | "
        f"{row['p99_ms']:.3f} | {cpu} | {shown} |"
    )


def wrk_seconds(args: argparse.Namespace) -> int:
    if args.seconds is not None:
        return int(args.seconds)
    return 3 if args.quick else 15


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help=f"smoke run on {QUICK_BASE:,} base vectors", port=True)
    add = parser.add_argument
    add("--seconds", type=int, default=None, help="seconds per wrk run (default 15; quick 3)")
    add("--singles", type=int, default=5000, help="queries per in-process single-query row")
    add("--batch-queries", type=int, default=5000, help="queries sent in batches of 100")
    add(
        "--url",
        default=None,
        help="measure a running server whose `glove` collection already holds this data set "
        "(no upload; e.g. one started with more workers)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench_serving needs `wrk` on PATH")
    measure: Callable[[], Results] = lambda: run(args)  # noqa: E731
    return run_and_finish(measure, args, "serving", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
