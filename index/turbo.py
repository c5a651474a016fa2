"""TurboQuant's fixed pieces: a random rotation and Lloyd-Max codebooks for its coordinates.

TurboQuant (Zandieh et al., 2025) needs no training on the data: after a random
orthogonal rotation every coordinate of a unit vector in ``d`` dimensions follows the
same near-Gaussian law (variance ``1/d``), so one codebook, the Lloyd-Max quantizer of
that law, serves every coordinate of every vector. This module computes those pieces;
``index/quantization.py::TurboQuantizedIndex`` puts them into a faiss ``IndexHNSWPQ``
(one sub-quantizer per coordinate, its centroids set to the codebook) so encoding and
the asymmetric look-up scoring run in faiss's C++.

Bit widths are Qdrant's ``TurboQuantBitSize``: 1, 2, 4 and 8 bits code each coordinate
alone (2, 4, 16, 256 levels); 1.5 bits codes each *pair* of coordinates with one of 8
points of the two-dimensional law (3 bits a pair), so an odd dimension is padded by one
zero coordinate before the rotation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TURBO_BITS = (1.0, 1.5, 2.0, 4.0, 8.0)
"""Bits per coordinate, as Qdrant names them: ``bits1``, ``bits1_5``, ``bits2``,
``bits4`` (Qdrant's default) and ``bits8``."""

_GRID = np.linspace(-8.0, 8.0, 1 << 16)
_ITERATIONS = 300
_SAMPLES_2D = 1 << 15


def layout(bits: float) -> tuple[int, int]:
    """``(coordinates per code, bits per code)`` for a bit width: ``(1, bits)``, or
    ``(2, 3)`` for 1.5 bits."""
    if bits not in TURBO_BITS:
        raise ValueError(f"turbo bits must be one of {TURBO_BITS}, got {bits}")
    return (2, 3) if bits == 1.5 else (1, int(bits))


def padded_dim(dim: int, bits: float) -> int:
    """The rotated dimension: ``dim``, rounded up to whole codes."""
    sub, _ = layout(bits)
    return -(-dim // sub) * sub


@lru_cache(maxsize=8)
def rotation(dim: int, seed: int = 0) -> np.ndarray:
    """A random orthogonal ``dim x dim`` matrix (QR of a Gaussian matrix, signs fixed
    so the law is uniform over rotations); rows are rotated as ``x @ R.T``. Cached and
    read-only: every segment of one dimension shares one matrix in memory."""
    gaussian = np.random.default_rng(seed).standard_normal((dim, dim))
    q, r = np.linalg.qr(gaussian)
    rotated: np.ndarray = (q * np.sign(np.diag(r))).astype(np.float32)
    rotated.setflags(write=False)
    return rotated


def codebook(dim: int, bits: float) -> np.ndarray:
    """Centroids for the coordinates of a rotated unit vector in ``dim`` dimensions,
    shaped ``(2 ** code_bits, coordinates per code)``: the standard-normal Lloyd-Max
    levels scaled by ``1 / sqrt(dim)``."""
    sub, code_bits = layout(bits)
    unit = _gaussian_levels(code_bits) if sub == 1 else _gaussian_points_2d(code_bits)
    scaled: np.ndarray = (unit / np.sqrt(dim)).astype(np.float32)
    return scaled


@lru_cache(maxsize=8)
def _gaussian_levels(bits: int) -> np.ndarray:
    """The Lloyd-Max quantizer of N(0, 1) with ``2 ** bits`` levels, shaped ``(n, 1)``:
    Lloyd's fixed point (each level the mean of its cell, each boundary midway between
    levels) on a fine grid of the density, started from the equal-probability levels."""
    weights = np.exp(-0.5 * _GRID**2)
    mass = np.concatenate([[0.0], np.cumsum(weights)])
    moment = np.concatenate([[0.0], np.cumsum(weights * _GRID)])
    n = 1 << bits
    cdf = mass[1:] / mass[-1]
    levels = _GRID[np.searchsorted(cdf, (np.arange(n) + 0.5) / n)]
    for _ in range(_ITERATIONS):
        edges = np.searchsorted(_GRID, (levels[1:] + levels[:-1]) / 2)
        bounds = np.concatenate([[0], edges, [len(_GRID)]])
        cell_mass = mass[bounds[1:]] - mass[bounds[:-1]]
        cell_moment = moment[bounds[1:]] - moment[bounds[:-1]]
        levels = np.where(cell_mass > 0, cell_moment / np.maximum(cell_mass, 1e-300), levels)
    result: np.ndarray = levels.reshape(n, 1)
    return result


@lru_cache(maxsize=2)
def _gaussian_points_2d(bits: int) -> np.ndarray:
    """``2 ** bits`` points quantizing the 2-d standard normal: Lloyd's algorithm on a
    fixed seeded sample (deterministic), started from a ring plus the origin."""
    sample = np.random.default_rng(0).standard_normal((_SAMPLES_2D, 2))
    n = 1 << bits
    angles = 2 * np.pi * np.arange(n - 1) / (n - 1)
    points = np.vstack([[0.0, 0.0], 1.5 * np.column_stack([np.cos(angles), np.sin(angles)])])
    for _ in range(_ITERATIONS // 10):
        nearest = np.argmin(((sample[:, None, :] - points[None]) ** 2).sum(axis=2), axis=1)
        counts = np.bincount(nearest, minlength=n)[:, None]
        sums = np.stack([np.bincount(nearest, sample[:, i], minlength=n) for i in (0, 1)], 1)
        points = np.where(counts > 0, sums / np.maximum(counts, 1), points)
    return points


STORAGE_BITS: dict[str, int] = {"turbo4": 4}
"""Qdrant's TurboQuant storage datatypes Quiver stores: bits per coordinate. Qdrant 1.19's
server has ``turbo4`` only (qdrant-client 1.20 also names ``turbo8`` / ``turbo16``,
refused: at 8 bits a decoded row does not always code back to itself)."""


def storage_width(dim: int, bits: int) -> int:
    """Code bytes a row of ``dim`` coordinates takes at ``bits`` (two 4-bit codes a byte)."""
    return -(-dim * bits // 8)


def encode_storage(rows: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> ``(codes (n, storage_width) uint8, norms (n,) float32)``: each row's
    direction rotated and coded against the Lloyd-Max levels, its norm kept as a scale.
    Decoding (``decode_storage``) restores the norm exactly, so at 4 bits a decoded row
    codes back to the same codes: its rotated coordinates move by the codes' own length
    (within a few percent of 1), less than half the gap between the 16 levels (measured:
    every row from 50 dimensions up; 12 of 20,000 random rows at 3 dimensions differ)."""
    dim = rows.shape[1]
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows)).astype(np.float32)
    unit = rows / np.where(norms > 0, norms, 1.0)[:, None]
    levels = codebook(dim, bits)[:, 0]
    edges = (levels[1:] + levels[:-1]) / 2
    codes = np.searchsorted(edges, unit @ rotation(dim).T).astype(np.uint8)
    if bits == 4:
        if dim % 2:
            codes = np.hstack([codes, np.zeros((len(codes), 1), dtype=np.uint8)])
        codes = (codes[:, 0::2] << 4) | codes[:, 1::2]
    return np.ascontiguousarray(codes), norms


def decode_storage(codes: np.ndarray, norms: np.ndarray, dim: int, bits: int) -> np.ndarray:
    """``encode_storage``'s codes -> float32 rows: the levels rotated back, scaled to
    unit length and by each row's norm."""
    rotated, scale = _rotated_levels(codes, norms, dim, bits)
    rows: np.ndarray = (rotated @ rotation(dim)) * scale[..., None]
    return rows.astype(np.float32)


def storage_products(
    codes: np.ndarray, norms: np.ndarray, queries: np.ndarray, dim: int, bits: int
) -> np.ndarray:
    """``<query, decoded row>`` for codes ``(nq, c, width)`` and queries ``(nq, dim)``,
    scored in the rotated space (the query rotated once; no row is rotated back)."""
    rotated, scale = _rotated_levels(codes, norms, dim, bits)
    turned = queries @ rotation(dim).T
    products: np.ndarray = np.einsum("qcd,qd->qc", rotated, turned) * scale
    return products.astype(np.float32)


def _rotated_levels(
    codes: np.ndarray, norms: np.ndarray, dim: int, bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """The codes' levels (still rotated) and per-row factors making them the row."""
    if bits == 4:
        codes = np.stack([codes >> 4, codes & 15], axis=-1).reshape(*codes.shape[:-1], -1)
    picked = codebook(dim, bits)[:, 0][codes[..., :dim]]
    length = np.sqrt(np.einsum("...i,...i->...", picked, picked))
    scale: np.ndarray = (norms / np.where(length > 0, length, 1.0)).astype(np.float32)
    return picked, scale


def storage_cast(rows: np.ndarray, bits: int) -> np.ndarray:
    """Rows as a TurboQuant storage datatype holds them: coded and decoded (lossy)."""
    if len(rows) == 0:
        return rows
    return decode_storage(*encode_storage(rows, bits), rows.shape[1], bits)
