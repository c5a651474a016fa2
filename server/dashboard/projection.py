"""A 2-D PCA projection of a vector sample, for the dashboard's map.

Randomized SVD (Halko, Martinsson & Tropp 2011): the sample is centred, multiplied by a
small seeded Gaussian sketch and refined by two power iterations, so 5,000 vectors of
1,536 dimensions cost a few matrix products (0.6 s on the shared 2-core dev machine)
instead of a full SVD or a d x d covariance. Seeded: the same sample always draws the same map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKETCH = 8
"""Columns of the random sketch: the two components wanted plus oversampling."""
POWER_ITERATIONS = 2


@dataclass(frozen=True, slots=True)
class Projection:
    """``coords`` (n, 2) and the share of the sample's variance each axis explains."""

    coords: np.ndarray
    explained: tuple[float, float]


def pca_2d(vectors: np.ndarray, seed: int = 0) -> Projection:
    """The first two principal components of ``vectors`` (n, d); fewer than two points,
    or no variance, gives zeros."""
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return Projection(np.zeros((n, 2)), (0.0, 0.0))
    centred = x - x.mean(axis=0)
    total = float(np.square(centred).sum())
    if total == 0.0:
        return Projection(np.zeros((n, 2)), (0.0, 0.0))
    basis = _range_basis(centred, seed)
    _, singular, vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
    components = vt[:2]
    coords = centred @ components.T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((n, 2 - coords.shape[1]))])
    shares = np.square(singular[:2]) / total
    explained = (float(shares[0]), float(shares[1]) if len(shares) > 1 else 0.0)
    return Projection(coords, explained)


def _range_basis(centred: np.ndarray, seed: int) -> np.ndarray:
    """An orthonormal basis (n, k) of the sample's dominant column space."""
    n, d = centred.shape
    k = min(SKETCH, n, d)
    sketch = np.random.default_rng(seed).standard_normal((d, k))
    basis, _ = np.linalg.qr(centred @ sketch)
    for _ in range(POWER_ITERATIONS):
        basis, _ = np.linalg.qr(centred.T @ basis)
        basis, _ = np.linalg.qr(centred @ basis)
    return basis
