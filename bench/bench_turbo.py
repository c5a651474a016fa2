"""TurboQuant vs scalar int8 quantization on GloVe-50, in one run (issue 17, item 4).

It builds Quiver's own backends in this process (``index.quantization``: the classes a
sealed segment holds for ``quantization_config`` ``turbo`` and ``scalar``), so the numbers
are the indexes' and not HTTP's: TurboQuant at every bit width Qdrant names (``bits1``,
``bits1_5``, ``bits2``, ``bits4``, ``bits8``) and scalar int8, all with m 16,
ef_construct 100 over the first 50,000 GloVe-50 vectors (normalised, Cosine), searched
with the 1,000 first held-out queries against the cached exact top-10
(``bench/data/gt_ids_50000.npy``, made by ``glove.py``).

Per backend and ``hnsw_ef``: recall@10 after re-ranking at the backend's default
oversampling, recall@10 of the codes alone (``rescore: false``), queries/s (batches of 100,
faiss on one thread; every backend timed in turn per round, best of ``--rounds``) and the
bytes per vector of the codes (the part that must stay in RAM; originals are
memory-mapped and graph links are the same for all).

    mkdir -p bench/data && cp /work/main/bench/data/* bench/data/   # the GloVe caches
    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_turbo.py    # bench/results/turbo_glove50.*
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.base import SearchParams
from index.metrics import Distance
from index.quantization import (
    QuantizedParams,
    ScalarQuantizedIndex,
    TurboQuantizedIndex,
    _QuantizedHnsw,
)

DATA = Path(__file__).parent / "data"
RESULTS = Path(__file__).parent / "results"
N_BASE, K, BATCH = 50_000, 10, 100
EFS = (32, 64, 128)
BACKENDS: dict[str, QuantizedParams | None] = {
    "scalar int8": None,
    **{
        f"turbo bits{b:g}".replace(".", "_"): QuantizedParams(turbo_bits=b)
        for b in (8, 4, 2, 1.5, 1)
    },
}


def load(n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = np.load(DATA / "base.npy", mmap_mode="r")[:N_BASE]
    queries = np.load(DATA / "queries.npy")[:n_queries]
    truth = np.load(DATA / "gt_ids_50000.npy")[:n_queries, :K]
    return np.ascontiguousarray(base, dtype=np.float32), queries, truth


def build(name: str, base: np.ndarray) -> tuple[_QuantizedHnsw, float]:
    params = BACKENDS[name]
    start = time.perf_counter()
    index: _QuantizedHnsw
    if params is None:
        index = ScalarQuantizedIndex(base.shape[1], Distance.COSINE, QuantizedParams())
    else:
        index = TurboQuantizedIndex(base.shape[1], Distance.COSINE, params)
    for first in range(0, len(base), 10_000):
        index.add(base[first : first + 10_000])
    index.stats()  # moves the float graph into the code index
    return index, time.perf_counter() - start


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def timed(
    index: _QuantizedHnsw, queries: np.ndarray, params: SearchParams
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    found = [
        index.search(queries[i : i + BATCH], K, params=params)[0]
        for i in range(0, len(queries), BATCH)
    ]
    return np.vstack(found), len(queries) / (time.perf_counter() - start)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base, queries, truth = load(args.queries)
    built = {name: build(name, base) for name in BACKENDS}
    rows: list[dict[str, Any]] = []
    for ef in EFS:
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, (index, _) in built.items():
                found, qps = timed(index, queries, SearchParams(ef=ef))
                best[name] = max(best.get(name, 0.0), qps)
        for name, (index, seconds) in built.items():
            found, _ = timed(index, queries, SearchParams(ef=ef))
            rough, _ = timed(index, queries, SearchParams(ef=ef, rescore=False))
            rows.append(
                {
                    "backend": name,
                    "ef": ef,
                    "recall_at_10": round(recall(found, truth), 4),
                    "recall_at_10_codes_only": round(recall(rough, truth), 4),
                    "qps": round(best[name], 1),
                    "code_bytes_per_vector": index.stats().parts["codes"] / index.count,
                    "default_oversampling": index._default_oversampling(),
                    "build_s": round(seconds, 1),
                }
            )
    return {
        "dataset": f"GloVe-50, first {N_BASE:,} base vectors, {args.queries:,} queries, Cosine",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "faiss": faiss.__version__,
        },
        "rows": rows,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# TurboQuant vs scalar int8 ({results['dataset']})",
        "",
        "| backend | ef | recall@10 | recall@10 codes only | q/s | code bytes/vector "
        "| oversampling | build s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['backend']} | {r['ef']} | {r['recall_at_10']:.4f} "
            f"| {r['recall_at_10_codes_only']:.4f} "
            f"| {r['qps']:,.0f} | {r['code_bytes_per_vector']:g} | {r['default_oversampling']:g} "
            f"| {r['build_s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    results = measure(args)
    report = markdown(results)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "turbo_glove50.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "turbo_glove50.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
