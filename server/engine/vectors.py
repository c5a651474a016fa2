"""Validation of incoming vectors: names, dimensions, finiteness, metric preparation.

Everything a client sends as a vector passes through here before it reaches
storage or an index, so a bad vector is rejected before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.metrics import Distance, normalize_rows
from server.engine.config import DEFAULT_VECTOR, CollectionConfig, VectorParams
from server.errors import InvalidVector, UnsupportedFeature


def vector_name(config: CollectionConfig, name: str | None) -> str:
    """Resolve ``using`` / a named vector to a configured name, or fail clearly."""
    resolved = name or DEFAULT_VECTOR
    if resolved not in config.vectors:
        if resolved == DEFAULT_VECTOR:
            names = ", ".join(sorted(config.vectors))
            raise InvalidVector(
                f"Wrong input: this collection has named vectors ({names}); say which one to use"
            )
        raise InvalidVector(f"Wrong input: Not existing vector name error: {resolved}")
    return resolved


def prepare_matrix(rows: Any, params: VectorParams, what: str) -> np.ndarray:
    """Rows of floats -> validated float32 matrix, normalised when the metric is Cosine."""
    try:
        with np.errstate(over="ignore"):  # too-large numbers become inf, rejected below
            matrix = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        raise _describe_ragged(rows, params, what) from None
    if matrix.ndim != 2 or matrix.shape[1] != params.size:
        got = matrix.shape[-1] if matrix.ndim >= 1 and matrix.size else 0
        if matrix.ndim == 3:
            raise UnsupportedFeature(f"{what}: multi-vectors on a dense vector")
        raise InvalidVector(
            f"Wrong input: Vector dimension error: expected dim: {params.size}, got {got} ({what})"
        )
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidVector(
            f"Wrong input: {what}: vector #{bad} contains NaN or infinity "
            "(or a number too large for float32)"
        )
    if params.distance is Distance.COSINE:
        return normalize_rows(matrix)
    return np.ascontiguousarray(matrix)


def _describe_ragged(rows: Any, params: VectorParams, what: str) -> InvalidVector:
    """Name the first vector that is not a flat list of ``params.size`` numbers."""
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(isinstance(x, int | float) for x in row):
            return InvalidVector(f"Wrong input: {what} #{i} is not a flat list of numbers")
        if len(row) != params.size:
            return InvalidVector(
                "Wrong input: Vector dimension error: "
                f"expected dim: {params.size}, got {len(row)} ({what} #{i})"
            )
    return InvalidVector(f"Wrong input: {what}: expected flat lists of {params.size} numbers")


def point_vectors(
    raw: Sequence[Any], config: CollectionConfig
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``vector`` field of each point -> per-name matrices and presence masks."""
    count = len(raw)
    by_name: dict[str, list[Any]] = {name: [] for name in config.vectors}
    present = {name: np.zeros(count, dtype=bool) for name in config.vectors}
    for i, vector in enumerate(raw):
        named = _as_named(vector, config, i)
        for name, value in named.items():
            if name not in config.vectors:
                raise InvalidVector(f"Wrong input: Not existing vector name error: {name}")
            present[name][i] = True
            by_name[name].append(value)
    matrices: dict[str, np.ndarray] = {}
    for name, params in config.vectors.items():
        matrix = np.zeros((count, params.size), dtype=np.float32)
        if by_name[name]:
            label = f"vector {name!r}" if name else "vector"
            matrix[present[name]] = prepare_matrix(by_name[name], params, label)
        matrices[name] = matrix
    return matrices, present


def _as_named(vector: Any, config: CollectionConfig, index: int) -> dict[str, Any]:
    if isinstance(vector, dict):
        if "indices" in vector and "values" in vector:
            raise UnsupportedFeature("sparse vectors")
        return vector
    if isinstance(vector, list):
        if config.named_vectors:
            return {vector_name(config, None): vector}
        return {DEFAULT_VECTOR: vector}
    raise InvalidVector(f"Wrong input: point #{index}: vector must be a list or an object")
