"""32 clients mixing writes and reads on GloVe-50 (issue 20): five server setups.

Each client sends, one request at a time on a keep-alive connection, a seeded mix of
30% single-point upserts, 10% deletes and 15% payload edits of its own points, and
45% queries (half filtered, half plain; HNSW ef 96, limit 10). The same server data
is measured under each of ``CONFIGS`` in one run: one fsync per write (before group
commit), group commit with every write through the full FastAPI route (the state before
the lean write path), group commit with the lean write path, the same answered below
ASGI by the protocol-level direct lane (the judged phase), and that as two worker
processes (owner and reader, ADR 0013). Each phase runs as
``--rounds`` slices taken in turn, the server restarted between, so that the machine's
changing load falls on every phase alike. After each slice every acknowledged write is
checked: the points a client was told exist carry the payload it last set, the ones it
deleted are gone. The CPU seconds of the server and of the client processes are recorded
(on a 2-core machine the load generator competes with the server).

    .venv/bin/python bench/bench_mixed.py            # 390k base vectors, 60 s per phase
    .venv/bin/python bench/bench_mixed.py --quick    # 20k base vectors, 10 s per phase
"""

from __future__ import annotations

import http.client
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from typing import Any

import glove
import httpx
import numpy as np
import orjson
from bench_core import ingest_bodies, poll_until_green
from harness.cli import add_common_options, finish, guarded, log, new_parser
from harness.clients import run_client_processes
from harness.http import expect_ok
from harness.machine import machine_info, machine_line, process_cpu_s
from harness.metrics import latency_summary, rate
from harness.results import check, check_at_most, checks_table
from harness.server import HOST, QuiverServer, headers

COLLECTION = "glove"
EF = 96
CLIENTS = 32
PROCESSES = 4
QUICK_BASE = 20_000
IDS_PER_CLIENT = 1_000_000
FIRST_WRITE_ID = 10_000_000
TARGET_SPEEDUP = 5.0
ISSUE_REQUESTS_PER_S = 179.0
"""What issue 20 measured for this mix before group commit (390k, one process)."""
TARGET_P99_MS = 50.0
ASGI = {"QUIVER_DIRECT_LANE": "false"}
LANE = {"QUIVER_GROUP_COMMIT": "true", "QUIVER_LEAN_WRITES": "true", "QUIVER_DIRECT_LANE": "true"}
"""The judged setup's settings (the defaults), also the 2-worker phase's."""
CONFIGS: list[tuple[str, dict[str, str]]] = [
    ("one fsync per write", {"QUIVER_GROUP_COMMIT": "false", "QUIVER_LEAN_WRITES": "false"} | ASGI),
    ("group commit", {"QUIVER_GROUP_COMMIT": "true", "QUIVER_LEAN_WRITES": "false"} | ASGI),
    (
        "group commit + lean writes",
        {"QUIVER_GROUP_COMMIT": "true", "QUIVER_LEAN_WRITES": "true"} | ASGI,
    ),
    ("group commit + lean writes + direct lane", LANE),
    ("the same with 2 workers", LANE | {"QUIVER_WORKERS": "2"}),
]
"""The phases: the behaviour before group commit, full FastAPI routes for writes, writes
through the lean ASGI layer (``server/api/fast_write.py``), the lean requests answered
by the HTTP protocol itself (``server/api/direct_lane.py``), all in one process; then
the same as an owner and a reader (ADR 0013; the default worker count on 2 CPUs), shown
beside the judged phase: every write moves the shared generation, so the reader forwards
what it takes to the owner."""
BASELINE = "group commit"
JUDGED = "group commit + lean writes + direct lane"
WORKERS = "the same with 2 workers"
MIX = [("upsert", 30), ("delete", 10), ("payload", 15), ("query", 23), ("filtered", 22)]

Oracle = dict[int, dict[str, Any] | None]
"""A client's acknowledged state: point id -> its payload, or None once deleted."""


class MixedClient:
    """One client: its own id range, its own seeded operation sequence."""

    def __init__(self, port: int, number: int, phase: int, queries: np.ndarray) -> None:
        """``phase``: the slice's number, which keeps its ids apart from every other's."""
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)
        self.headers = headers()
        self.rng = random.Random(number * 1_000 + phase)
        self.queries = queries
        self.next_id = FIRST_WRITE_ID + (phase * CLIENTS + number) * IDS_PER_CLIENT
        self.oracle: Oracle = {}
        self.alive: list[int] = []
        self.latencies: dict[str, list[float]] = {name: [] for name, _ in MIX}
        self.errors: list[str] = []

    def run(self, stop_at: float) -> None:
        names = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        while time.perf_counter() < stop_at:
            name = self.rng.choices(names, weights)[0]
            if name in ("delete", "payload") and not self.alive:
                name = "upsert"
            started = time.perf_counter()
            try:
                getattr(self, name)()
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                self.errors.append(f"{name}: {exc!r}"[:300])
                self.conn.close()
                continue
            self.latencies[name].append(time.perf_counter() - started)
        self.conn.close()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        url = f"/collections/{COLLECTION}/{path}"
        self.conn.request(method, url, orjson.dumps(body), self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return orjson.loads(data)["result"]

    def vector(self) -> list[float]:
        row = self.rng.randrange(len(self.queries))
        return [float(x) for x in self.queries[row]]

    def upsert(self) -> None:
        pid, self.next_id = self.next_id, self.next_id + 1
        payload = {"client": pid % CLIENTS, "tag": pid % 10, "n": 0}
        point = {"id": pid, "vector": self.vector(), "payload": payload}
        self.send("PUT", "points?wait=true", {"points": [point]})
        self.oracle[pid] = payload
        self.alive.append(pid)

    def delete(self) -> None:
        pid = self.alive.pop(self.rng.randrange(len(self.alive)))
        self.send("POST", "points/delete?wait=true", {"points": [pid]})
        self.oracle[pid] = None

    def payload(self) -> None:
        pid = self.alive[self.rng.randrange(len(self.alive))]
        n = self.rng.randrange(1_000_000)
        self.send("POST", "points/payload?wait=true", {"payload": {"n": n}, "points": [pid]})
        self.oracle[pid] = {**(self.oracle[pid] or {}), "n": n}

    def query(self) -> None:
        body = {"query": self.vector(), "limit": 10, "params": {"hnsw_ef": EF}}
        self.send("POST", "points/query", body)

    def filtered(self) -> None:
        tag = {"key": "tag", "match": {"value": self.rng.randrange(10)}}
        body = {"query": self.vector(), "limit": 10, "params": {"hnsw_ef": EF}}
        self.send("POST", "points/query", {**body, "filter": {"must": [tag]}})


def client_process(
    barrier: Barrier, port: int, numbers: list[int], phase: int, queries: np.ndarray, seconds: float
) -> list[dict[str, Any]]:
    """One process's clients, each on its own thread, all starting together."""
    clients = [MixedClient(port, number, phase, queries) for number in numbers]
    barrier.wait()
    cpu_before = _cpu_s()
    stop_at = time.perf_counter() + seconds
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(lambda c: c.run(stop_at), clients))
    cpu_s = _cpu_s() - cpu_before
    return [{"oracle": c.oracle, "latencies": c.latencies, "errors": c.errors,
             "cpu_s": cpu_s if i == 0 else 0.0} for i, c in enumerate(clients)]  # fmt: skip


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, all threads."""
    times = os.times()
    return times.user + times.system


def run_slice(
    server: QuiverServer, slice_number: int, queries: np.ndarray, seconds: float
) -> dict[str, Any]:
    """One timed stretch of the 32 clients; their raw outcomes, acknowledged writes checked."""
    numbers = [list(range(CLIENTS))[p::PROCESSES] for p in range(PROCESSES)]
    args = [(server.port, chunk, slice_number, queries, seconds) for chunk in numbers]
    server_cpu_before = process_cpu_s(server.pid)
    outcomes = run_client_processes(client_process, args, timeout_s=seconds + 300)
    server_cpu_s = process_cpu_s(server.pid) - server_cpu_before
    clients = [client for chunk in outcomes for client in chunk]
    oracle: Oracle = {pid: p for c in clients for pid, p in c["oracle"].items()}
    return {
        "latencies": {name: [t for c in clients for t in c["latencies"][name]] for name, _ in MIX},
        "errors": [e for c in clients for e in c["errors"]],
        "client_cpu_s": sum(c["cpu_s"] for c in clients),
        "server_cpu_s": server_cpu_s,
        "missing_writes": verify(server.url, oracle),
        "acknowledged_writes": len(oracle),
    }


def summarize(slices: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """One configuration's slices as one measurement over ``seconds`` of load."""
    by_op = {name: [t for s in slices for t in s["latencies"][name]] for name, _ in MIX}
    everything = [t for times in by_op.values() for t in times]
    errors = [e for s in slices for e in s["errors"]]
    return {
        "requests": len(everything),
        "seconds": seconds,
        "requests_per_s": round(rate(len(everything), seconds), 1),
        "latency_ms": latency_summary(everything),
        "by_operation": {n: {"count": len(t), **latency_summary(t)} for n, t in by_op.items()},
        "client_cpu_s": round(sum(s["client_cpu_s"] for s in slices), 1),
        "server_cpu_s": round(sum(s["server_cpu_s"] for s in slices), 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "missing_writes": sum(s["missing_writes"] for s in slices),
        "acknowledged_writes": sum(s["acknowledged_writes"] for s in slices),
    }


def verify(url: str, oracle: Oracle) -> int:
    """How many acknowledged states the server does not show (0 is right)."""
    wrong = 0
    ids = sorted(oracle)
    with httpx.Client(base_url=url, headers=headers(), timeout=120.0) as client:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            body = {"ids": chunk, "with_payload": True}
            found = expect_ok(client.post(f"/collections/{COLLECTION}/points", json=body), "get")
            payloads = {record["id"]: record["payload"] for record in found}
            wrong += sum(payloads.get(pid) != oracle[pid] for pid in chunk)
    return wrong


def load(server: QuiverServer, dataset: glove.GloveDataset) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, headers=headers(), timeout=300.0) as client:
        create = {"vectors": {"size": dataset.dimension, "distance": "Cosine"},
                  "hnsw_config": {"m": 16, "ef_construct": 200}}  # fmt: skip
        expect_ok(client.put(f"/collections/{COLLECTION}", json=create), "create")
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            url = f"/collections/{COLLECTION}/points?wait=true"
            list(pool.map(lambda body: expect_ok(client.put(url, content=body), "upsert"),
                          ingest_bodies(dataset)))  # fmt: skip
        index = {"field_name": "tag", "field_schema": "integer"}
        expect_ok(client.put(f"/collections/{COLLECTION}/index?wait=true", json=index), "index")
        state, settle_s = poll_until_green(client, 900.0)
    return {"load_s": round(time.perf_counter() - started, 1), "settle_s": round(settle_s, 1),
            "state": state}  # fmt: skip


def measure(dataset: glove.GloveDataset, seconds: float, rounds: int) -> dict[str, Any]:
    """Each configuration for ``seconds`` in all, as ``rounds`` slices taken in turn (the
    machine's load changes; alternating shares it out), restarting the server between."""
    queries = dataset.queries[:2000]
    slices: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in CONFIGS}
    with QuiverServer(env=dict(CONFIGS[0][1]), startup_timeout_s=300) as server:
        log(f"loading {dataset.n_base:,} points")
        loaded = load(server, dataset)
        log(f"loaded: {loaded}")
        for number in range(rounds * len(CONFIGS)):
            label, env = CONFIGS[number % len(CONFIGS)]
            if number:
                restart(server, env)
            log(f"{label}: {CLIENTS} clients for {seconds / rounds:.0f} s")
            slices[label].append(run_slice(server, number, queries, seconds / rounds))
    phases = {label: summarize(taken, seconds) for label, taken in slices.items()}
    for label, phase in phases.items():
        log(f"{label}: {phase}")
    return {"load": loaded, "phases": phases}


def restart(server: QuiverServer, env: dict[str, str]) -> None:
    """The same data folder under another configuration, indexed again before timing."""
    server.terminate()
    server._extra_env = dict(env)  # nothing of the previous phase (its workers) carries over
    server.relaunch()
    server._wait_healthy()
    with httpx.Client(base_url=server.url, headers=headers(), timeout=60) as client:
        poll_until_green(client, 900.0)


def build_results(
    measured: dict[str, Any], n_base: int, seconds: float, rounds: int
) -> dict[str, Any]:
    phases = measured["phases"]
    full, lean = phases[BASELINE], phases[JUDGED]
    speedup = lean["requests_per_s"] / full["requests_per_s"]
    checks = [
        check(f"requests/s, {JUDGED} vs {BASELINE} (same run)", speedup, 1.0),
        check(
            f"requests/s, {JUDGED} vs the issue's {ISSUE_REQUESTS_PER_S:.0f}",
            lean["requests_per_s"] / ISSUE_REQUESTS_PER_S,
            TARGET_SPEEDUP,
        ),
        check_at_most(f"p99, {JUDGED}", lean["latency_ms"]["p99"], TARGET_P99_MS, "ms"),
        check_at_most("errors, every phase", sum(p["errors"] for p in phases.values()), 0),
        check_at_most(
            "acknowledged writes missing, every phase",
            sum(p["missing_writes"] for p in phases.values()),
            0,
        ),
    ]
    return {"config": {"n_base": n_base, "seconds": seconds, "rounds": rounds,
                       "clients": CLIENTS, "client_processes": PROCESSES, "ef": EF,
                       "mix": dict(MIX), "phases": dict(CONFIGS)},
            "machine": machine_info(), **measured, "speedup": round(speedup, 2),
            "workers_ratio": round(phases[WORKERS]["requests_per_s"] / lean["requests_per_s"], 2),
            "checks": checks}  # fmt: skip


def markdown_report(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f"# Mixed reads and writes, GloVe-50 {config['n_base']:,} points, "
        f"{config['clients']} clients, {config['seconds']:.0f} s per phase",
        "",
        machine_line(results["machine"]),
        "",
        f"Each phase ran {config['seconds']:.0f} s in all, as {config['rounds']} slices taken "
        "in turn with the other phases (server restarted between slices). CPU: seconds used "
        "by the server's processes and by the client processes over the phase.",
        "",
        "| phase | requests/s | p50 ms | p99 ms | errors | acknowledged writes | missing "
        "| server CPU s | client CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, phase in results["phases"].items():
        lines.append(
            f"| {label} | {phase['requests_per_s']:,.0f} | {phase['latency_ms']['p50']:.1f} | "
            f"{phase['latency_ms']['p99']:.1f} | {phase['errors']} | "
            f"{phase['acknowledged_writes']:,} | {phase['missing_writes']} | "
            f"{phase['server_cpu_s']:.1f} | {phase['client_cpu_s']:.1f} |"
        )
    lines += ["", "| phase | operation | count | p50 ms | p99 ms |", "|---|---|--:|--:|--:|"]
    for label, phase in results["phases"].items():
        for name, row in phase["by_operation"].items():
            lines.append(f"| {label} | {name} | {row['count']:,} | {row.get('p50', 0):.1f} | "
                         f"{row.get('p99', 0):.1f} |")  # fmt: skip
    lines += ["", f"{JUDGED} vs {BASELINE}: {results['speedup']:.2f}x requests/s.", ""]
    lines += [f"{WORKERS} vs one process: {results['workers_ratio']:.2f}x requests/s (a reader "
              "forwards what it takes to the owner while writes keep its view stale; ADR 0013).",
              ""]  # fmt: skip
    lines += checks_table(results["checks"])
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help="20k base vectors, 10 s per phase")
    parser.add_argument("--seconds", type=float, default=None, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="slices per phase, in turn")
    args = parser.parse_args(argv)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    dataset = glove.load(QUICK_BASE if args.quick else None)
    measured = guarded(lambda: measure(dataset, seconds, args.rounds))
    if measured is None:
        return 2
    results = build_results(measured, dataset.n_base, seconds, args.rounds)
    return finish(results, args, "mixed", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
