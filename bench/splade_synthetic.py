"""Seeded SPLADE-like sparse vectors and an exact scipy.sparse reference.

Learned sparse encoders (SPLADE) give a passage about a hundred non-zero weights over a
word-piece vocabulary of about 30,000, and the terms follow a heavy-tailed law: a few are
in most passages, most are rare. This module draws such vectors with numpy only:

* terms: each vector draws about `draws` terms with replacement from a Zipf law
  (`p(rank r) ∝ 1 / (r + 1) ** zipf`) over `vocab` terms and keeps the distinct ones;
  `draws` is solved for once so that the mean number of distinct terms is `nnz` (120 for
  documents, 30 for queries), and varies per vector (log-normal, sigma 0.3) so lengths
  spread as real ones do. Ranks map to term ids through a seeded permutation, so the
  frequent terms are not simply the small ids;
* weights: log-normal (median 0.6, sigma 0.6), float32, as a ReLU-log weight looks;
* a payload `bucket` in [0, 100) per document: `bucket == 7` keeps 1% of them.

Chunks are drawn from `default_rng([seed, role, chunk])`, so the same arguments give the
same vectors whatever the chunk a caller starts from, and 1M vectors never need to be
in memory as Python objects at once.

The reference is exact: scores = the query's columns of the CSC document matrix times its
weights (an inverted index's work, in scipy's C loops), top-k by `argpartition`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

VOCAB = 30_000
ZIPF = 1.0
DOC_NNZ, QUERY_NNZ = 120, 30
CHUNK = 10_000
BUCKETS = 100
LENGTH_SIGMA = 0.3
WEIGHT_MEDIAN, WEIGHT_SIGMA = 0.6, 0.6
DOCS, QUERIES = 0, 1


@dataclass(frozen=True)
class SparseSet:
    """Rows as CSR arrays: row `i` has `indices[indptr[i]:indptr[i+1]]` (sorted, distinct)
    and the matching `values`."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @property
    def n(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        span = slice(int(self.indptr[i]), int(self.indptr[i + 1]))
        return self.indices[span], self.values[span]

    def matrix(self, vocab: int = VOCAB) -> sp.csr_matrix:
        return sp.csr_matrix((self.values, self.indices, self.indptr), shape=(self.n, vocab))


@lru_cache(maxsize=8)
def term_law(vocab: int, zipf: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cumulative Zipf probabilities by rank, a guide table for inverting them, and the
    rank -> term id permutation.

    `guide[j]` is the rank of the uniform draw `j / len(guide)`: a draw `u` has its rank
    at or a few steps after `guide[floor(u * len(guide))]` (the table has more entries than
    the rarest term's probability asks for), which `ranks_of` walks exactly. A plain
    `searchsorted` of 30M draws is ten times slower (a cache miss per bisection step)."""
    weights = 1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** zipf
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    size = 1 << int(np.ceil(np.log2(2.0 / weights.min() * weights.sum())))
    guide = np.searchsorted(cdf, np.arange(size) / size, side="right")
    return cdf, guide, np.random.default_rng([seed, 99]).permutation(vocab).astype(np.int32)


def ranks_of(uniform: np.ndarray, cdf: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """`searchsorted(cdf, uniform, side="right")`, through the guide table."""
    ranks = guide[(uniform * guide.shape[0]).astype(np.int64)]
    while True:
        behind = cdf[ranks] <= uniform
        if not behind.any():
            return ranks
        ranks += behind


@lru_cache(maxsize=8)
def draws_for(nnz: int, vocab: int, zipf: float) -> float:
    """Draws with replacement whose expected number of distinct terms is `nnz`."""
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** zipf)
    p = np.diff(np.concatenate([[0.0], cdf / cdf[-1]]))
    low, high = float(nnz), float(nnz) * 50
    for _ in range(60):
        middle = (low + high) / 2
        distinct = float(np.sum(-np.expm1(middle * np.log1p(-p))))
        low, high = (middle, high) if distinct < nnz else (low, middle)
    return (low + high) / 2


def draw(
    n: int, nnz: int, role: int, seed: int = 42, vocab: int = VOCAB, zipf: float = ZIPF
) -> SparseSet:
    """`n` vectors (documents: role 0, queries: role 1), all chunks concatenated."""
    parts = list(chunks(n, nnz, role, seed, vocab, zipf))
    lengths = np.concatenate([np.diff(part.indptr) for part in parts]) if parts else []
    return SparseSet(
        indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        indices=np.concatenate([part.indices for part in parts]),
        values=np.concatenate([part.values for part in parts]),
    )


def chunks(
    n: int, nnz: int, role: int, seed: int = 42, vocab: int = VOCAB, zipf: float = ZIPF
) -> Iterator[SparseSet]:
    """The vectors in chunks of `CHUNK` rows (the last one shorter)."""
    for number, start in enumerate(range(0, n, CHUNK)):
        rng = np.random.default_rng([seed, role, number])
        yield draw_chunk(rng, min(CHUNK, n - start), nnz, seed, vocab, zipf)


def draw_chunk(
    rng: np.random.Generator, rows: int, nnz: int, seed: int, vocab: int, zipf: float
) -> SparseSet:
    cdf, guide, term_of_rank = term_law(vocab, zipf, seed)
    mean_draws = draws_for(nnz, vocab, zipf)
    per_row = np.clip(
        np.round(mean_draws * rng.lognormal(-(LENGTH_SIGMA**2) / 2, LENGTH_SIGMA, rows)),
        1,
        mean_draws * 4,
    ).astype(np.int64)
    width = int(per_row.max())
    terms = term_of_rank[ranks_of(rng.random((rows, width)), cdf, guide)].astype(np.int64)
    terms[np.arange(width)[None, :] >= per_row[:, None]] = vocab  # past a row's draws
    terms.sort(axis=1)
    keep = np.ones_like(terms, dtype=bool)
    keep[:, 1:] = terms[:, 1:] != terms[:, :-1]
    keep &= terms < vocab
    lengths = keep.sum(axis=1)
    indices = terms[keep].astype(np.int32)
    values = rng.lognormal(np.log(WEIGHT_MEDIAN), WEIGHT_SIGMA, indices.shape[0])
    return SparseSet(
        indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        indices=indices,
        values=values.astype(np.float32),
    )


def buckets(n: int, seed: int = 42) -> np.ndarray:
    """Each document's payload `bucket`, uniform in [0, 100)."""
    return np.random.default_rng([seed, 7]).integers(0, BUCKETS, n)


# --------------------------------------------------------------------------- the reference


class BruteForce:
    """Exact sparse dot-product top-k over `docs`, optionally restricted to some rows."""

    def __init__(self, docs: SparseSet, rows: np.ndarray | None = None) -> None:
        matrix = docs.matrix()
        self.rows = np.arange(docs.n) if rows is None else np.asarray(rows)
        self.columns = (matrix if rows is None else matrix[self.rows]).tocsc()

    def search(self, indices: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        """Ids (document numbers, best first, -1 padding) and scores of the top k."""
        scores = self.columns[:, indices] @ values.astype(np.float32)
        ids = np.full(k, -1, dtype=np.int64)
        best = np.zeros(k, dtype=np.float32)
        positive = int(np.count_nonzero(scores > 0))
        take = min(k, positive)
        if take:
            top = np.argpartition(-scores, take - 1)[:take]
            top = top[np.argsort(-scores[top], kind="stable")]
            ids[:take], best[:take] = self.rows[top], scores[top]
        return ids, best

    @property
    def bytes(self) -> int:
        c = self.columns
        return int(c.data.nbytes + c.indices.nbytes + c.indptr.nbytes + self.rows.nbytes)
