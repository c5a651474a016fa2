"""The order in which vectors go into an HNSW graph, chosen by local intrinsic dimensionality.

Elliott & Clark, "The Impacts of Data, Ordering, and Intrinsic Dimensionality on Recall in
HNSW" (ICTIR 2024), report that insertion order shifts HNSW recall by up to 12 points on some
embedding sets, and that inserting points in order of their local intrinsic dimensionality
(LID) is one lever. This module only computes the order; the caller adds rows in it and keeps
the permutation to map results back to its own ids.

LID of a point is estimated by maximum likelihood from the distances ``r_1 <= ... <= r_k`` to
its ``k`` nearest neighbours (Levina & Bickel 2004; Amsaleg et al. 2015)::

    LID(x) = -( (1/k) * sum_i ln(r_i / r_k) )^-1

Neighbours are looked up in a random reference sample of at most ``sample`` rows, so the cost
is ``n * sample * d`` rather than ``n^2 * d``; a sparser reference makes every radius larger
but the estimate is a ratio of radii, so it stays comparable across points (which is all an
ordering needs).

A caveat for faiss: ``IndexHNSWFlat.add`` inserts one call's rows level by level and shuffles
the rows of each level (a fixed-seed "get rid of dataset order bias" step), so an order is only
honoured between ``add`` calls. Add in chunks small against the whole set for it to matter.

Measured on GloVe-50 (``bench/insertion_order.py``): ``lid_desc`` gains under half a recall
point, ``lid_asc`` loses up to one, and the same CPU time spent on efConstruction gains more.
"""

from __future__ import annotations

from typing import Literal, get_args

import faiss
import numpy as np

from index.metrics import Distance, normalize_rows

InsertionOrder = Literal["none", "lid_desc", "lid_asc"]
"""``none``: keep the caller's order. ``lid_desc``: highest LID first. ``lid_asc``: lowest first."""

ORDERS: tuple[InsertionOrder, ...] = get_args(InsertionOrder)

_MIN_RATIO = 1e-12
"""Floor on ``r_i / r_k``: an exact duplicate (``r_i = 0``) adds ln(1e-12) ~ -27.6 instead of
-inf, so it pulls the estimate towards 0 (a point mass has dimension 0) without breaking it."""

_MAX_LID = 1e6
"""Returned when all ``k`` neighbours are equidistant, where the estimate diverges."""

_CHUNK_ROWS = 16_384
"""Query rows per faiss call: bounds the ``(chunk, k + 1)`` result arrays, not faiss's work."""


def lid_mle(knn_distances: np.ndarray) -> np.ndarray:
    """Maximum-likelihood LID of each row of ``(n, k)`` ascending neighbour distances.

    Distances are true distances (not squared) and exclude the point itself; ``k >= 2``.
    Never NaN or inf: ratios are floored at ``1e-12`` (duplicates push the estimate towards
    0), a row whose neighbours are all exact duplicates (``r_k = 0``) gets 0, and a row
    whose neighbours are all equidistant (where the MLE diverges) gets ``1e6``.
    Returns float64 ``(n,)``.
    """
    distances = np.asarray(knn_distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[1] < 2:
        raise ValueError(f"expected (n, k) distances with k >= 2, got shape {distances.shape}")
    distances = np.maximum(distances, 0.0)
    farthest = distances[:, -1:]
    collapsed = farthest[:, 0] == 0.0
    safe_farthest = np.where(farthest > 0.0, farthest, 1.0)
    ratios = np.clip(distances / safe_farthest, _MIN_RATIO, 1.0)
    mean_log = np.log(ratios).mean(axis=1)  # <= 0, since every ratio is <= 1
    lid = -1.0 / np.minimum(mean_log, -1.0 / _MAX_LID)
    lid[collapsed] = 0.0
    result: np.ndarray = lid
    return result


def estimate_lid(
    vectors: np.ndarray,
    distance: Distance,
    *,
    k: int = 20,
    sample: int = 20_000,
    seed: int = 0,
) -> np.ndarray:
    """LID of every row of ``vectors``, from its ``k`` nearest rows in a random reference sample.

    The reference is ``min(sample, n)`` rows drawn without replacement with ``seed``; a row
    that is in it is not its own neighbour. ``k`` is lowered to ``reference - 1`` for small
    inputs. Distances come from exact faiss k-NN: L2 for Euclid; L2 on unit-normalised rows
    for Cosine and Dot, where L2 = sqrt(2 - 2 cos) is monotone in the angle (for Dot this
    ignores the norms, which a proximity graph's neighbourhoods largely do too); L1 for
    Manhattan (faiss's non-BLAS kernel, several times slower than L2).
    Returns float64 ``(n,)``; see ``lid_mle`` for duplicates.
    """
    xb = _prepare(vectors, distance)
    n = xb.shape[0]
    if n < 3:
        raise ValueError(f"LID needs at least 3 vectors, got {n}")
    if k < 2 or sample < 3:
        raise ValueError(f"need k >= 2 and sample >= 3, got k={k}, sample={sample}")
    rng = np.random.default_rng(seed)
    reference_rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    reference = np.ascontiguousarray(xb[reference_rows])
    k = min(k, reference.shape[0] - 1)
    lid = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK_ROWS):
        rows = np.arange(start, min(start + _CHUNK_ROWS, n))
        knn = _knn_distances_excluding_self(xb[rows], rows, reference, reference_rows, k, distance)
        lid[rows] = lid_mle(knn)
    return lid


def insertion_permutation(
    vectors: np.ndarray,
    distance: Distance,
    order: InsertionOrder,
    *,
    k: int = 20,
    sample: int = 20_000,
    seed: int = 0,
) -> np.ndarray | None:
    """Row indices in the order to insert them, or None for ``"none"`` (keep the given order).

    ``lid_desc`` puts the highest-LID rows first, ``lid_asc`` the lowest; equal LIDs keep their
    original relative order. Fewer than 3 rows have no LID and come back unpermuted.
    ``permutation[j]`` is the original row inserted j-th, so an index position ``p`` found by
    a search maps back to row ``permutation[p]``.
    """
    _check_order(order)
    if order == "none":
        return None
    if vectors.shape[0] < 3:
        return np.arange(vectors.shape[0], dtype=np.int64)
    return order_by_lid(estimate_lid(vectors, distance, k=k, sample=sample, seed=seed), order)


def order_by_lid(lid: np.ndarray, order: InsertionOrder) -> np.ndarray | None:
    """``insertion_permutation`` for LIDs already estimated (one estimate serves both orders)."""
    _check_order(order)
    if order == "none":
        return None
    key = -lid if order == "lid_desc" else lid
    permutation: np.ndarray = np.argsort(key, kind="stable").astype(np.int64)
    return permutation


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"unknown insertion order {order!r}; expected one of {list(ORDERS)}")


def _prepare(vectors: np.ndarray, distance: Distance) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected (n, d) vectors, got shape {matrix.shape}")
    return normalize_rows(matrix) if distance.higher_is_better else matrix


def _knn_distances_excluding_self(
    xq: np.ndarray,
    rows: np.ndarray,
    reference: np.ndarray,
    reference_rows: np.ndarray,
    k: int,
    distance: Distance,
) -> np.ndarray:
    """``(len(rows), k)`` ascending distances from ``xq`` to ``reference``, self excluded.

    Asks for ``k + 1`` neighbours and drops one per row: the row itself where faiss returned
    it, else the farthest (for rows not in the reference, or a row pushed out of its own
    list by more than ``k`` exact duplicates, whose distances are then all 0 anyway).
    """
    metric = faiss.METRIC_L1 if distance is Distance.MANHATTAN else faiss.METRIC_L2
    raw, found = faiss.knn(xq, reference, k + 1, metric=metric)
    if distance is not Distance.MANHATTAN:
        raw = np.sqrt(np.maximum(raw, 0.0))  # faiss L2 is squared; the MLE needs radii
    position = np.searchsorted(reference_rows, rows)
    in_reference = (position < reference_rows.size) & (
        reference_rows[np.minimum(position, reference_rows.size - 1)] == rows
    )
    own_id = np.where(in_reference, position, -1)
    drop = found == own_id[:, None]
    drop[:, -1] |= ~drop.any(axis=1)
    kept: np.ndarray = raw[~drop].reshape(len(rows), k)
    return kept
