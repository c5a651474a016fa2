"""Fusing the candidate lists of a query's prefetches into one ranking.

Both methods follow Qdrant (checked against qdrant-client's local mode,
``qdrant_client/hybrid/fusion.py``): ties keep the order in which points first
appear across the sources, the first hit seen for a point is the one kept.

* RRF: a point at 0-based rank ``r`` in a source of weight ``w`` earns
  ``1 / ((r + 1) / w + k - 1)`` (``k`` defaults to 2, Qdrant's constant); a weight of
  zero or less earns nothing; the fused score is the sum over sources.
* DBSF: each source's scores are mapped to ``(s - (mean - 3 sd)) / 6 sd`` with the
  sample standard deviation (one point, or no spread: 0.5), then summed per point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from server.engine.point_ids import PointId
from server.engine.results import ScoredPoint

DEFAULT_RRF_K = 2
"""Qdrant's default ranking constant (``rrf.k`` left out or ``{"fusion": "rrf"}``)."""


@dataclass(frozen=True, slots=True)
class Fusion:
    """``{"fusion": "rrf" | "dbsf"}`` or ``{"rrf": {"k", "weights"}}``."""

    method: Literal["rrf", "dbsf"]
    k: int = DEFAULT_RRF_K
    weights: tuple[float, ...] | None = None


def fuse(fusion: Fusion, sources: Sequence[list[ScoredPoint]], limit: int) -> list[ScoredPoint]:
    """The best ``limit`` points of ``sources`` under ``fusion``."""
    if fusion.method == "dbsf":
        contributions = [_dbsf_scores(source) for source in sources]
    else:
        weights = fusion.weights or (1.0,) * len(sources)
        contributions = [
            _rrf_scores(len(source), fusion.k, weight)
            for source, weight in zip(sources, weights, strict=True)
        ]
    return _summed(sources, contributions, limit)


def _rrf_scores(count: int, k: int, weight: float) -> np.ndarray:
    if weight <= 0:
        return np.zeros(count)
    ranks = np.arange(1, count + 1, dtype=np.float64)
    return 1.0 / (ranks / weight + k - 1.0)


def _dbsf_scores(source: list[ScoredPoint]) -> np.ndarray:
    values = [hit.score for hit in source]
    if len(values) <= 1:
        return np.full(len(values), 0.5)
    # Python sums, in order, so the statistics are bit-for-bit Qdrant's
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    scores = np.array(values, dtype=np.float64)
    if variance == 0:
        return np.full(len(values), 0.5)
    deviation = variance**0.5
    low, high = mean - 3 * deviation, mean + 3 * deviation
    normalised: np.ndarray = (scores - low) / (high - low)
    return normalised


def _summed(
    sources: Sequence[list[ScoredPoint]], contributions: list[np.ndarray], limit: int
) -> list[ScoredPoint]:
    """Sum each point's contributions; best first, ties in order of first appearance."""
    first: dict[PointId, ScoredPoint] = {}
    total: dict[PointId, float] = {}
    for source, scores in zip(sources, contributions, strict=True):
        for hit, score in zip(source, scores.tolist(), strict=True):
            if hit.id in total:
                total[hit.id] += score
            else:
                first[hit.id], total[hit.id] = hit, score
    ranked = sorted(total.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [first[point_id]._replace(score=score) for point_id, score in ranked]
