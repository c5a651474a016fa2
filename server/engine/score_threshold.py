"""``score_threshold``: which scores pass it, decided in one place.

qdrant-client's local mode (the reference) has two rules, and Quiver keeps both:

* A score from a metric or a custom score (nearest, recommend, discover, context) must
  be *strictly* past the threshold, and the metric says which side is past: above it
  for Cosine and Dot, below it for Euclid and Manhattan, even for a custom score
  (where bigger is always better, so under Euclid the ranking's walk stops at once
  unless every score is below). Sparse points with a zero weight score exactly 0.0,
  so the equal case is common.
* A fused (``rrf``, ``dbsf``) or ``formula`` score passes *at or above* it (``>=``).

Both compare in the scores' own precision: a search's float32 scores see a threshold
of -1.6e-120 as -0.0, so a 0.0 score is not past it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Rule:
    """``higher_is_better``: which side of the threshold is past; ``inclusive``: whether
    a score equal to it passes."""

    higher_is_better: bool
    inclusive: bool = False


FUSED = Rule(higher_is_better=True, inclusive=True)
"""Fusion and formula scores: bigger is better, the threshold itself passes."""


def strictly_past(higher_is_better: bool) -> Rule:
    """The rule for a metric's (or a custom) score under that metric."""
    return Rule(higher_is_better=higher_is_better)


def passing(scores: np.ndarray, threshold: float | np.ndarray, rule: Rule) -> np.ndarray:
    """Per score: does it pass ``threshold`` (a number, or one per row as a column)?
    Compared in ``scores``' dtype; a NaN threshold passes nothing (callers mask it)."""
    bound = np.asarray(threshold, dtype=scores.dtype)
    with np.errstate(invalid="ignore"):
        if rule.higher_is_better:
            passed = scores >= bound if rule.inclusive else scores > bound
        else:
            passed = scores <= bound if rule.inclusive else scores < bound
    return np.asarray(passed)


def leading_passing(scores: list[float], threshold: float, rule: Rule) -> int:
    """How many of ``scores`` (best first) pass before the first that does not: a
    ranking is cut there, as local mode stops its walk down the ranking."""
    passed = passing(np.asarray(scores, dtype=np.float64), threshold, rule)
    failed = np.flatnonzero(~passed)
    return int(failed[0]) if len(failed) else len(scores)
