"""gRPC next to REST and raw faiss: batch search throughput and concurrent single queries.

GloVe-50 (390k base vectors, Cosine, HNSW M=16, ef_construct=100), ``hnsw_ef`` 128 (the
ef whose recall@10 reaches 0.95 on this set, as in ``bench_batch_overhead.py``):

* batches of 100 queries, one client in order, each cell the median of 5 passes over
  1,000 queries, the three taking turns pass by pass (the 2 cores are shared, and a load
  change must fall on all three): faiss ``IndexHNSWFlat`` in process; Quiver over REST
  (``/points/query/batch``, JSON); Quiver over gRPC (``Points/QueryBatch``, the RPC
  qdrant-client's ``query_batch_points`` sends). Both clients send prepared requests
  (bytes / messages built before the clock) and decode every reply. recall@10 of each
  against the exact top 10;
* single queries from 8 client processes at once (one connection each), 2,000 queries in
  all: queries/s and p50 / p99 latency for REST and gRPC.

The target (issue 21): gRPC batch throughput >= 0.85x raw faiss.

    nice -n 10 python bench/bench_grpc.py        # ~10 min on 2 cores
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

import faiss
import glove
import grpc
import httpx
import numpy as np
import orjson
from bench_bulk import bulk_load
from harness.cli import add_common_options, finish, log, new_parser
from harness.clients import run_client_processes
from harness.machine import cpu_busy_fraction, machine_info
from harness.server import QuiverServer, free_port, headers
from qdrant_client import grpc as q

EF = 128
BATCH = 100
QUERIES = 1000
PASSES = 5
K = 10
CLIENTS = 8
SINGLES = 2000
COLLECTION = "glove"


def interleaved_ms_per_batch(runs: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Per run, the median over ``PASSES`` passes (after one untimed pass each) of a pass's
    time per batch; the runs take turns pass by pass, so a change in the machine's load
    (2 shared cores) falls on all of them alike."""
    for run in runs.values():
        run()
    passes: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(PASSES):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            passes[name].append(time.perf_counter() - started)
    return {name: float(np.median(p)) * 1000 / (QUERIES / BATCH) for name, p in passes.items()}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(row) & set(exact[:K])) for row, exact in zip(found, truth, strict=True))
    return hits / (len(found) * K)


# ---- faiss ---------------------------------------------------------------------------


def faiss_search(data: glove.GloveDataset, queries: np.ndarray) -> Callable[[], np.ndarray]:
    """A pass of faiss ``IndexHNSWFlat`` (built here) over the queries, in batches."""
    index = faiss.IndexHNSWFlat(data.dimension, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    base = data.base / np.linalg.norm(data.base, axis=1, keepdims=True)
    index.add(base.astype(np.float32))
    index.hnsw.efSearch = EF
    unit = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    return lambda: np.concatenate(
        [index.search(unit[s : s + BATCH], K)[1] for s in range(0, len(unit), BATCH)]
    )


# ---- requests --------------------------------------------------------------------------


def rest_bodies(queries: np.ndarray) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "searches": [
                    {"query": v.tolist(), "limit": K, "params": {"hnsw_ef": EF}}
                    for v in queries[s : s + BATCH]
                ]
            }
        )
        for s in range(0, len(queries), BATCH)
    ]


def grpc_query(vector: np.ndarray) -> q.QueryPoints:
    nearest = q.Query(nearest=q.VectorInput(dense=q.DenseVector(data=vector.tolist())))
    return q.QueryPoints(
        collection_name=COLLECTION, query=nearest, limit=K, params=q.SearchParams(hnsw_ef=EF)
    )


def grpc_batches(queries: np.ndarray) -> list[q.QueryBatchPoints]:
    return [
        q.QueryBatchPoints(
            collection_name=COLLECTION,
            query_points=[grpc_query(v) for v in queries[s : s + BATCH]],
        )
        for s in range(0, len(queries), BATCH)
    ]


def rest_ids(content: bytes) -> list[list[int]]:
    return [[p["id"] for p in r["points"]] for r in orjson.loads(content)["result"]]


def grpc_ids(reply: q.QueryBatchResponse) -> list[list[int]]:
    return [[p.id.num for p in batch.result] for batch in reply.result]


# ---- batches over the wire -------------------------------------------------------------


def load_server(client: httpx.Client, data: glove.GloveDataset) -> None:
    body = {"vectors": {"size": data.dimension, "distance": "Cosine"}}
    client.put(f"/collections/{COLLECTION}", json=body).raise_for_status()
    bulk_load(client, COLLECTION, data.base)
    while client.get(f"/collections/{COLLECTION}").json()["result"]["status"] != "green":
        time.sleep(1)


def batches(
    client: httpx.Client,
    stub: q.PointsStub,
    in_process: Callable[[], np.ndarray],
    queries: np.ndarray,
    truth: np.ndarray,
) -> dict[str, dict[str, float]]:
    """faiss, REST and gRPC batches, interleaved pass by pass; recall of each."""
    bodies, messages = rest_bodies(queries), grpc_batches(queries)
    url = f"/collections/{COLLECTION}/points/query/batch"

    def rest() -> list[list[int]]:
        found: list[list[int]] = []
        for body in bodies:
            answer = client.post(url, content=body)
            answer.raise_for_status()
            found.extend(rest_ids(answer.content))
        return found

    def over_grpc() -> list[list[int]]:
        found: list[list[int]] = []
        for message in messages:
            found.extend(grpc_ids(stub.QueryBatch(message)))
        return found

    runs: dict[str, Callable[[], Any]] = {"faiss": in_process, "rest": rest, "grpc": over_grpc}
    times = interleaved_ms_per_batch(runs)
    return {
        name: {"recall": recall(np.asarray(run()), truth), "ms_per_batch": times[name]}
        for name, run in runs.items()
    }


# ---- concurrent single queries (module-level workers: spawned processes) --------------


def rest_worker(barrier: Barrier, url: str, vectors: np.ndarray) -> list[float]:
    client = httpx.Client(base_url=url, headers=headers(), timeout=60)
    bodies = [
        orjson.dumps({"query": v.tolist(), "limit": K, "params": {"hnsw_ef": EF}}) for v in vectors
    ]
    path = f"/collections/{COLLECTION}/points/query"
    client.post(path, content=bodies[0]).raise_for_status()
    return _timed(barrier, bodies, lambda body: client.post(path, content=body).raise_for_status())


def grpc_worker(barrier: Barrier, target: str, vectors: np.ndarray) -> list[float]:
    channel = grpc.insecure_channel(target)
    stub = q.PointsStub(channel)
    messages = [grpc_query(v) for v in vectors]
    stub.Query(messages[0])
    return _timed(barrier, messages, stub.Query)


def _timed(barrier: Barrier, requests: Sequence[Any], send: Callable[[Any], Any]) -> list[float]:
    """Wait for every client, then send in order; returns [start, end, latencies...]."""
    barrier.wait()
    started = time.perf_counter()
    latencies = []
    for request in requests:
        before = time.perf_counter()
        send(request)
        latencies.append(time.perf_counter() - before)
    return [started, time.perf_counter(), *latencies]


def singles(kind: str, address: str, queries: np.ndarray) -> dict[str, float]:
    worker = rest_worker if kind == "rest" else grpc_worker
    shares = np.array_split(queries[:SINGLES], CLIENTS)
    outcomes = run_client_processes(worker, [(address, share) for share in shares], 900)
    started = min(o[0] for o in outcomes)
    finished = max(o[1] for o in outcomes)
    latencies = np.concatenate([o[2:] for o in outcomes]) * 1000
    return {
        "queries_per_s": len(latencies) / (finished - started),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


def over_the_wire(data: glove.GloveDataset, in_process: Callable[[], np.ndarray]) -> dict[str, Any]:
    grpc_port = free_port()
    env = {"QUIVER_IDLE_SEAL_S": "0", "QUIVER_GRPC_PORT": str(grpc_port)}
    with QuiverServer(env=env) as server:
        client = httpx.Client(base_url=server.url, headers=headers(), timeout=600)
        log("loading the server")
        load_server(client, data)
        target = f"127.0.0.1:{grpc_port}"
        with grpc.insecure_channel(target) as channel:
            log("batches: faiss, REST and gRPC, interleaved")
            queries, truth = data.queries[:QUERIES], data.ground_truth[:QUERIES]
            measured = batches(client, q.PointsStub(channel), in_process, queries, truth)
        log(f"single queries, {CLIENTS} client processes")
        single = {
            "rest": singles("rest", server.url, data.queries),
            "grpc": singles("grpc", target, data.queries),
        }
    return {"batches": measured, "singles": single}


# ---- report ----------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    b, s = results["batches"], results["singles"]
    faiss_ms = b["faiss"]["ms_per_batch"]
    rows = []
    labels = (
        ("faiss", "faiss in process"),
        ("rest", "Quiver REST (JSON)"),
        ("grpc", "Quiver gRPC"),
    )
    for name, label in labels:
        ms = b[name]["ms_per_batch"]
        rows.append(
            f"| {label} | {ms:.2f} | {1000 * BATCH / ms:,.0f} | {faiss_ms / ms:.2f} "
            f"| {b[name]['recall']:.3f} |"
        )
    return "\n".join(
        [
            f"# gRPC vs REST vs faiss, GloVe-50 {results['points']:,} points, ef {EF}",
            "",
            "Command: `nice -n 10 python bench/bench_grpc.py` (one run). Batches of "
            f"{BATCH} queries, median of {PASSES} passes over {QUERIES:,} queries, one client, "
            "the three taking turns pass by pass; "
            f"recall@{K} against the exact top {K}.",
            "",
            "| | ms per batch | queries/s | x faiss | recall@10 |",
            "|--|--:|--:|--:|--:|",
            *rows,
            "",
            f"Single queries, {CLIENTS} client processes (one connection each), "
            f"{SINGLES:,} queries:",
            "",
            "| | queries/s | p50 ms | p99 ms |",
            "|--|--:|--:|--:|",
            *(
                f"| {label} | {s[n]['queries_per_s']:,.0f} | {s[n]['p50_ms']:.2f} "
                f"| {s[n]['p99_ms']:.2f} |"
                for n, label in (("rest", "REST"), ("grpc", "gRPC"))
            ),
            "",
        ]
    )


def main() -> int:
    parser = new_parser(__doc__, raw=True)
    parser.add_argument("--base", type=int, default=None, help="first N base vectors only")
    add_common_options(parser)
    args = parser.parse_args()
    busy = cpu_busy_fraction()
    data = glove.load(args.base)
    log("faiss index")
    in_process = faiss_search(data, data.queries[:QUERIES])
    wire = over_the_wire(data, in_process)
    faiss_ms = wire["batches"]["faiss"]["ms_per_batch"]
    results = {
        "machine": machine_info(),
        "cpu_busy_before": busy,
        "points": data.n_base,
        **wire,
        "grpc_vs_faiss": faiss_ms / wire["batches"]["grpc"]["ms_per_batch"],
        "rest_vs_faiss": faiss_ms / wire["batches"]["rest"]["ms_per_batch"],
    }
    return finish(results, args, "grpc_glove50", markdown)


if __name__ == "__main__":
    sys.exit(main())
