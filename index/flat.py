"""Exact (brute-force) k-nearest-neighbour search in native code.

faiss's ``knn`` kernels use BLAS for inner products and L2 over batches and
SIMD loops otherwise, so the hot loop never runs in Python. Results follow the
faiss convention, batch first: ``ids (nq, k)`` padded with -1 and ``scores
(nq, k)`` in Qdrant's units, padded with the metric's worst score.
"""

from __future__ import annotations

import faiss
import numpy as np

from index.metrics import Distance, faiss_to_score


def exact_search(
    xb: np.ndarray,
    xq: np.ndarray,
    k: int,
    distance: Distance,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``xq`` against ``xb`` (or only its ``rows``), best first.

    ``xb`` and ``xq`` must already be prepared for the metric (normalised for
    Cosine). Returned ids index ``xb``, so a ``rows`` subset is mapped back.
    """
    nq = xq.shape[0]
    ids = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), distance.worst_score, dtype=np.float32)
    base = xb if rows is None else xb[rows]
    nb = base.shape[0]
    if nb == 0 or nq == 0 or k == 0:
        return ids, scores
    kk = min(k, nb)
    raw, found = faiss.knn(
        np.ascontiguousarray(xq, dtype=np.float32),
        np.ascontiguousarray(base, dtype=np.float32),
        kk,
        metric=distance.faiss_metric,
    )
    if rows is not None:
        found = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    ids[:, :kk] = found
    scores[:, :kk] = faiss_to_score(raw, distance)
    return ids, scores
