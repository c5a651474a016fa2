"""``engine/mmr.py`` against a plain, per-pair re-statement of maximal marginal
relevance, for every distance and for MaxSim multi-vectors."""

from __future__ import annotations

import numpy as np
import pytest

from index.metrics import Distance
from server.engine.mmr import mmr_order, sparse_mmr_order


def similarity(a: np.ndarray, b: np.ndarray, distance: Distance) -> float:
    if a.ndim == 2:  # MaxSim: each token of a against its best token of b
        return sum(max(similarity(x, y, distance) for y in b) for x in a)
    if distance == Distance.COSINE:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    if distance == Distance.DOT:
        return float(a @ b)
    if distance == Distance.EUCLID:
        return -float(((a - b) ** 2).sum())
    return -float(np.abs(a - b).sum())


def naive_mmr(
    query: np.ndarray, vectors: list[np.ndarray], distance: Distance, diversity: float, limit: int
) -> list[int]:
    relevance = [similarity(query, v, distance) for v in vectors]
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(limit, len(vectors)):
        rest = [i for i in range(len(vectors)) if i not in chosen]
        scores = [
            (1 - diversity) * relevance[i]
            - diversity * max(similarity(vectors[i], vectors[j], distance) for j in chosen)
            for i in rest
        ]
        chosen.append(rest[int(np.argmax(scores))])
    return chosen


@pytest.mark.parametrize("distance", list(Distance))
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("diversity", [0.0, 0.4, 1.0])
def test_mmr_order_matches_the_definition(
    distance: Distance, multi: bool, diversity: float
) -> None:
    rng = np.random.default_rng(3)
    if multi:
        vectors = [rng.normal(size=(int(rng.integers(1, 4)), 3)) for _ in range(15)]
        query = rng.normal(size=(2, 3))
    else:
        vectors = [rng.normal(size=5) for _ in range(15)]
        query = rng.normal(size=5)
    expected = naive_mmr(query, vectors, distance, diversity, 6)
    assert mmr_order(query, vectors, distance, diversity, 6) == expected


def test_no_candidates_or_no_limit_choose_nothing() -> None:
    assert mmr_order(np.ones(2), [], Distance.DOT, 0.5, 3) == []
    assert mmr_order(np.ones(2), [np.ones(2)], Distance.DOT, 0.5, 0) == []


@pytest.mark.parametrize("diversity", [0.0, 0.5, 1.0])
def test_sparse_mmr_equals_dense_mmr_on_the_same_vectors(diversity: float) -> None:
    rng = np.random.default_rng(5)
    dense = [np.where(rng.random(12) < 0.3, rng.normal(size=12), 0.0) for _ in range(14)]
    query = np.where(rng.random(12) < 0.5, rng.normal(size=12), 0.0)

    def pair(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.flatnonzero(vector)
        return indices, vector[indices]

    expected = mmr_order(query, dense, Distance.DOT, diversity, 5)
    assert sparse_mmr_order(pair(query), [pair(v) for v in dense], diversity, 5) == expected
