"""Seeded data generators shaped like what each index is for, and recall@k."""

from __future__ import annotations

import numpy as np

from index.metrics import normalize_rows

LEANVEC_DIM = 64


def gaussian(n: int, dim: int, seed: int = 3) -> np.ndarray:
    """iid standard normal rows, float32."""
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def embeddings(n: int, dim: int = 384, seed: int = 11) -> np.ndarray:
    """Clustered, normalised, with a low-rank spread inside each topic: closer to real
    sentence embeddings than iid noise (which no 1-bit code can rank)."""
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(5).normal(size=(64, dim))
    spread = np.random.default_rng(6).normal(size=(32, dim)) / np.sqrt(32)
    data = (
        topics[rng.integers(0, 64, size=n)]
        + 0.8 * rng.normal(size=(n, 32)) @ spread * np.sqrt(dim / 32)
        + 0.3 * rng.normal(size=(n, dim))
    )
    return normalize_rows(data.astype(np.float32))


def out_of_distribution(
    seed: int = 0, dim: int = LEANVEC_DIM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(database, training queries, held-out queries), in a random rotation.

    The database puts its variance in 16 directions (std 3..1; 0.3 elsewhere);
    the queries live in 16 other directions (std 1; 0.1 elsewhere), which the
    database barely uses, so PCA of the database keeps the wrong subspace.
    """
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    data_std = np.full(dim, 0.3)
    data_std[:16] = np.linspace(3.0, 1.0, 16)
    query_std = np.full(dim, 0.1)
    query_std[40:56] = 1.0
    data = (rng.normal(size=(2000, dim)) * data_std + rng.normal(size=dim)) @ rotation.T
    train = (rng.normal(size=(1000, dim)) * query_std) @ rotation.T
    held_out = (rng.normal(size=(200, dim)) * query_std) @ rotation.T
    return data.astype(np.float32), train.astype(np.float32), held_out.astype(np.float32)


def ragged(items: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a list of (n_i, dim) token arrays into (tokens, offsets)."""
    lengths = [len(item) for item in items]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.concatenate(items).astype(np.float32), offsets


def clustered_set(
    n_docs: int, n_queries: int, dim: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ColBERT-like data: unit tokens around a document's 2-3 topics; queries are drawn
    from one target document's topics, so Chamfer similarity is meaningful."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))

    def tokens_for(topics: np.ndarray, n: int, noise: float) -> np.ndarray:
        x = centres[rng.choice(topics, n)] + noise * rng.standard_normal((n, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    doc_topics = [rng.choice(40, rng.integers(2, 4), replace=False) for _ in range(n_docs)]
    docs = [tokens_for(t, int(rng.integers(10, 31)), 0.6) for t in doc_topics]
    targets = rng.integers(0, n_docs, n_queries)
    queries = [tokens_for(doc_topics[t], int(rng.integers(4, 13)), 0.5) for t in targets]
    return (*ragged(docs), *ragged(queries))


def reference_chamfer(query: np.ndarray, doc: np.ndarray) -> float:
    """MaxSim of one query set against one document set, as plain loops."""
    total = 0.0
    for q in query.astype(np.float64):
        total += max(float(q @ d) for d in doc.astype(np.float64))
    return total


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """recall@k of ``found`` (nq, k) against ``truth`` (nq, k); -1 padding never counts."""
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def wire_float32(values: list[float]) -> tuple[float, ...]:
    """Vector values as the server rendered them (float32's shortest form, as Qdrant
    writes them: ``0.15``) read back to the float32 they stand for, so they equal
    ``float(np.float32(x))`` of the values written."""
    return tuple(np.asarray(values, dtype=np.float32).tolist())
