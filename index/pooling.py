"""Post-hoc token pooling for multi-vector documents.

Late-interaction models store one vector per token, and many tokens of a document say
nearly the same thing. CRISP ("Clustering Multi-Vector Representations for Denoising and
Pruning") learns clusterable tokens during training; a server only sees the finished
vectors, so it clusters after the fact, as the published post-hoc pooling does: Ward
hierarchical clustering of each document's tokens (scipy, in C), then each cluster is
replaced by the mean of its tokens, rescaled to the members' mean length. A plain mean is
shorter than its members (they point in different directions), so it would lose inner
product to every query token; on MiniLM token vectors rescaling raised the top-10
agreement with unpooled MaxSim from 0.85 to 0.90 at factor 2 (bench/README.md).
``pool_factor`` 2 keeps half the vectors.

The loop runs once per document (one native clustering call each), never per token.
Queries are never pooled: every query token contributes its own maximum to MaxSim.
"""

from __future__ import annotations

import math

import numpy as np

from index.multivector import Ragged


def pooled_size(n_tokens: int, pool_factor: float | None, max_tokens: int | None) -> int:
    """How many vectors a document of ``n_tokens`` keeps (at least one)."""
    keep = n_tokens
    if pool_factor is not None:
        keep = math.ceil(n_tokens / pool_factor)
    if max_tokens is not None:
        keep = min(keep, max_tokens)
    return max(1, min(keep, n_tokens))


def pool_tokens(items: Ragged, pool_factor: float | None, max_tokens: int | None) -> Ragged:
    """Each item's tokens clustered down to ``pooled_size`` cluster means; empty items
    stay empty and items already small enough are kept as they are."""
    if pool_factor is not None and pool_factor < 1:
        raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
    from scipy.cluster.hierarchy import fcluster, linkage  # ~40 MB: loaded when pooling

    dim = items.tokens.shape[1]
    out = []
    for tokens in items.items():
        keep = pooled_size(len(tokens), pool_factor, max_tokens)
        if len(tokens) <= 1 or keep >= len(tokens):
            out.append(tokens)
            continue
        tree = linkage(tokens.astype(np.float64), method="ward")
        labels = fcluster(tree, keep, criterion="maxclust") - 1
        clusters = int(labels.max()) + 1
        sums = np.zeros((clusters, dim), dtype=np.float64)
        np.add.at(sums, labels, tokens)
        lengths = np.bincount(labels, np.linalg.norm(tokens, axis=1), minlength=clusters)
        counts = np.bincount(labels, minlength=clusters)
        norms = np.linalg.norm(sums, axis=1)
        scale = (lengths / counts) / np.where(norms > 0, norms, 1.0)
        out.append((sums * scale[:, None]).astype(np.float32))
    return Ragged.from_arrays(out, dim)
