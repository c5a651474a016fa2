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


def top_k_agreement(
    found: np.ndarray,
    found_scores: np.ndarray,
    reference: np.ndarray,
    reference_scores: np.ndarray,
    rel_tol: float = 1e-4,
) -> dict[str, float]:
    """How far two top-k lists agree, allowing for ties.

    `identical`: share of queries with the same ids in the same order; `same_set`: the same
    ids in any order; `tie_equal`: every position holds the same id or the same score (to
    `rel_tol`), i.e. the lists differ only by how equal scores were broken; `overlap`:
    mean share of the reference ids found; `max_score_diff`: the largest relative score
    difference at equal positions."""
    same_order = np.all(found == reference, axis=1)
    same_set = [set(a.tolist()) == set(b.tolist()) for a, b in zip(found, reference, strict=True)]
    scale = np.maximum(np.abs(reference_scores), 1e-12)
    close = np.abs(found_scores - reference_scores) <= rel_tol * scale
    tie_equal = np.all((found == reference) | close, axis=1)
    valid = reference >= 0
    overlap = [
        len(set(a[v].tolist()) & set(b[v].tolist())) / max(int(v.sum()), 1)
        for a, b, v in zip(found, reference, valid, strict=True)
    ]
    diff = np.where(valid, np.abs(found_scores - reference_scores) / scale, 0.0)
    return {
        "identical": float(np.mean(same_order)),
        "same_set": float(np.mean(same_set)),
        "tie_equal": float(np.mean(tie_equal)),
        "overlap": float(np.mean(overlap)),
        "max_score_diff": float(diff.max(initial=0.0)),
    }
