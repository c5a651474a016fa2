"""``on_disk_payload``: server memory with payloads in the point store vs in memory.

For each setting, one server process: a collection of 100,000 points (4-d vectors, so
that vectors weigh little) whose payloads are ~330 bytes of JSON each (a title, a body
of words, a city, a number, tags), a keyword index on ``city``; ingested 1,000 points
per ``PUT ?wait=true``, then the server is restarted so that its memory is the steady
state of a server that loaded the collection from disk (no ingest garbage), and its
resident memory (VmRSS) is read once the collection is green. The number that says what
the setting saves is the *live heap* of the collection: the server stopped, a fresh
process opens the collection folder under ``tracemalloc`` and reports what it holds once
loaded (RSS also keeps the load's high-water mark). Then the costs that
moved: a scroll page of 100 with payloads, 100 points retrieved by id, and a count
filtered on an unindexed key (every payload read: one batched store read per segment
when on disk), each the median of 20 runs.

    .venv/bin/python bench/bench_on_disk_payload.py            # 100,000 points
    .venv/bin/python bench/bench_on_disk_payload.py --points 10000

Saves ``bench/results/on_disk_payload.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness.machine import machine_info, machine_line, rss_bytes
from harness.server import REPO_ROOT, QuiverServer, headers

RESULTS = Path(__file__).parent / "results"
WORDS = [
    "vector", "search", "engine", "payload", "filter", "index", "segment", "point",
    "cluster", "shard", "query", "memory", "disk", "store", "token", "phrase",
    "nearest", "neighbour", "graph", "quantization", "recall",
]  # fmt: skip
CITIES = ["Berlin", "Paris", "Oslo", "Rome", "Lisbon", "Vienna"]
BATCH = 1000
RUNS = 20


def payload(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "title": " ".join(rng.choices(WORDS, k=8)),
        "body": " ".join(rng.choices(WORDS, k=32)),
        "city": rng.choice(CITIES),
        "n": i,
        "tags": rng.sample(WORDS, 3),
    }


def ingest(client: httpx.Client, points: int, on_disk: bool) -> float:
    body = {"vectors": {"size": 4, "distance": "Dot"}, "on_disk_payload": on_disk}
    client.put("/collections/p", json=body).raise_for_status()
    index = {"field_name": "city", "field_schema": "keyword"}
    client.put("/collections/p/index?wait=true", json=index).raise_for_status()
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, points, BATCH):
        batch = [
            {"id": i, "vector": [rng.random() for _ in range(4)], "payload": payload(rng, i)}
            for i in range(first, min(points, first + BATCH))
        ]
        client.put("/collections/p/points?wait=true", json={"points": batch}).raise_for_status()
    return time.perf_counter() - started


def wait_green(client: httpx.Client, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/collections/p")
        if response.status_code == 200 and response.json()["result"]["status"] == "green":
            return
        time.sleep(0.5)
    raise RuntimeError("collection not green")


def median_ms(call: Callable[[], httpx.Response]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        call().raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def costs(client: httpx.Client, points: int) -> dict[str, float]:
    ids = random.Random(2).sample(range(points), 100)
    scroll = {"limit": 100, "offset": points // 2, "with_payload": True}
    retrieve = {"ids": ids, "with_payload": True}
    count = {"filter": {"must": [{"key": "n", "range": {"lt": points // 10}}]}, "exact": True}
    base = "/collections/p/points"
    return {
        "scroll_100_ms": median_ms(lambda: client.post(f"{base}/scroll", json=scroll)),
        "retrieve_100_ms": median_ms(lambda: client.post(base, json=retrieve)),
        "count_unindexed_ms": median_ms(lambda: client.post(f"{base}/count", json=count)),
    }


def measure(points: int, on_disk: bool) -> dict[str, Any]:
    with QuiverServer() as server:
        with httpx.Client(base_url=server.url, headers=headers(), timeout=600) as client:
            ingest_s = ingest(client, points, on_disk)
            wait_green(client)
        server.terminate()
        server.relaunch()
        time.sleep(1.0)
        with httpx.Client(base_url=server.url, headers=headers(), timeout=600) as client:
            for _ in range(240):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            wait_green(client)
            rss = rss_bytes(server.pid)
            timings = costs(client, points)
        server.terminate()
        assert server._data_dir is not None
        heap = live_heap(server._data_dir / "collections" / "p")
    return {
        "on_disk_payload": on_disk,
        "points": points,
        "ingest_s": round(ingest_s, 1),
        "heap_mib": round(heap / 2**20, 1),
        "rss_mib": round(rss / 2**20, 1),
        **{k: round(v, 2) for k, v in timings.items()},
    }


HEAP_SCRIPT = """
import gc, sys, tracemalloc
from pathlib import Path
from server.engine.collection import Collection
tracemalloc.start()
collection = Collection.open("p", Path(sys.argv[1]))
gc.collect()
print(tracemalloc.get_traced_memory()[0])
collection.close()
"""


def live_heap(path: Path) -> int:
    """Bytes a freshly opened collection holds (Python and numpy allocations, traced
    after loading, so the load's transient garbage is not counted)."""
    done = subprocess.run(
        [sys.executable, "-c", HEAP_SCRIPT, str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    payload_bytes = len(json.dumps(payload(random.Random(1), 12345)))
    rows = [measure(args.points, on_disk) for on_disk in (False, True)]
    saved = rows[0]["heap_mib"] - rows[1]["heap_mib"]
    result = {
        "machine": machine_info(),
        "payload_bytes": payload_bytes,
        "rows": rows,
        "heap_saved_mib": round(saved, 1),
        "heap_saved_bytes_per_point": round(saved * 2**20 / args.points),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "on_disk_payload.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# on_disk_payload: {args.points:,} points, ~{payload_bytes} B of payload each",
        "",
        machine_line(result["machine"]),
        "",
        "| on_disk_payload | live heap MiB | server RSS MiB | scroll 100 ms | retrieve 100 ms"
        " | count unindexed ms | ingest s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {str(row['on_disk_payload']).lower()} | {row['heap_mib']} | {row['rss_mib']}"
            f" | {row['scroll_100_ms']} | {row['retrieve_100_ms']}"
            f" | {row['count_unindexed_ms']} | {row['ingest_s']} |"
        )
    per_point = result["heap_saved_bytes_per_point"]
    lines += [
        "",
        f"Live heap saved: {saved:.1f} MiB ({per_point} B per point): what the opened",
        "collection holds (tracemalloc). The server's RSS also keeps the allocator's",
        "high-water mark of loading, where every payload is decoded once.",
    ]
    (RESULTS / "on_disk_payload.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
