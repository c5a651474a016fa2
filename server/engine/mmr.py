"""Maximal marginal relevance: re-rank nearest candidates for diversity.

Each next point maximises ``(1 - diversity) * relevance - diversity * max similarity
to the points already chosen``, the first being the most relevant. Similarities are
the collection's own (cosine, dot, negative squared Euclid, negative Manhattan; MaxSim
for multi-vectors), computed once as a numpy matrix over the candidates; the greedy
loop runs once per chosen point, each step one vector operation over the rest.
Ties resolve as Qdrant's (and qdrant-client's local mode): the pending list shrinks by
swap-remove and the *last* best candidate in it wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from index.metrics import Distance

if TYPE_CHECKING:
    from scipy import sparse

Matrix = npt.NDArray[np.float64]
_ROW_CHUNK_BYTES = 64 << 20


SparsePair = tuple[np.ndarray, np.ndarray]
"""A sparse vector as ``(indices, values)`` arrays."""


def mmr_order(
    query: np.ndarray,
    candidates: Sequence[np.ndarray],
    distance: Distance,
    diversity: float,
    limit: int,
) -> list[int]:
    """Positions into ``candidates`` in MMR order, at most ``limit`` of them."""
    if not candidates or limit <= 0:
        return []
    return greedy_order(*_similarities(query, candidates, distance), diversity, limit)


def sparse_mmr_order(
    query: SparsePair, candidates: Sequence[SparsePair], diversity: float, limit: int
) -> list[int]:
    """``mmr_order`` for sparse vectors (dot product; a missing vector scores 0): one
    CSR matrix of the candidates, ``C @ C.T`` and ``C @ q``."""
    if not candidates or limit <= 0:
        return []
    width = 1 + max(int(indices.max(initial=0)) for indices, _ in [query, *candidates])
    rows = _csr(candidates, width)
    relevance = rows @ _csr([query], width).T
    similarity = (rows @ rows.T).toarray()
    return greedy_order(np.asarray(relevance.toarray()).ravel(), similarity, diversity, limit)


def _csr(vectors: Sequence[SparsePair], width: int) -> sparse.csr_matrix:
    from scipy import sparse  # ~40 MB of a process: loaded by the first sparse MMR

    indptr = np.cumsum([0] + [len(indices) for indices, _ in vectors])
    columns = np.concatenate([indices for indices, _ in vectors]).astype(np.int64)
    values = np.concatenate([values for _, values in vectors]).astype(np.float64)
    return sparse.csr_matrix((values, columns, indptr), shape=(len(vectors), width))


def greedy_order(
    relevance: np.ndarray, similarity: Matrix, diversity: float, limit: int
) -> list[int]:
    """The greedy MMR walk over precomputed relevance ``(n,)`` and similarity ``(n, n)``."""
    keep = 1.0 - diversity
    pending = list(range(len(relevance)))
    chosen = [_swap_remove(pending, _last_argmax(relevance[pending]))]
    closest = np.full(len(relevance), -np.inf)
    while len(chosen) < limit and pending:
        closest = np.maximum(closest, similarity[:, chosen[-1]])
        rows = np.array(pending)
        scores = keep * relevance[rows] - (1.0 - keep) * closest[rows]
        if np.all(np.isneginf(scores)):
            break
        chosen.append(_swap_remove(pending, _last_argmax(scores)))
    return chosen


def _last_argmax(values: np.ndarray) -> int:
    return int(len(values) - 1 - np.argmax(values[::-1]))


def _swap_remove(items: list[int], at: int) -> int:
    items[at], items[-1] = items[-1], items[at]
    return items.pop()


def _similarities(
    query: np.ndarray, candidates: Sequence[np.ndarray], distance: Distance
) -> tuple[np.ndarray, Matrix]:
    """Query-to-candidate relevance ``(n,)`` and candidate-to-candidate ``(n, n)``."""
    if query.ndim == 2:
        return _multi_similarities(query, candidates, distance)
    vectors = np.asarray(np.stack(candidates), dtype=np.float64)
    return _pairwise(query[np.newaxis, :], vectors, distance)[0], _pairwise(
        vectors, vectors, distance
    )


def _multi_similarities(
    query: np.ndarray, candidates: Sequence[np.ndarray], distance: Distance
) -> tuple[np.ndarray, Matrix]:
    """MaxSim: per row token, the best column token, summed over the row's tokens;
    one token-by-token matrix, reduced by segment."""
    tokens = np.asarray(np.concatenate(candidates), dtype=np.float64)
    starts = np.cumsum([0] + [len(c) for c in candidates[:-1]])
    columns = _pairwise(tokens, tokens, distance)
    best = np.maximum.reduceat(columns, starts, axis=1)
    similarity = np.add.reduceat(best, starts, axis=0)
    to_query = np.maximum.reduceat(
        _pairwise(np.asarray(query, np.float64), tokens, distance), starts, axis=1
    )
    return to_query.sum(axis=0), similarity


def _pairwise(rows: Matrix, columns: Matrix, distance: Distance) -> Matrix:
    if distance == Distance.COSINE:
        rows, columns = _unit(rows), _unit(columns)
    if distance in (Distance.COSINE, Distance.DOT):
        result: Matrix = rows @ columns.T
        return result
    out = np.empty((len(rows), len(columns)))
    step = max(1, _ROW_CHUNK_BYTES // max(1, 8 * columns.size))
    for start in range(0, len(rows), step):
        diff = rows[start : start + step, np.newaxis, :] - columns[np.newaxis, :, :]
        part = np.square(diff) if distance == Distance.EUCLID else np.abs(diff)
        out[start : start + step] = -part.sum(axis=2)
    return out


def _unit(vectors: Matrix) -> Matrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Matrix = vectors / np.where(norms == 0, 1.0, norms)
    return result
