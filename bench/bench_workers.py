"""Multi-process serving (ADR 0013) on GloVe 6B 50-d: queries/s and memory, 1 vs 2 workers.

One run, one data folder: a server with `QUIVER_WORKERS=1` loads the 390k base vectors
(Arrow bulk body, HNSW defaults) and waits until they are indexed. Restarted on that
folder (so its memory holds no ingest leftovers), it gets `wrk`'s single
`POST /points/query` requests (k 10, `hnsw_ef` 96, 200 GloVe queries in turn) over 1
and 8 connections. The same folder is served again with `QUIVER_WORKERS=2` (owner + one
reader) and measured the same way. Memory is read from `/proc/<pid>/smaps_rollup` of every
server process after its load: RSS (what `ps` shows; it counts shared pages in full in
every process), PSS (shared pages split between the processes sharing them) and USS
(private pages only). The issue's target: RSS per extra worker <= 15% of the single
process's RSS. RSS counts every shared page (the imported code the workers inherit from
the supervisor, the graph they all map from the segment file) in full in every process,
so summing it counts the same memory several times; the memory an extra worker really
adds is the PSS sum of the two-worker server (supervisor, owner, reader) minus the single
process's PSS, and that is what the verdict compares with 15% of the single RSS. The
RSS sum of reader and supervisor is printed too.

With `--third` the folder is also served by 3 workers (owner + two readers): what the second
reader adds is the cost of each extra worker past the first, whose supervisor is paid once.
`--data FOLDER` keeps the loaded folder: a later run serves it without loading, so two code
versions compare on one folder (its first multi-worker start then finds the segments' rows
files already written, ADR 0013). Saves `bench/results/<stem>.{json,md}` (`--stem`, default
`workers_glove50`; `bench/data/<stem>_quick.*` with `--quick`).

    nice -n 10 .venv/bin/python bench/bench_workers.py            # 390k base vectors
    nice -n 10 .venv/bin/python bench/bench_workers.py --quick    # 50k
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import glove
import httpx
import numpy as np
import orjson
from bench_bulk import bulk_load
from harness.cli import DATA_DIR, RESULTS_DIR, log
from harness.server import free_port

COLLECTION = "glove"
QUICK_BASE = 50_000
K = 10
EF = 96
QUERY_BODIES = 200
CONNECTIONS = (1, 8)
TARGET_EXTRA_RSS = 0.15
REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 900.0
READER_TIMEOUT_S = 120.0


class Server:
    """`python -m server.cli serve` on a given data folder with `QUIVER_WORKERS` set."""

    def __init__(self, data_dir: Path, workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "QUIVER_GRPC_PORT": "0", "QUIVER_WORKERS": str(workers)}
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
                   "--data-dir", str(data_dir)]  # fmt: skip
        with log_path.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)  # fmt: skip
        self._wait(lambda c: c.get("/healthz").status_code == 200)

    def pids(self) -> list[int]:
        """The supervisor's workers (owner first), or the single server process."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(c) for c in children) or [pid]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)

    def _wait(self, ready: Any) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError("the server exited; see its log")
                try:
                    if ready(client):
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        raise RuntimeError("the server did not become ready")


def load(server: Server, base: np.ndarray) -> float:
    """Upload the base vectors and wait until indexed; seconds to searchable."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=600) as client:
        body = {"vectors": {"size": base.shape[1], "distance": "Cosine"}}
        client.put(f"/collections/{COLLECTION}", json=body).raise_for_status()
        bulk_load(client, COLLECTION, base)
    server._wait(
        lambda c: c.get(f"/collections/{COLLECTION}").json()["result"]["status"] == "green"
    )
    return time.perf_counter() - started


def wait_for_reader(server: Server, body: bytes) -> dict[str, int]:
    """Queries over fresh connections until the reader answers (it forwards every read
    until its first view is current, which at 390k can take its reload gap, ~15 s);
    who answered how often."""
    answered: dict[str, int] = {}
    fresh = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + READER_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=30, limits=fresh) as client:
        while time.monotonic() < deadline:
            time.sleep(0.02)
            response = client.post(
                f"/collections/{COLLECTION}/points/query",
                content=body,
                headers={"content-type": "application/json"},
            )
            worker = response.headers.get("x-quiver-worker", "single")
            answered[worker] = answered.get(worker, 0) + 1
            if sum(answered.values()) >= 50 and "1" in answered:
                break
    return answered


def memory(pids: list[int]) -> list[dict[str, float]]:
    """RSS / PSS / USS in MiB per process."""
    rows = []
    for pid in pids:
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) / 1024
        uss = fields["Private_Clean"] + fields["Private_Dirty"]
        rows.append({"pid": pid, "rss": fields["Rss"], "pss": fields["Pss"], "uss": uss})
    return rows


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
               "--latency", "-s", str(script), url]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "queries_per_s": rate,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_script(queries: np.ndarray, path: Path) -> Path:
    bodies = [
        orjson.dumps({"query": q.tolist(), "limit": K, "params": {"hnsw_ef": EF}}).decode()
        for q in queries
    ]
    lua = "local bodies = {\n" + ",\n".join(f"[[{b}]]" for b in bodies) + "\n}\n"
    lua += (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "local i = 0\nrequest = function()\n  i = i % #bodies + 1\n"
        f'  return wrk.format(nil, "/collections/{COLLECTION}/points/query", nil, bodies[i])\n'
        "end\n"
    )
    path.write_text(lua)
    return path


def measure(server: Server, script: Path, seconds: int) -> dict[str, Any]:
    runs = {str(c): wrk(server.url, script, c, seconds) for c in CONNECTIONS}
    return {"wrk": runs, "memory": memory(server.pids())}


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = glove.load(QUICK_BASE if args.quick else None)
    work = Path(tempfile.mkdtemp(prefix="quiver-bench-workers-"))
    results: dict[str, Any] = {"n_base": data.n_base, "ef": EF, "seconds": args.seconds}
    folder = args.data or work / "data"
    try:
        script = wrk_script(data.queries[:QUERY_BODIES], work / "query.lua")
        server_log = work / "server.log"
        if not (folder / "collections" / COLLECTION).is_dir():
            loader = Server(folder, 1, server_log)
            try:
                results["seconds_to_searchable"] = load(loader, data.base)
            finally:
                loader.stop()
            log(f"loaded {data.n_base} points in {results['seconds_to_searchable']:.0f} s")
        single = Server(folder, 1, server_log)  # restarted: no ingest leftovers in RSS
        try:
            results["workers_1"] = measure(single, script, args.seconds)
        finally:
            single.stop()
        log(f"1 worker: {results['workers_1']}")
        double = Server(folder, 2, server_log)
        try:
            first = orjson.dumps({"query": data.queries[0].tolist(), "limit": K})
            results["answered_by"] = wait_for_reader(double, first)
            results["workers_2"] = measure(double, script, args.seconds)
            results["workers_2"]["supervisor"] = memory([double.process.pid])[0]
        finally:
            double.stop()
        log(f"2 workers: {results['workers_2']}")
        if args.third:
            triple = Server(folder, 3, server_log)
            try:
                wait_for_reader(triple, first)
                results["workers_3"] = measure(triple, script, args.seconds)
                results["workers_3"]["supervisor"] = memory([triple.process.pid])[0]
            finally:
                triple.stop()
            log(f"3 workers: {results['workers_3']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _all_pss(run_: dict[str, Any]) -> float:
    """PSS of every process of a multi-worker server, the supervisor included."""
    return float(sum(r["pss"] for r in run_["memory"]) + run_["supervisor"]["pss"])


def summary(results: dict[str, Any]) -> dict[str, float]:
    single_rss = results["workers_1"]["memory"][0]["rss"]
    owner, reader = results["workers_2"]["memory"]
    supervisor = results["workers_2"]["supervisor"]
    extra_rss = reader["rss"] + supervisor["rss"]
    extra_pss = (
        owner["pss"] + reader["pss"] + supervisor["pss"] - results["workers_1"]["memory"][0]["pss"]
    )
    marginal: dict[str, float] = {}
    if "workers_3" in results:  # what a second reader adds (supervisor, proxy: paid already)
        third = _all_pss(results["workers_3"]) - _all_pss(results["workers_2"])
        marginal = {"third_worker_pss_mib": third, "third_worker_pss_fraction": third / single_rss}
    return marginal | {
        "single_rss_mib": single_rss,
        "extra_rss_mib": extra_rss,
        "extra_rss_fraction": extra_rss / single_rss,
        "extra_pss_mib": extra_pss,
        "extra_pss_fraction": extra_pss / single_rss,
        "speedup_8": results["workers_2"]["wrk"]["8"]["queries_per_s"]
        / results["workers_1"]["wrk"]["8"]["queries_per_s"],
    }


def markdown(results: dict[str, Any]) -> str:
    s = summary(results)
    lines = [
        f"# Multi-process serving, GloVe-50 {results['n_base']:,} points, hnsw_ef {EF}",
        "",
        "| workers | connections | queries/s | p50 ms | p99 ms | non-2xx |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for workers in (w for w in ("1", "2", "3") if f"workers_{w}" in results):
        for c, run_ in results[f"workers_{workers}"]["wrk"].items():
            lines.append(
                f"| {workers} | {c} | {run_['queries_per_s']:,.0f} | {run_['p50_ms']:.2f} | "
                f"{run_['p99_ms']:.2f} | {run_['non_2xx']:.0f} |"
            )
    lines += ["", "| process | RSS MiB | PSS MiB | USS MiB |", "|---|--:|--:|--:|"]
    (one,) = results["workers_1"]["memory"]
    owner, reader = results["workers_2"]["memory"]
    sup = results["workers_2"]["supervisor"]
    for name, row in (("single process", one), ("2 workers: supervisor", sup),
                      ("2 workers: owner", owner), ("2 workers: reader", reader)):  # fmt: skip
        lines.append(f"| {name} | {row['rss']:,.0f} | {row['pss']:,.0f} | {row['uss']:,.0f} |")
    if "workers_3" in results:
        three = results["workers_3"]
        named = [("3 workers: supervisor", three["supervisor"])]
        named += [(f"3 workers: worker {i}", r) for i, r in enumerate(three["memory"])]
        for name, row in named:
            lines.append(f"| {name} | {row['rss']:,.0f} | {row['pss']:,.0f} | {row['uss']:,.0f} |")
    verdict = "met" if s["extra_pss_fraction"] <= TARGET_EXTRA_RSS else "NOT met"
    lines += [
        "",
        f"8 connections, 2 workers vs 1: {s['speedup_8']:.2f}x queries/s. "
        f"Answers while waiting for the reader: {results['answered_by']}.",
        f"Memory the extra worker adds (PSS of supervisor (keeper) + owner + reader minus the "
        f"single process's): {s['extra_pss_mib']:,.0f} MiB = {s['extra_pss_fraction']:.0%} of the "
        f"single process's RSS ({s['single_rss_mib']:,.0f} MiB); target <= "
        f"{TARGET_EXTRA_RSS:.0%}: {verdict}. Summed RSS of reader + supervisor, which counts "
        f"shared pages in each: {s['extra_rss_mib']:,.0f} MiB = {s['extra_rss_fraction']:.0%}.",
    ]
    if "third_worker_pss_mib" in s:
        lines.append(
            f"A third worker (a second reader) adds {s['third_worker_pss_mib']:,.0f} MiB of PSS "
            f"= {s['third_worker_pss_fraction']:.0%} of the single process's RSS (the "
            "supervisor is paid once, with the first reader)."
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="first 50,000 base vectors")
    parser.add_argument("--seconds", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--third", action="store_true", help="also serve with 3 workers")
    parser.add_argument("--stem", default="workers_glove50", help="result file name")
    parser.add_argument(
        "--data",
        type=Path,
        help="data folder to load once and keep (a later run with the same set serves it as is)",
    )
    args = parser.parse_args()
    results = run(args)
    report = markdown(results)
    print(report)
    folder, stem = (DATA_DIR, f"{args.stem}_quick") if args.quick else (RESULTS_DIR, args.stem)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (folder / f"{stem}.md").write_text(report)
    return 0 if summary(results)["extra_pss_fraction"] <= TARGET_EXTRA_RSS else 1


if __name__ == "__main__":
    sys.exit(main())
