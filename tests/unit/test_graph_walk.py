"""The custom-score graph walk (``index/graph_walk.py``) on a small faiss HNSW: its
score is the one ``server.engine.examples.score`` defines, a beam as wide as the graph
finds the exact top, a normal beam recalls it, and filters and tombstones hold."""

from __future__ import annotations

import numpy as np
import pytest

from index import graph_walk
from index.base import SearchParams
from index.graph_walk import CustomScore, HnswGraph, custom_scores, exact_custom, walk
from index.hnsw_faiss import HnswIndex
from index.metrics import Distance
from server.engine.examples import ContextPair, Discover, Recommend, internal, score

N, DIM, K = 1500, 12, 10
METRICS = [Distance.COSINE, Distance.DOT, Distance.EUCLID, Distance.MANHATTAN]
KINDS = ["best_score", "sum_scores", "discover", "context"]


def _rows(distance: Distance, seed: int = 0) -> np.ndarray:
    xb = np.random.default_rng(seed).standard_normal((N, DIM)).astype(np.float32)
    if distance == Distance.COSINE:
        xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    return xb


def _index(distance: Distance) -> HnswIndex:
    index = HnswIndex(DIM, distance)
    index.add(_rows(distance))
    return index


def _custom(kind: str, xb: np.ndarray, rng: np.random.Generator) -> CustomScore:
    """Five examples: rows of the index, so their neighbourhoods are in the graph."""
    examples = xb[rng.choice(len(xb), size=5, replace=False)]
    if kind in ("best_score", "sum_scores"):
        return CustomScore(kind, examples, 3, (0, 1, 2))
    if kind == "discover":
        return CustomScore(kind, examples, 1, (0, 1, 3))
    return CustomScore(kind, examples[:4], 0, (0, 2))


def _reference(kind: str, custom: CustomScore, xb: np.ndarray, distance: Distance) -> np.ndarray:
    """The score as the numpy path computes it from a similarity matrix."""
    ex = custom.examples.astype(np.float64)
    points = xb.astype(np.float64)
    if distance.higher_is_better:
        raw = ex @ points.T
    elif distance == Distance.EUCLID:
        raw = np.sqrt(np.square(ex[:, None, :] - points[None, :, :]).sum(axis=2))
    else:
        raw = np.abs(ex[:, None, :] - points[None, :, :]).sum(axis=2)
    sims = internal(raw, distance)
    rows = list(range(len(ex)))
    if kind in ("best_score", "sum_scores"):
        return score(Recommend(tuple(rows[:3]), tuple(rows[3:]), kind), sims)
    target = 0 if kind == "discover" else None
    first = 1 if kind == "discover" else 0
    pairs = tuple(ContextPair(i, i + 1) for i in range(first, len(ex) - 1, 2))
    return score(Discover(target, pairs), sims)


@pytest.mark.parametrize("distance", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_compiled_score_equals_the_numpy_score(kind: str, distance: Distance) -> None:
    xb = _rows(distance)
    custom = _custom(kind, xb, np.random.default_rng(1))
    got = custom_scores(xb, distance, custom)
    np.testing.assert_allclose(got, _reference(kind, custom, xb, distance), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("distance", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_beam_as_wide_as_the_graph_finds_the_exact_top(kind: str, distance: Distance) -> None:
    index = _index(distance)
    xb = index.vectors()
    customs = [_custom(kind, xb, np.random.default_rng(seed)) for seed in range(3)]
    graph = HnswGraph.of(index._index.hnsw)
    rows, scores = walk(graph, xb, distance, customs, K, N, None)
    want_rows, want_scores = exact_custom(xb, distance, customs, K)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12)
    if kind != "context":  # context ties at 0 for every point on the right side
        assert rows.tolist() == want_rows.tolist()


@pytest.mark.parametrize("distance", [Distance.COSINE, Distance.EUCLID])
@pytest.mark.parametrize("kind", ["best_score", "sum_scores", "discover"])
def test_the_walk_at_ef_64_recalls_the_exact_top(kind: str, distance: Distance) -> None:
    index = _index(distance)
    rng = np.random.default_rng(2)
    customs = [_custom(kind, index.vectors(), rng) for _ in range(20)]
    rows, _ = index.search_custom(customs, K, params=SearchParams(ef=64))
    truth, _ = index.search_custom(customs, K, params=SearchParams(exact=True))
    hits = sum(len(set(a) & set(b)) for a, b in zip(rows.tolist(), truth.tolist(), strict=True))
    assert hits / truth.size >= 0.9


def test_rows_outside_the_filter_or_deleted_are_walked_through_not_returned() -> None:
    index = _index(Distance.COSINE)
    rng = np.random.default_rng(3)
    customs = [_custom("best_score", index.vectors(), rng) for _ in range(10)]
    index.delete(np.arange(0, N, 7))
    allowed = np.zeros(N, dtype=bool)
    allowed[::2] = True
    rows, _ = index.search_custom(customs, K, params=SearchParams(ef=64), allowed=allowed)
    found = rows[rows >= 0]
    assert len(found) == rows.size
    assert allowed[found].all() and (found % 7 != 0).all()
    exact, _ = index.search_custom(customs, K, params=SearchParams(exact=True), allowed=allowed)
    hits = sum(len(set(a) & set(b)) for a, b in zip(rows.tolist(), exact.tolist(), strict=True))
    assert hits / exact.size >= 0.9


def test_an_empty_graph_or_k_zero_finds_nothing() -> None:
    index = HnswIndex(DIM, Distance.DOT)
    custom = CustomScore("sum_scores", np.ones((1, DIM), dtype=np.float32), 1, (0,))
    rows, scores = index.search_custom([custom], K)
    assert (rows == -1).all() and np.isneginf(scores).all()
    assert index.search_custom([custom], 0)[0].shape == (1, 0)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown custom score"):
        CustomScore("average_vector", np.ones((1, DIM), dtype=np.float32), 1)


def test_a_candidate_heap_that_overflows_restarts_the_walk_with_a_bigger_one() -> None:
    """Under a filter that passes 1 row in 40, the beam keeps every row it scores until
    it has found ef allowed ones: far more candidates than the first heap holds."""
    index = _index(Distance.COSINE)
    xb = index.vectors()
    customs = [_custom("best_score", xb, np.random.default_rng(seed)) for seed in range(5)]
    allowed = np.zeros(N, dtype=bool)
    allowed[::40] = True
    graph_walk.STATS[:] = 0
    rows, scores = index.search_custom(customs, K, params=SearchParams(ef=K), allowed=allowed)
    assert graph_walk.STATS[1] > len(customs)  # at least one walk restarted
    assert allowed[rows].all()
    for custom, found, got in zip(customs, rows, scores, strict=True):
        np.testing.assert_allclose(got, custom_scores(xb[found], Distance.COSINE, custom))
    exact, _ = index.search_custom(customs, K, params=SearchParams(exact=True), allowed=allowed)
    hits = sum(len(set(a) & set(b)) for a, b in zip(rows.tolist(), exact.tolist(), strict=True))
    assert hits / exact.size >= 0.9
