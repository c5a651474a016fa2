"""Sharded collections on a local Ray against one node: the cost of the fan-out.

Same data (GloVe-50, the first `--points` base vectors, Cosine, HNSW defaults) loaded into
one in-process collection (an `Engine`, as the server holds it) and into sharded
collections of 2 and 4 shards on a local Ray (`server/cluster/`, one actor per shard, all
on this 2-core machine). Measured through the Python API — cluster mode is not wired
into the HTTP server yet — so the numbers are the fan-out's own cost:

* ingest: points/s of 1,000-point upserts until acknowledged, then seconds until every
  shard finished indexing;
* queries: recall@10 against the exact ground truth, single-query p50 latency, and
  queries/s in batches of 100;
* memory: resident memory of the processes holding the data (this process's growth for
  one node; the shard actors' processes for Ray).

The fan-out overhead is reported as a ratio to one node (the issue's bar: batch queries
lose at most 10%). On one machine that ratio mixes two costs: every shard walks its own
graph for every query, so N shards do up to N times the search work on the same cores;
and the fan-out itself (Ray calls, pickling, merging). The shards time their own work
(CPU time, ``ShardServer.busy_seconds``), so the batch time is split: the least wall time the
shards' work allows on this machine's cores (``max(slowest shard, total / cores)``), and
the rest, the fan-out's own share.

    python bench/bench_cluster.py                 # ~3 min
    python bench/bench_cluster.py --points 20000  # quicker
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import glove
import numpy as np
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import cpu_busy_fraction, machine_info, rss_bytes
from harness.metrics import padded_ids, recall_at_k
from harness.results import pyplot

from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.requests import SearchSpec

BATCH = 1000
QUERY_BATCH = 100
K = 10


def config(shards: int) -> CollectionConfig:
    return CollectionConfig.model_validate(
        {
            "vectors": {"": {"size": 50, "distance": "Cosine"}},
            "named_vectors": False,
            "shard_number": shards,
            # Graph search in every setup: with the default threshold (10 MB of vectors per
            # segment) a 25k-point shard would be scanned exactly and compared unfairly.
            "hnsw_config": {"full_scan_threshold": 1},
        }
    )


def measure(target: Any, wait_indexed: Any, memory: Any, vectors: np.ndarray,
            queries: np.ndarray, truth: np.ndarray,
            busy: Callable[[], list[float]] | None = None) -> dict[str, Any]:  # fmt: skip
    before = memory()
    started = time.perf_counter()
    for s in range(0, len(vectors), BATCH):
        rows = range(s, min(s + BATCH, len(vectors)))
        target.upsert(list(rows), [vectors[i].tolist() for i in rows], [{"row": i} for i in rows])
    ingest_s = time.perf_counter() - started
    wait_indexed()
    indexed_s = time.perf_counter() - started
    specs = [SearchSpec(using="", vector=q.astype(np.float32), limit=K) for q in queries]
    latencies, found = [], []
    for spec in specs[:300]:
        t0 = time.perf_counter()
        found.append([p.id for p in target.search([spec])[0]])
        latencies.append(time.perf_counter() - t0)
    busy_before = busy() if busy else []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    batched = []
    for s in range(0, len(specs), QUERY_BATCH):
        batched.extend(target.search(specs[s : s + QUERY_BATCH]))
    batch_s = time.perf_counter() - t0
    split: dict[str, Any] = {"batch_this_process_cpu_s": round(time.process_time() - cpu0, 3)}
    if busy:
        work = [after - before for after, before in zip(busy(), busy_before, strict=True)]
        least_s = max(max(work), sum(work) / (os.cpu_count() or 1))
        split |= {
            "batch_shard_work_s": round(sum(work), 3),
            "batch_least_s": round(least_s, 3),
            "batch_s": round(batch_s, 3),
            "fan_out_share": round(1 - least_s / batch_s, 3),
        }
    ids = [[p.id for p in answer] for answer in batched]
    recall = recall_at_k(padded_ids(ids, K), truth, K)
    return {
        "ingest_points_per_s": round(len(vectors) / ingest_s),
        "indexed_s": round(indexed_s, 2),
        "single_p50_ms": round(float(np.median(latencies)) * 1000, 3),
        "batch_queries_per_s": round(len(specs) / batch_s),
        "recall_at_10": round(float(recall), 4),
        "memory_mb": round((memory() - before) / 2**20, 1),
    } | split


def single_node(
    root: Path, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    engine = Engine(root / "single")
    engine.create("c", config(1))
    try:
        return measure(
            engine.get("c"), lambda: engine.worker.wait_idle("c", 1800),
            lambda: rss_bytes(os.getpid()), vectors, queries, truth,
        )  # fmt: skip
    finally:
        engine.close()


def on_ray(root: Path, shards: int, vectors: np.ndarray, queries: np.ndarray,
           truth: np.ndarray) -> dict[str, Any]:  # fmt: skip
    import ray

    from server.cluster.ray_shards import RayShardGroup
    from server.cluster.shards import ShardedCollection

    group = RayShardGroup(root / f"ray{shards}", "c", config(shards))
    collection = ShardedCollection("c", config(shards), group)
    pids = ray.get([actor.pid.remote() for actor in group.actors])
    try:
        return measure(
            collection,
            lambda: ray.get([actor.wait_idle.remote(1800) for actor in group.actors]),
            lambda: sum(rss_bytes(pid) for pid in set(pids)),
            vectors, queries, truth,
            lambda: ray.get([actor.busy_seconds.remote() for actor in group.actors]),
        )  # fmt: skip
    finally:
        collection.close()


def markdown(results: dict[str, Any]) -> str:
    base = results["rows"][0]
    lines = [
        "# Sharded collections on a local Ray vs one node "
        f"(GloVe-50, {results['points']:,} points)",
        "", "Python API, same process tree, 2 cores. Command: `python bench/bench_cluster.py`.", "",
        "| setup | ingest points/s | indexed s | recall@10 | single p50 ms | batch q/s "
        "| batch vs one node | this process CPU s | shard work s | least s | batch s "
        "| fan-out share | data RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]  # fmt: skip
    for row in results["rows"]:
        ratio = row["batch_queries_per_s"] / base["batch_queries_per_s"]
        split = [row.get(k, "") for k in ("batch_this_process_cpu_s", "batch_shard_work_s",
                                          "batch_least_s", "batch_s", "fan_out_share")]  # fmt: skip
        lines.append(
            f"| {row['setup']} | {row['ingest_points_per_s']:,} | {row['indexed_s']} | "
            f"{row['recall_at_10']:.3f} | {row['single_p50_ms']} | "
            f"{row['batch_queries_per_s']:,} | {ratio:.2f} | "
            + " | ".join(str(v) for v in split)
            + f" | {row['memory_mb']} |"
        )
    lines += [
        "",
        f"Batches of {QUERY_BATCH} queries, {results['points']:,} points, graph search in "
        "every setup (`full_scan_threshold: 1`). *this process CPU*: CPU seconds of the "
        "process that asks (one node: all the search work; Ray: the fan-out's driver side); "
        "*shard work*: CPU seconds the shards spent "
        "inside their calls over the batch phase; *least*: the wall time that work needs "
        "on this machine's cores; *fan-out share*: the part of the batch time beyond it "
        "(Ray calls, pickling, merging).",
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rows = results["rows"]
    ax.bar([r["setup"] for r in rows], [r["batch_queries_per_s"] for r in rows])
    ax.set_ylabel("batch queries/s")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = new_parser(__doc__, raw=True)
    add_common_options(parser)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    from server.cluster.ray_shards import connect

    busy = cpu_busy_fraction()
    data = glove.load(args.points)
    vectors, queries = data.base, data.queries[:1000]
    truth = data.ground_truth[:1000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log("one node")
        rows.append({"setup": "one node"} | single_node(root, vectors, queries, truth))
        log(f"  {rows[-1]}")
        connect("local")  # before Ray is imported: it keeps a local Ray on loopback
        import ray

        try:
            for shards in (2, 4):
                log(f"{shards} shards on Ray")
                rows.append(
                    {"setup": f"{shards} shards"} | on_ray(root, shards, vectors, queries, truth)
                )
                log(f"  {rows[-1]}")
        finally:
            ray.shutdown()
    results = {
        "machine": machine_info(),
        "cpu_busy_before": busy,
        "points": args.points,
        "rows": rows,
    }
    return finish(results, args, "cluster", markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
