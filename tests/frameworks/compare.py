"""Equality of a framework's answers from Quiver and from qdrant-client's local mode."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

REL_TOL = 1e-4
ABS_TOL = 1e-5


def point_ids(count: int) -> list[str]:
    """Fixed UUIDs, the same on both sides (frameworks otherwise draw random ones)."""
    return [str(uuid.UUID(int=i + 1)) for i in range(count)]


def assert_same_ranking(
    quiver: Sequence[tuple[object, float]], local: Sequence[tuple[object, float]]
) -> None:
    """Same scores, to float tolerance, and the same ids in the same order, except that ids
    whose scores tie (RRF fuses ranks, so ties happen) may come in any order among themselves,
    as in Qdrant, whose order of equal scores is unspecified."""
    got_scores = [score for _, score in quiver]
    want_scores = [score for _, score in local]
    assert len(got_scores) == len(want_scores), (quiver, local)
    for got, want in zip(got_scores, want_scores, strict=True):
        assert _close(got, want), (quiver, local)
    for start, stop in _tie_groups(want_scores):
        got_ids = {item_id for item_id, _ in quiver[start:stop]}
        assert got_ids == {item_id for item_id, _ in local[start:stop]}, (quiver, local)


def _close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _tie_groups(scores: Sequence[float]) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of consecutive equal scores."""
    groups: list[tuple[int, int]] = []
    start = 0
    for n in range(1, len(scores) + 1):
        if n == len(scores) or not _close(scores[n], scores[start]):
            groups.append((start, n))
            start = n
    return groups
