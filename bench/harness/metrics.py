"""Search quality and speed numbers, computed the same way by every benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int | None = None) -> float:
    """Mean fraction of each query's true top-k ids among its first k found ids.

    `k` defaults to the width of `truth`; padding in `found` (-1, no answer) never matches
    a true id. NaN when there are no rows, so an empty measurement cannot pass a check."""
    k = truth.shape[1] if k is None else k
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"{found.shape[0]} result rows for {truth.shape[0]} queries")
    if not found.shape[0]:
        return float("nan")
    hits: int = sum(
        len(set(row[:k].tolist()) & set(true_row[:k].tolist()))
        for row, true_row in zip(found, truth, strict=True)
    )
    return hits / (k * int(found.shape[0]))


def latency_summary(
    latencies_s: Sequence[float], percentiles: Sequence[int] = (50, 95, 99), decimals: int = 3
) -> dict[str, float]:
    """`{"p50": ms, ...}`, by default rounded to µs (the latency checks work at sub-ms
    resolution)."""
    if not latencies_s:
        return {}
    values = np.asarray(latencies_s) * 1000.0
    return {f"p{p}": round(float(np.percentile(values, p)), decimals) for p in percentiles}


def rate(count: float, seconds: float) -> float:
    """`count / seconds`, NaN for an empty interval rather than a division error."""
    return count / seconds if seconds > 0 else float("nan")


def padded_ids(id_lists: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Per-query id lists as an `(n, k)` array, -1 where a query got fewer than k."""
    ids = np.full((len(id_lists), k), -1, dtype=np.int64)
    for row, found in enumerate(id_lists):
        ids[row, : min(len(found), k)] = found[:k]
    return ids
