"""``exact_search`` over a subset of rows: read in place for a few queries, gathered for
batches; both must find exactly what scoring every allowed row by hand finds."""

from __future__ import annotations

import numpy as np
import pytest

from index.flat import SUBSET_MAX_QUERIES, exact_search
from index.metrics import Distance

ROWS, DIM, K = 3_000, 24, 10


def brute_force(
    xb: np.ndarray, xq: np.ndarray, k: int, distance: Distance, allowed: np.ndarray
) -> np.ndarray:
    """The ids of the best ``k`` allowed rows per query, scored in numpy."""
    if distance.higher_is_better:
        scores = xq @ xb.T
    elif distance is Distance.EUCLID:
        scores = -(((xq[:, None, :] - xb[None, :, :]) ** 2).sum(axis=2))
    else:
        scores = -np.abs(xq[:, None, :] - xb[None, :, :]).sum(axis=2)
    scores[:, ~allowed] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("distance", list(Distance))
@pytest.mark.parametrize("nq", [1, 3, SUBSET_MAX_QUERIES + 5])
@pytest.mark.parametrize("share", [0.995, 0.5, 0.02])
def test_a_subset_scan_finds_the_best_allowed_rows(
    distance: Distance, nq: int, share: float
) -> None:
    rng = np.random.default_rng(7)
    xb = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    xq = rng.standard_normal((nq, DIM)).astype(np.float32)
    allowed = rng.random(ROWS) < share
    found, scores = exact_search(xb, xq, K, distance, allowed)
    assert allowed[found].all()
    assert (found == brute_force(xb, xq, K, distance, allowed)).all()
    best_first = -scores if distance.higher_is_better else scores
    assert (np.diff(best_first, axis=1) >= 0).all()


@pytest.mark.parametrize("nq", [1, SUBSET_MAX_QUERIES + 1])
def test_fewer_allowed_rows_than_k_pad_with_minus_one(nq: int) -> None:
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((500, DIM)).astype(np.float32)
    xq = rng.standard_normal((nq, DIM)).astype(np.float32)
    allowed = np.zeros(500, dtype=bool)
    allowed[[4, 77, 310]] = True
    found, scores = exact_search(xb, xq, K, Distance.DOT, allowed)
    assert (np.sort(found[:, :3], axis=1) == [4, 77, 310]).all()
    assert (found[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()
