"""Queries by example: recommend, discover, context and relevance feedback.

Each is a custom score over the similarities of a point to a few *examples* (point
ids or raw vectors; ``lookup_from`` reads the ids in another collection). This module
holds their types and the scores, as Qdrant defines them (qdrant-client's local mode
is the reference the tests compare with); ``recommend.py`` finds the candidates and
feeds their similarities here as one ``examples x candidates`` matrix.

Similarities are Qdrant's *internal* scores: the dot product (Cosine on normalised
vectors), ``-d²`` for Euclid and ``-d`` for Manhattan, so that bigger is always better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np

from index.metrics import Distance
from server.engine.point_ids import PointId
from server.engine.sparse_vector import SparseVector

Example = list[Any] | SparseVector | PointId
"""A raw vector (dense or multi), a sparse vector, or a point whose vector to use."""

STRATEGIES = ("average_vector", "best_score", "sum_scores")
EPSILON = 1.1920929e-7
"""f32's machine epsilon: Qdrant's margin in the context score."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """``lookup_from``: example ids name points of ``collection`` (a ``CollectionHandle``),
    their vector ``vector`` (None: the query's ``using``)."""

    collection: Any
    vector: str | None = None


@dataclass(frozen=True, slots=True)
class Recommend:
    """More like ``positive``, less like ``negative``."""

    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    strategy: str = "average_vector"


@dataclass(frozen=True, slots=True)
class ContextPair:
    positive: Example
    negative: Example


@dataclass(frozen=True, slots=True)
class Discover:
    """Near ``target`` inside the zone the pairs carve out; without a target (a
    ``context`` query) only the zone counts."""

    target: Example | None
    context: tuple[ContextPair, ...]


@dataclass(frozen=True, slots=True)
class Feedback:
    """``relevance_feedback`` with the ``naive`` strategy: near ``target``, pulled toward
    the better-scored of every pair of ``feedback`` examples."""

    target: Example
    feedback: tuple[tuple[Example, float], ...]
    a: float
    b: float
    c: float


ExampleQuery = Recommend | Discover | Feedback


def examples_of(query: ExampleQuery) -> list[Example]:
    """Every example of ``query``, in the order ``score`` reads the matrix rows."""
    if isinstance(query, Recommend):
        return [*query.positive, *query.negative]
    if isinstance(query, Discover):
        target = [] if query.target is None else [query.target]
        return target + [e for pair in query.context for e in (pair.positive, pair.negative)]
    return [query.target, *(example for example, _ in query.feedback)]


def generators(query: ExampleQuery) -> list[int]:
    """Rows of the examples whose neighbourhoods hold the best candidates: positives,
    the target, the positive side of each pair. Empty: only a scan finds them (a
    recommendation from negatives alone ranks the points farthest from them)."""
    if isinstance(query, Recommend):
        return list(range(len(query.positive)))
    if isinstance(query, Discover):
        start = 0 if query.target is None else 1
        return list(range(start)) + [start + 2 * i for i in range(len(query.context))]
    return list(range(1 + len(query.feedback)))


def internal(scores: np.ndarray, metric: Distance) -> np.ndarray:
    """Search scores (distances for Euclid / Manhattan) as Qdrant's internal scores."""
    if metric == Distance.EUCLID:
        return np.asarray(-np.square(scores))
    if metric == Distance.MANHATTAN:
        return -scores
    return scores


def score(query: ExampleQuery, sims: np.ndarray) -> np.ndarray:
    """The custom score of each candidate (column) from its similarity to each example
    (row, ordered as ``examples_of``); bigger is better."""
    if isinstance(query, Recommend):
        positive, negative = sims[: len(query.positive)], sims[len(query.positive) :]
        if query.strategy == "sum_scores":
            return np.asarray(positive.sum(axis=0) - negative.sum(axis=0))
        return _best_score(positive, negative)
    if isinstance(query, Discover):
        return _discover(query.target is not None, sims)
    return _naive_feedback(query, sims)


def _best_score(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    width = positive.shape[1]
    best_pos = positive.max(axis=0) if len(positive) else np.full(width, -np.inf)
    best_neg = negative.max(axis=0) if len(negative) else np.full(width, -np.inf)
    with np.errstate(invalid="ignore"):
        return np.where(best_pos > best_neg, _scaled_sigmoid(best_pos), -_scaled_sigmoid(best_neg))


def _discover(has_target: bool, sims: np.ndarray) -> np.ndarray:
    pairs = sims[1:] if has_target else sims
    positive, negative = pairs[0::2], pairs[1::2]
    if has_target:
        ranks = np.sign(positive - negative).sum(axis=0)
        return np.asarray(ranks + _scaled_sigmoid(sims[0]))
    losses = _sigmoid(np.minimum(positive - negative - EPSILON, 0.0))
    return np.asarray(losses.sum(axis=0))


def _naive_feedback(query: Feedback, sims: np.ndarray) -> np.ndarray:
    result = query.a * sims[0]
    scores = [value for _, value in query.feedback]
    for i, j in permutations(range(len(scores)), 2):
        confidence = scores[i] - scores[j]
        if confidence <= 0:
            continue
        weight = confidence**query.b * query.c
        result = result + weight * (sims[1 + i] - sims[1 + j])
    return np.asarray(result)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Qdrant's fast sigmoid ``x / (1 + |x|)`` (infinities kept, as there)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(x), x / (1.0 + np.abs(x)), x)


def _scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (_sigmoid(x) + 1.0)


def average_dense(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray]) -> np.ndarray:
    """``average_vector``: ``avg(pos) + avg(pos) - avg(neg)``."""
    mean = np.mean(np.stack(positive), axis=0)
    if not negative:
        return np.asarray(mean)
    return np.asarray(mean + mean - np.mean(np.stack(negative), axis=0))


def average_multi(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray]) -> np.ndarray:
    """``average_vector`` of multi-vectors, as Qdrant: the positives' rows, then the
    negated rows of the negatives."""
    return np.concatenate([*positive, *(-n for n in negative)], axis=0)


def average_sparse(
    positive: Sequence[SparseVector], negative: Sequence[SparseVector]
) -> SparseVector:
    """``average_vector`` of sparse vectors, term by term (a missing term is 0)."""
    mean = _sparse_mean(positive)
    if not negative:
        return mean
    other = _sparse_mean(negative)
    terms = np.union1d(mean.indices, other.indices)
    pos, neg = _spread(mean, terms), _spread(other, terms)
    return SparseVector(terms, (pos + pos - neg).astype(np.float32))


def _sparse_mean(vectors: Sequence[SparseVector]) -> SparseVector:
    terms = np.unique(np.concatenate([v.indices for v in vectors]))
    total = sum((_spread(v, terms) for v in vectors), np.zeros(len(terms)))
    return SparseVector(terms, (total / len(vectors)).astype(np.float32))


def _spread(vector: SparseVector, terms: np.ndarray) -> np.ndarray:
    out = np.zeros(len(terms))
    out[np.searchsorted(terms, vector.indices)] = vector.values
    return out
