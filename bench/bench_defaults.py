"""Does every backend reach recall@10 0.95 at its defaults, at some ef? (issue 20 item 4)

Each single-vector backend a collection can be built with (float HNSW, scalar, product,
binary and RaBitQ quantization, LeanVec) is built **with its default parameters**, in this
process (the index classes the server builds segments with, through `index.registry`,
trained on up to `TRAINING_SAMPLE` rows and filled in chunks of 10,000 as a segment build
does), then searched with batches of queries at a rising `ef` and no other knob. A
backend passes when some ef reaches recall@10 >= 0.95; the table gives the smallest such
ef and the recall at every ef tried (the sweep stops one ef after the target is reached).

Data sets: GloVe 6B 50-d (`glove.py`, the first `--glove-base` base vectors, 1,000 of the
held-out queries) and the Debian MiniLM 384-d text embeddings (`text_embeddings.py`: as
many base descriptions as are cached, in-distribution and out-of-distribution queries),
when cached. Cosine throughout. MUVERA (multi-vector) and flat (exact) are not here.

    PYTHONPATH=. nice -n 10 python bench/bench_defaults.py
    PYTHONPATH=. nice -n 10 python bench/bench_defaults.py --glove-base 390000
    PYTHONPATH=. nice -n 10 python bench/bench_defaults.py --skip-text --stem defaults_glove50
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server does (server/cli.py)

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

import glove
import numpy as np
import text_embeddings
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import machine_info, machine_line
from harness.metrics import recall_at_k
from harness.results import Results, check

from index.base import TRAINING_SAMPLE, SearchParams
from index.metrics import Distance
from index.native_threads import single_threaded_numpy_blas
from index.registry import create_index

K = 10
TARGET = 0.95
BACKENDS = ("hnsw", "hnsw_sq8", "hnsw_pq", "hnsw_binary", "hnsw_rabitq", "leanvec")
"""Float HNSW, scalar int8, product x16, binary, RaBitQ (the quantized kinds the
server's ``quantization_config`` maps to), LeanVec."""
OLD_LEANVEC = "leanvec_quarter"
"""``--backends`` name for LeanVec at the old default, ``dims = D / 4``, for comparison;
``leanvec_<N>`` builds it with ``dims = N``."""
EF_VALUES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
ADD_CHUNK = 10_000
QUERIES = 1000


@dataclass(frozen=True)
class QuerySet:
    name: str
    queries: np.ndarray
    truth: np.ndarray


@dataclass(frozen=True)
class DataSet:
    name: str
    base: np.ndarray
    query_sets: tuple[QuerySet, ...]


def glove_set(n_base: int) -> DataSet:
    data = glove.load(n_base)
    held_out = QuerySet("held-out", data.queries[:QUERIES], data.ground_truth[:QUERIES])
    return DataSet(f"GloVe-50 {n_base:,}", data.base, (held_out,))


def minilm_set() -> DataSet | None:
    try:
        data = text_embeddings.load_debian()
    except FileNotFoundError:
        return None
    sets = (
        QuerySet("in-distribution", data.queries_id, data.ground_truth_id),
        QuerySet("out-of-distribution", data.queries_ood, data.ground_truth_ood),
    )
    return DataSet(f"MiniLM-384 {data.n_base:,}", data.base, sets)


def build(kind: str, base: np.ndarray) -> tuple[Any, float]:
    """The backend at its defaults, built the way a segment build does; seconds taken."""
    started = time.perf_counter()
    dim = base.shape[1]
    index = create_index(*backend(kind, dim))
    if not index.is_trained:
        index.train(base[:TRAINING_SAMPLE])
    for start in range(0, len(base), ADD_CHUNK):
        index.add(base[start : start + ADD_CHUNK])
    return index, time.perf_counter() - started


def backend(kind: str, dim: int) -> tuple[str, int, Distance, dict[str, Any]]:
    """``create_index`` arguments for a ``--backends`` name: defaults, except the LeanVec
    comparisons (``OLD_LEANVEC`` and ``leanvec_<N>``)."""
    if kind == OLD_LEANVEC:
        return "leanvec", dim, Distance.COSINE, {"dims": max(1, dim // 4)}
    if kind.startswith("leanvec_"):
        return "leanvec", dim, Distance.COSINE, {"dims": int(kind.removeprefix("leanvec_"))}
    return kind, dim, Distance.COSINE, {}


def sweep(index: Any, query_set: QuerySet) -> list[dict[str, float]]:
    """Recall@10 and queries/s per ef, up to one ef past the first that reaches TARGET."""
    points: list[dict[str, float]] = []
    for ef in EF_VALUES:
        started = time.perf_counter()
        found, _ = index.search(query_set.queries, K, params=SearchParams(ef=ef))
        seconds = time.perf_counter() - started
        recall = recall_at_k(found, query_set.truth, K)
        points.append({"ef": ef, "recall": recall, "qps": len(found) / seconds})
        if sum(p["recall"] >= TARGET for p in points) >= 2:
            break
    return points


def describe(index: Any) -> str:
    """What the defaults chose where the data decides (LeanVec's dims)."""
    dims = getattr(index, "dims", None)
    return f"dims {dims}" if index.kind == "leanvec" else ""


def measure(data: DataSet, backends: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for kind in backends:
        index, seconds = build(kind, data.base)
        log(f"{data.name}: {kind} built in {seconds:.1f} s {describe(index)}")
        for query_set in data.query_sets:
            points = sweep(index, query_set)
            reached = [p["ef"] for p in points if p["recall"] >= TARGET]
            rows.append(
                {
                    "data": data.name,
                    "queries": query_set.name,
                    "backend": kind,
                    "chosen": describe(index),
                    "build_s": seconds,
                    "points": points,
                    "ef_at_target": reached[0] if reached else None,
                }
            )
            log(f"  {query_set.name}: {[(p['ef'], round(p['recall'], 3)) for p in points]}")
        del index
    return rows


def markdown(results: Results) -> str:
    lines = [
        "# Backend defaults: the smallest ef reaching recall@10 0.95",
        "",
        machine_line(results["machine"]),
        "",
        f"Command: `{results['command']}`. In process, Cosine, every backend at its default "
        "parameters (`create_index(kind, dim, Cosine)`), only `ef` varied; 1,000 queries "
        "per set in one batch. Cells: recall@10 at each ef tried. Where run, `leanvec_quarter` "
        "is LeanVec at the old default `dims` = D/4 and `leanvec_<N>` at `dims` N, for "
        "comparison.",
        "",
        "| data | queries | backend | chosen | build s | ef at 0.95 | "
        + " | ".join(f"ef {ef}" for ef in EF_VALUES)
        + " |",
        "|---|---|---|---|--:|--:|" + "--:|" * len(EF_VALUES),
    ]
    for row in results["rows"]:
        by_ef = {p["ef"]: f"{p['recall']:.3f}" for p in row["points"]}
        cells = " | ".join(by_ef.get(ef, "") for ef in EF_VALUES)
        reached = row["ef_at_target"] or "**not reached**"
        lines.append(
            f"| {row['data']} | {row['queries']} | {row['backend']} | {row['chosen']} | "
            f"{row['build_s']:.1f} | {reached} | {cells} |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> Results:
    single_threaded_numpy_blas()
    backends = tuple(args.backends.split(","))
    data_sets = [] if args.skip_glove else [glove_set(args.glove_base)]
    text = None if args.skip_text else minilm_set()
    if text is not None:
        data_sets.append(text)
    rows = [row for data in data_sets for row in measure(data, backends)]
    checks = [
        check(f"{r['data']} {r['queries']} {r['backend']} reaches 0.95", max_recall(r), TARGET)
        for r in rows
    ]
    command = "python bench/bench_defaults.py " + " ".join(sys.argv[1:])
    return {"machine": machine_info(), "command": command.strip(), "rows": rows, "checks": checks}


def max_recall(row: dict[str, Any]) -> float:
    return float(max(p["recall"] for p in row["points"]))


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(__doc__)
    add_common_options(parser)
    parser.add_argument("--glove-base", type=int, default=50_000, help="GloVe base vectors")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--skip-text", action="store_true", help="GloVe only")
    parser.add_argument("--skip-glove", action="store_true", help="MiniLM only")
    parser.add_argument("--stem", default="defaults", help="results file name")
    args = parser.parse_args(argv)
    return finish(run(args), args, args.stem, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
