"""Distance metrics as Qdrant names them, and how each maps onto faiss.

Qdrant reports similarities (Cosine, Dot: higher is better) and distances
(Euclid, Manhattan: lower is better) in the same ``score`` field; this module
is the single place that knows which is which.
"""

from __future__ import annotations

from enum import StrEnum

import faiss
import numpy as np


class Distance(StrEnum):
    COSINE = "Cosine"
    DOT = "Dot"
    EUCLID = "Euclid"
    MANHATTAN = "Manhattan"

    @property
    def higher_is_better(self) -> bool:
        return self in (Distance.COSINE, Distance.DOT)

    @property
    def faiss_metric(self) -> int:
        if self.higher_is_better:
            return int(faiss.METRIC_INNER_PRODUCT)
        if self is Distance.EUCLID:
            return int(faiss.METRIC_L2)
        return int(faiss.METRIC_L1)

    @property
    def worst_score(self) -> float:
        """Padding value for result slots with no point."""
        return float("-inf") if self.higher_is_better else float("inf")


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (Cosine is computed as Dot on normalised vectors, as Qdrant does).

    A zero row stays zero instead of becoming NaN.
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def faiss_to_score(distances: np.ndarray, distance: Distance) -> np.ndarray:
    """Turn faiss's raw output into Qdrant scores (faiss L2 is squared)."""
    if distance is Distance.EUCLID:
        rooted: np.ndarray = np.sqrt(np.maximum(distances, 0.0))
        return rooted
    return distances
