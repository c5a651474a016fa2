"""``on_disk`` payload indexes: heap held and filter cost, in memory vs memory-mapped.

One segment's ``PayloadIndexes`` over N synthetic payloads (a keyword of 1,000 tenant
values, an integer of 0..1e6), built in bulk as a sealed segment is; the live heap it
holds is read under ``tracemalloc`` (numpy reports its buffers to it), then the bounds
of a tenant + range filter are timed (mean of 20).

    .venv/bin/python bench/bench_on_disk_index.py            # 1,000,000 points
    .venv/bin/python bench/bench_on_disk_index.py --points 100000
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

import numpy as np

from server.engine.filters import Filter, parse_filter
from server.engine.payload_index import PayloadIndexes

FILTER = {
    "must": [
        {"key": "t", "match": {"value": "tenant-7"}},
        {"key": "n", "range": {"gte": 1000, "lt": 500_000}},
    ]
}


def payloads(count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    tenants = rng.integers(0, 1000, count).tolist()
    numbers = rng.integers(0, 1_000_000, count).tolist()
    return [{"t": f"tenant-{t}", "n": n} for t, n in zip(tenants, numbers, strict=True)]


def measure(rows: list[dict[str, Any]], on_disk: bool, flt: Filter) -> str:
    schema = {
        "t": {"type": "keyword", "on_disk": on_disk},
        "n": {"type": "integer", "on_disk": on_disk},
    }
    gc.collect()
    tracemalloc.start()
    indexes = PayloadIndexes(schema)
    indexes.build(rows)
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    start = time.perf_counter()
    for _ in range(20):
        bounds = indexes.bounds(flt, len(rows))
    ms = (time.perf_counter() - start) / 20 * 1000
    mapped = sum(getattr(i, "mapped_bytes", lambda: 0)() for i in indexes.fields.values())
    return (
        f"on_disk={on_disk}: heap {heap / 2**20:.1f} MiB, mapped {mapped / 2**20:.1f} MiB, "
        f"bounds {ms:.2f} ms, matches {len(bounds.certain)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = payloads(args.points)
    flt = parse_filter(FILTER) or Filter()
    for on_disk in (False, True):
        print(measure(rows, on_disk, flt))


if __name__ == "__main__":
    main()
