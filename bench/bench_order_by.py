"""``order_by`` scroll pages against plain scroll pages (issue 16's order_by target).

GloVe-50's 390,000 base vectors are bulk-loaded over HTTP (Arrow stream; each point's
payload ``row`` is its id) into a Cosine collection, ``row`` gets an integer payload
index, and once the collection is green two kinds of page of 100 points are timed in
alternation, each from a random place in the collection, without payloads:

* plain scroll: ``{"limit": 100, "offset": id}`` (id order);
* order_by scroll: ``{"limit": 100, "order_by": {"key": "row", "direction": asc|desc,
  "start_from": value}}`` (half of the pages each direction).

The target: an order_by page's p50 latency at most 2x a plain page's (the check is the
ratio plain / order_by >= 0.5).

    python bench/bench_order_by.py            # ~1.5 min (first run also builds the data)
    python bench/bench_order_by.py --quick    # first 50,000 vectors
"""

from __future__ import annotations

import sys
import time
from typing import Any

import glove
import httpx
import numpy as np
from bench_bulk import bulk_load
from harness.cli import add_common_options, log, new_parser, run_and_finish
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line
from harness.metrics import latency_summary
from harness.results import check
from harness.server import QuiverServer, headers

PAGE = 100
PAGES = 400
NAME = "ordered"


def load(client: httpx.Client, vectors: np.ndarray) -> float:
    """Bulk-load, index ``row``, wait green; seconds taken."""
    started = time.perf_counter()
    config = {"vectors": {"size": vectors.shape[1], "distance": "Cosine"}}
    client.put(f"/collections/{NAME}", json=config).raise_for_status()
    bulk_load(client, NAME, vectors)
    index = {"field_name": "row", "field_schema": "integer"}
    client.put(f"/collections/{NAME}/index?wait=true", json=index).raise_for_status()
    while client.get(f"/collections/{NAME}").json()["result"]["status"] != "green":
        time.sleep(0.2)
    return time.perf_counter() - started


def timed(client: httpx.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(f"/collections/{NAME}/points/scroll", json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert len(response.json()["result"]["points"]) == PAGE
    return elapsed


def measure(n_base: int) -> dict[str, Any]:
    vectors = glove.load(n_base).base
    rng = np.random.default_rng(16)
    starts = rng.integers(0, len(vectors) - PAGE, size=PAGES).tolist()
    plain: list[float] = []
    ordered: list[float] = []
    with (
        QuiverServer() as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=600) as client,
    ):
        load_s = load(client, vectors)
        log(f"loaded and indexed {len(vectors)} points in {load_s:.1f} s")
        busy = cpu_busy_fraction()
        for i, start in enumerate(starts):
            desc = i % 2 == 1
            order = {"key": "row", "direction": "desc" if desc else "asc",
                     "start_from": start + PAGE if desc else start}  # fmt: skip
            base = {"limit": PAGE, "with_payload": False}
            plain.append(timed(client, base | {"offset": start}))
            ordered.append(timed(client, base | {"order_by": order}))
    plain_ms, ordered_ms = latency_summary(plain), latency_summary(ordered)
    ratio = plain_ms["p50"] / ordered_ms["p50"]
    return {
        "machine": machine_info(cpu_busy_before=busy),
        "points": len(vectors),
        "page": PAGE,
        "pages": PAGES,
        "load_s": round(load_s, 1),
        "plain_scroll_ms": plain_ms,
        "order_by_scroll_ms": ordered_ms,
        "checks": [check("plain p50 / order_by p50 (order_by <= 2x plain)", round(ratio, 3), 0.5)],
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# order_by scroll vs plain scroll ({results['points']:,} GloVe-50 points, pages of "
        f"{results['page']})",
        "",
        machine_line(results["machine"]),
        *busy_notes(results["machine"].get("cpu_busy_before")),
        "",
        "| page kind | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    kinds = [
        ("plain scroll (offset id)", "plain_scroll_ms"),
        ("order_by scroll (integer index, start_from)", "order_by_scroll_ms"),
    ]
    for label, key in kinds:
        ms = results[key]
        lines.append(f"| {label} | {ms['p50']} | {ms['p95']} | {ms['p99']} |")
    lines += ["", "| check | value | target | passed |", "|---|---|---|---|"]
    for c in results["checks"]:
        lines.append(f"| {c['name']} | {c['value']} | ≥ {c['target']} | {c['passed']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help="first 50,000 vectors only")
    args = parser.parse_args()
    n_base = 50_000 if args.quick else None
    return run_and_finish(lambda: measure(n_base), args, "order_by", markdown)


if __name__ == "__main__":
    sys.exit(main())
