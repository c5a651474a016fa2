"""Each group's best rows by dot product, in one compiled pass (a grouped search's fill,
``server/engine/collection/group_fill.py``).

Its own module so that numba loads only when the first grouped fill needs it, not when
the server starts (issue 24: an idle server holds no compiler); ``warm_up`` puts the
compiled code in numba's disk cache ahead of time, as ``graph_walk.warm_up`` does.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def top_per_group(
    xb: np.ndarray,
    positions: np.ndarray,
    rows: np.ndarray,
    bounds: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray],
    query: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """For each group ``g`` (``rows[bounds[g]:bounds[g + 1]]``, those both ``masks``
    hold), its best ``size`` entries by dot product of their ``xb`` row (at
    ``positions``) with ``query``, as indexes into ``rows``, best first (ties: the
    earlier row), -1 padded; float32 sums, as local mode computes them, vectorised
    (``reassoc``; no flag that assumes finite values: the padding is -inf)."""
    groups, dim = len(bounds) - 1, xb.shape[1]
    allowed, present = masks
    best = np.full((groups, size), -1, dtype=np.int64)
    scores = np.full((groups, size), -np.inf, dtype=np.float32)
    for g in range(groups):
        filled = 0
        for i in range(bounds[g], bounds[g + 1]):
            row = rows[i]
            if not (allowed[row] and present[row]):
                continue
            position = positions[i]
            score = np.float32(0.0)
            for d in range(dim):
                score += xb[position, d] * query[d]
            if filled == size and not score > scores[g, size - 1]:
                continue
            j = filled if filled < size else size - 1
            while j > 0 and scores[g, j - 1] < score:
                scores[g, j], best[g, j] = scores[g, j - 1], best[g, j - 1]
                j -= 1
            scores[g, j], best[g, j] = score, i
            filled = min(filled + 1, size)
    return best, scores


def warm_up() -> None:
    """Compile the kernel, or load it from numba's cache, on a tiny input."""
    xb = np.eye(4, dtype=np.float32)
    mapped = xb.copy()
    mapped.setflags(write=False)  # as a segment's rows read from its mapped file are
    rows, every = np.arange(4), np.ones(4, dtype=bool)
    for matrix in (xb, mapped):  # numba compiles each writability apart
        top_per_group(matrix, rows, rows, np.array([0, 2, 4]), (every, every), xb[0], 1)
