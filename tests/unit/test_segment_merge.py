"""The merge of several segments' answers (``segment_set._merged``) against a plain
per-query sort: the best ``k`` by score, -1 rows last, ties kept in segment order."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.segment_set import _merged


def _reference(
    all_rows: list[np.ndarray],
    all_scores: list[np.ndarray],
    positions: list[int],
    k: int,
    higher_is_better: bool,
) -> list[list[tuple[int, int, float]]]:
    """(owner, row, score) per query, sorted in Python."""
    merged = []
    for q in range(all_rows[0].shape[0]):
        hits = [
            (position, int(rows[q, i]), float(scores[q, i]))
            for position, rows, scores in zip(positions, all_rows, all_scores, strict=True)
            for i in range(rows.shape[1])
        ]  # in segment order, then rank: Python's sort is stable too

        def key(hit: tuple[int, int, float]) -> float:
            if hit[1] < 0:
                return float("inf")
            return -hit[2] if higher_is_better else hit[2]

        merged.append(sorted(hits, key=key)[:k])
    return merged


@pytest.mark.parametrize("seed", range(40))
def test_the_merge_keeps_the_best_k_in_order_with_their_owners(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nq, segments, k = int(rng.integers(1, 5)), int(rng.integers(2, 5)), int(rng.integers(1, 12))
    widths = [int(rng.integers(1, 12)) for _ in range(segments)]
    all_rows = [
        np.where(rng.random((nq, w)) < 0.2, -1, rng.integers(0, 100, (nq, w))) for w in widths
    ]
    # scores rounded to one decimal: many ties, which must keep segment order
    all_scores = [np.round(rng.standard_normal((nq, w)), 1).astype(np.float32) for w in widths]
    positions = sorted(int(p) for p in rng.choice(10, segments, replace=False))
    for higher_is_better in (True, False):
        ranked = _merged([], all_rows, all_scores, positions, k, higher_is_better)
        expected = _reference(all_rows, all_scores, positions, k, higher_is_better)
        got = [
            list(zip(owner.tolist(), rows.tolist(), scores.tolist(), strict=True))
            for owner, rows, scores in zip(ranked.owner, ranked.rows, ranked.scores, strict=True)
        ]
        assert got == expected
        assert ranked.rows.dtype == all_rows[0].dtype
        assert ranked.scores.dtype == np.float32
