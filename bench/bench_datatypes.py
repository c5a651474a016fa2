"""Vector datatypes: float32 vs float16 vs uint8 HNSW on the Debian MiniLM-384 set, in one run.

Issue 17's datatype benchmark: memory per vector, queries/s and recall@10 at the same `ef`.
It runs Quiver's own backend in this process (`index.hnsw_faiss.HnswIndex`, the class a
sealed segment holds; `storage` = the vector's `datatype`), so the numbers are the index's
and not HTTP's. Each type's rows are prepared as the server prepares them
(`index.datatypes.to_datatype` after normalisation):

* float32 and float16: the L2-normalised embeddings under Cosine (float16: each value
  rounded to half precision, held in faiss `IndexHNSWSQ` `QT_fp16` codes);
* uint8: one per-dataset affine scale, `round((x - min) / (max - min) * 255)` over the base
  set's values (queries scaled by the same numbers, clipped), under Euclid: a uniform
  scale and shift keep L2 order, and for unit vectors L2 order is cosine order, so the
  same ground truth applies. Held in `QT_8bit_direct` codes.

Ground truth is the exact top-10 by cosine of the float32 embeddings (`text_embeddings.py`).
Every index is built with m 16, ef_construct 100 (Qdrant's defaults). Queries/s: one query
per call (as a server request runs it), faiss on one thread, each type timed `--rounds`
times taking turns with the others so they see the same machine load; the best round is
kept. Memory: the backend's own `stats()` (vector storage and graph links, bytes/vector).

Checks (the issue's target), at every ef on both query sets: float16 queries/s >= 0.95x
float32's, recall@10 within 0.005 of float32's, vector bytes <= half of float32's.

    .venv/bin/python bench/text_embeddings.py build --base 19456 --queries 1000  # once
    # (the saved run: 19,456 base vectors, what a shared 2-core machine embedded in ~40 min)
    nice -n 10 .venv/bin/python bench/bench_datatypes.py          # bench/results/datatypes_minilm.*
    nice -n 10 .venv/bin/python bench/bench_datatypes.py --quick  # 5k base, 200 queries
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from harness.cli import add_common_options, log, new_parser, run_and_finish
from harness.machine import machine_info
from harness.results import Results, check, check_at_most, checks_table
from text_embeddings import TextDataset, load_debian

from index.base import SearchParams
from index.datatypes import Datatype, to_datatype
from index.hnsw_faiss import HnswIndex, HnswParams
from index.metrics import Distance, normalize_rows

K = 10
TYPES: tuple[Datatype, ...] = ("float32", "float16", "uint8")
GRAPH = {"m": 16, "ef_construct": 100}
CHUNK = 10_000


@dataclass(frozen=True)
class Prepared:
    """One datatype's base rows, query sets and metric, as the server would hold them."""

    datatype: Datatype
    distance: Distance
    base: np.ndarray
    queries: dict[str, np.ndarray]


def prepare(data: TextDataset, datatype: Datatype, query_sets: dict[str, np.ndarray]) -> Prepared:
    if datatype != "uint8":
        base = to_datatype(normalize_rows(data.base), datatype)
        queries = {n: to_datatype(normalize_rows(q), datatype) for n, q in query_sets.items()}
        return Prepared(datatype, Distance.COSINE, base, queries)
    low, high = float(data.base.min()), float(data.base.max())

    def scaled(rows: np.ndarray) -> np.ndarray:
        return to_datatype(np.rint((rows - low) * (255.0 / (high - low))), "uint8")

    queries = {n: scaled(q) for n, q in query_sets.items()}
    return Prepared(datatype, Distance.EUCLID, scaled(data.base), queries)


def build(prepared: Prepared) -> tuple[HnswIndex, float]:
    params = HnswParams(**GRAPH, storage=prepared.datatype)
    index = HnswIndex(prepared.base.shape[1], prepared.distance, params)
    started = time.perf_counter()
    for first in range(0, len(prepared.base), CHUNK):
        index.add(prepared.base[first : first + CHUNK])
    return index, time.perf_counter() - started


def timed_singles(index: HnswIndex, queries: np.ndarray, ef: int) -> tuple[float, np.ndarray]:
    """Seconds to answer every query one call at a time, and the ids found."""
    params = SearchParams(ef=ef)
    found = np.empty((len(queries), K), dtype=np.int64)
    started = time.perf_counter()
    for row in range(len(queries)):
        found[row] = index.search(queries[row : row + 1], K, params=params)[0][0]
    return time.perf_counter() - started, found


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(f.tolist()) & set(t[:K].tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / (len(found) * K)


def memory_row(index: HnswIndex) -> dict[str, float]:
    parts = index.stats().parts or {}
    count = max(index.count, 1)
    return {part: size / count for part, size in parts.items()}


def run(args: Any) -> Results:
    faiss.omp_set_num_threads(1)
    data = load_debian(args.base)
    n = args.queries
    query_sets = {
        "in-distribution": data.queries_id[:n],
        "out-of-distribution": data.queries_ood[:n],
    }
    truth = {
        "in-distribution": data.ground_truth_id[:n],
        "out-of-distribution": data.ground_truth_ood[:n],
    }
    log(f"{data.name}: {data.n_base} base vectors, {n} queries per set")
    prepared = {t: prepare(data, t, query_sets) for t in TYPES}
    indexes: dict[str, HnswIndex] = {}
    builds: dict[str, float] = {}
    for datatype in TYPES:
        indexes[datatype], builds[datatype] = build(prepared[datatype])
        log(f"built {datatype} in {builds[datatype]:.1f} s")
    best: dict[tuple[str, str, int], float] = {}
    recalls: dict[tuple[str, str, int], float] = {}
    for round_no in range(args.rounds):
        order = TYPES[round_no % 3 :] + TYPES[: round_no % 3]
        for ef in args.ef:
            for set_name in query_sets:
                for datatype in order:
                    queries = prepared[datatype].queries[set_name]
                    seconds, found = timed_singles(indexes[datatype], queries, ef)
                    key = (datatype, set_name, ef)
                    best[key] = min(best.get(key, float("inf")), seconds)
                    recalls[key] = recall_at_k(found, truth[set_name])
        log(f"round {round_no + 1}/{args.rounds} done")
    rows = [
        {
            "datatype": t,
            "queries": s,
            "ef": ef,
            "qps": n / best[(t, s, ef)],
            "recall_at_10": recalls[(t, s, ef)],
        }
        for ef in args.ef
        for s in query_sets
        for t in TYPES
    ]
    memory = {t: memory_row(indexes[t]) for t in TYPES}
    return {
        "machine": machine_info(base=data.n_base, queries=n, rounds=args.rounds, graph=GRAPH),
        "build_seconds": builds,
        "memory_bytes_per_vector": memory,
        "rows": rows,
        "checks": checks(rows, memory),
    }


def checks(rows: list[dict[str, Any]], memory: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    by = {(r["datatype"], r["queries"], r["ef"]): r for r in rows}
    out = []
    for (datatype, set_name, ef), row in by.items():
        if datatype != "float16":
            continue
        full = by[("float32", set_name, ef)]
        label = f"float16 / float32, {set_name}, ef {ef}"
        out.append(check(f"{label}: queries/s ratio", row["qps"] / full["qps"], 0.95))
        drop = full["recall_at_10"] - row["recall_at_10"]
        out.append(check_at_most(f"{label}: recall@10 drop", drop, 0.005))
    ratio = memory["float16"]["vectors"] / memory["float32"]["vectors"]
    out.append(check_at_most("float16 / float32 vector bytes", ratio, 0.5))
    return out


def markdown(results: Results) -> str:
    m = results["machine"]
    lines = [
        f"# Vector datatypes on Debian MiniLM-384 ({m['base']:,} base vectors, "
        f"{m['queries']} queries a set)",
        "",
        "Quiver's `HnswIndex` in process, m 16 / ef_construct 100, one query per call, "
        f"faiss on one thread, best of {m['rounds']} interleaved rounds; "
        f"{m['cpu_model']}, {m['date']}.",
        "",
        "| datatype | vector bytes/vector | graph bytes/vector | build s |",
        "|---|--:|--:|--:|",
    ]
    for t, mem in results["memory_bytes_per_vector"].items():
        build = results["build_seconds"][t]
        lines.append(f"| {t} | {mem['vectors']:,.0f} | {mem['graph']:,.0f} | {build:.1f} |")
    lines += [
        "",
        "| queries | ef | datatype | queries/s | vs float32 | recall@10 |",
        "|---|--:|---|--:|--:|--:|",
    ]
    by = {(r["datatype"], r["queries"], r["ef"]): r for r in results["rows"]}
    for r in results["rows"]:
        full = by[("float32", r["queries"], r["ef"])]
        lines.append(
            f"| {r['queries']} | {r['ef']} | {r['datatype']} | {r['qps']:,.0f} | "
            f"{r['qps'] / full['qps']:.3f}x | {r['recall_at_10']:.4f} |"
        )
    return "\n".join([*lines, "", *checks_table(results["checks"]), ""])


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help="smoke run: 5,000 base vectors, 200 queries, 1 round")
    parser.add_argument("--base", type=int, default=None, help="base vectors (default: all built)")
    parser.add_argument("--queries", type=int, default=1000, help="queries of each set")
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128], help="beam widths")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.base, args.queries, args.rounds = 5000, 200, 1
    return run_and_finish(lambda: run(args), args, "datatypes_minilm", markdown)


if __name__ == "__main__":
    sys.exit(main())
