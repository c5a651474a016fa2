"""Best-first search of an HNSW graph with a custom score (Qdrant's recommend walk).

faiss walks its graph with the distance to one query vector. Qdrant's ``best_score``,
``sum_scores``, discover and context queries score a point by its similarities to
several *examples* at once and walk the graph with that score instead, so the answer
comes from the graph, not from the neighbourhoods of a few seeds. This module does the
same over the arrays a faiss ``IndexHNSWFlat`` exposes (links, offsets, levels), read
once per index (:class:`HnswGraph`), in numba-compiled loops (``graph_walk_kernels.py``,
loaded by the first walk): Python runs once per query, never per visited node.

The walk is faiss's: a greedy descent through the upper levels, then a beam of ``ef``
over level 0. Rows outside ``allowed`` (a filter, tombstones) are walked through but
never returned, as faiss's ``IDSelector`` does. Besides the graph's entry point, the
beam starts from the descent towards each *generator* example (a positive, the target,
a context pair's positive), so a recommendation whose positives lie apart finds each
of their neighbourhoods.

Similarities are Qdrant's internal scores (dot product; ``-d²`` for Euclid, ``-d`` for
Manhattan), summed in float32 as qdrant-client's local mode does, then combined in
float64 into the score ``server.engine.examples.score`` defines.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import faiss
import numpy as np

from index.metrics import Distance

KINDS = {"best_score": 0, "sum_scores": 1, "discover": 2, "context": 3}
"""The custom scores the walk knows, with the codes its compiled loops read."""
STATS = np.zeros(2, dtype=np.int64)
"""Counters for benchmarks and tests: [0] level-0 rows scored, [1] walks started (one a
query, plus one each time a candidate heap overflowed), summed since reset."""
_METRICS = {Distance.COSINE: 0, Distance.DOT: 0, Distance.EUCLID: 1, Distance.MANHATTAN: 2}


@dataclass(frozen=True, slots=True, eq=False)
class CustomScore:
    """One query's custom score over ``examples`` (``(n, dim)`` float32, prepared as the
    stored rows are: normalised for Cosine).

    ``split``: for ``best_score`` / ``sum_scores`` the number of positives (the first
    rows, the rest negative); for ``discover`` 1 (row 0 is the target); for ``context``
    0. The rows after a target come in (positive, negative) pairs. ``generators``: the
    rows whose neighbourhoods the walk starts from as well. Compared by identity
    (``eq=False``): two queries with equal examples are still two queries."""

    kind: str
    examples: np.ndarray
    split: int
    generators: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown custom score {self.kind!r}; known: {sorted(KINDS)}")


@dataclass(frozen=True, slots=True)
class HnswGraph:
    """The links of a faiss HNSW as numpy arrays: node ``i``'s level-``l`` neighbours are
    ``neighbors[offsets[i] + cum[l] : offsets[i] + cum[l + 1]]``, ``-1`` padded."""

    neighbors: np.ndarray
    offsets: np.ndarray
    cum: np.ndarray
    entry_point: int
    max_level: int

    @classmethod
    def of(cls, hnsw: Any) -> HnswGraph:
        """Copy the arrays out of a faiss ``HNSW`` struct (one copy per built index)."""
        return cls(
            neighbors=faiss.vector_to_array(hnsw.neighbors).astype(np.int32, copy=False),
            offsets=faiss.vector_to_array(hnsw.offsets).astype(np.int64),
            cum=faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64),
            entry_point=int(hnsw.entry_point),
            max_level=int(hnsw.max_level),
        )


def walk(
    graph: HnswGraph,
    vectors: np.ndarray,
    distance: Distance,
    customs: list[CustomScore],
    k: int,
    ef: int,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` allowed rows for each custom score, found by a walk of beam
    ``max(ef, k)``: ``rows (nq, k)`` padded with -1, ``scores (nq, k)`` float64 padded
    with -inf, best first (ties by row). The queries are split over as many threads as
    faiss uses (the compiled walk releases the GIL), as faiss splits a batch; the
    calling thread walks the first share itself."""
    rows = np.full((len(customs), k), -1, dtype=np.int64)
    scores = np.full((len(customs), k), -np.inf)
    if len(vectors) == 0 or k == 0 or graph.entry_point < 0:
        return rows, scores
    mask = np.ones(0, dtype=np.bool_) if allowed is None else np.ascontiguousarray(allowed)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # a view when it is already
    walker = partial(_walk_part, graph, vectors, _METRICS[distance], mask, customs, k, ef)
    parts = np.array_split(np.arange(len(customs)), min(len(customs), _threads()))
    others = [_pool().submit(walker, rows, scores, part) for part in parts[1:]]
    walker(rows, scores, parts[0])
    for done in others:
        done.result()
    return rows, scores


def _walk_part(
    graph: HnswGraph,
    vectors: np.ndarray,
    metric: int,
    mask: np.ndarray,
    customs: list[CustomScore],
    k: int,
    ef: int,
    rows: np.ndarray,
    scores: np.ndarray,
    part: np.ndarray,
) -> None:
    """Walk for the queries ``part`` (a thread's share) in one compiled call, writing
    their result rows: the examples travel packed (rows of all queries, with offsets),
    so Python does not dispatch once per query."""
    mine = [customs[q] for q in part.tolist()]
    examples = np.ascontiguousarray(np.concatenate([c.examples for c in mine]), np.float32)
    ex_at = np.cumsum([0] + [len(c.examples) for c in mine], dtype=np.int64)
    gen_at = np.cumsum([0] + [len(c.generators) for c in mine], dtype=np.int64)
    generators = np.array([g for c in mine for g in c.generators], dtype=np.int64)
    kinds = np.array([KINDS[c.kind] for c in mine], dtype=np.int64)
    splits = np.array([c.split for c in mine], dtype=np.int64)
    out_rows, out_scores = rows[part], scores[part]
    counts = np.zeros(2, dtype=np.int64)
    from index.graph_walk_kernels import walk_many  # numba loads on the first walk

    walk_many(
        graph.neighbors, graph.offsets, graph.cum, graph.entry_point, graph.max_level,
        vectors, mask, metric, examples, ex_at, kinds, splits, generators, gen_at, max(ef, k),
        np.zeros(len(vectors), dtype=np.uint8), out_rows, out_scores, counts,
    )  # fmt: skip
    rows[part], scores[part] = out_rows, out_scores
    STATS[:] += counts


def _threads() -> int:
    return max(1, int(faiss.omp_get_max_threads()))


@cache
def _pool() -> ThreadPoolExecutor:
    """One pool per process for the walks' threads (created on the first batch)."""
    return ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="graph-walk")


def exact_custom(
    vectors: np.ndarray,
    distance: Distance,
    customs: list[CustomScore],
    k: int,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` rows of ``vectors`` (only ``allowed`` ones) for each custom score,
    by scoring every one with the walk's compiled score: as :func:`walk` returns."""
    rows = None if allowed is None else np.flatnonzero(allowed)
    base = vectors if rows is None else vectors[rows]
    found = np.full((len(customs), k), -1, dtype=np.int64)
    scores = np.full((len(customs), k), -np.inf)
    take = min(k, len(base))
    for q, custom in enumerate(customs):
        if take == 0:
            break
        values = custom_scores(base, distance, custom)
        top = np.argpartition(-values, take - 1)[:take] if take < len(values) else np.arange(take)
        top = top[np.lexsort((top, -values[top]))]
        found[q, :take] = top if rows is None else rows[top]
        scores[q, :take] = values[top]
    return found, scores


def custom_scores(vectors: np.ndarray, distance: Distance, custom: CustomScore) -> np.ndarray:
    """The custom score of every row of ``vectors`` (float64)."""
    xb = np.ascontiguousarray(vectors, dtype=np.float32)
    metric = _METRICS[distance]
    from index.graph_walk_kernels import score_all  # numba loads on the first score

    return np.asarray(score_all(xb, _examples(custom), metric, KINDS[custom.kind], custom.split))


def _examples(custom: CustomScore) -> np.ndarray:
    return np.ascontiguousarray(custom.examples, dtype=np.float32)


def warm_up(writabilities: tuple[bool, ...] = (True, False)) -> None:
    """Compile the kernels, or load them from numba's cache, on a tiny graph: a cold
    compile takes ~10 s here, which the first recommend request would otherwise wait for.
    numba compiles each writability of the rows apart (a segment's rows read from its
    mapped file are read-only), so ``make test`` compiles the two in two processes.
    The server's warm-up child and ``make test`` call it (``index/compiled.py``)."""
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(16, 4)).astype(np.float32)
    index = faiss.IndexHNSWFlat(4, 4)
    index.add(xb)
    custom = CustomScore("best_score", xb[:2], split=1, generators=(0,))
    for writable in writabilities:
        rows = xb.copy()
        rows.setflags(write=writable)
        walk(HnswGraph.of(index.hnsw), rows, Distance.DOT, [custom], k=2, ef=4, allowed=None)
        exact_custom(rows, Distance.EUCLID, [custom], k=2)
