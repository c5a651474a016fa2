"""Sparse vectors from the wire: ``{"indices": [...], "values": [...]}`` checked as Qdrant
checks them, for points and queries alike.

A bad one (unequal lengths, a duplicate, negative or above-u32 index, a NaN or infinite
value, a dense list under a sparse name) is an ``InvalidVector`` (400) naming the
vector, raised before anything is written. Also the one place other modules (BM25,
multi-stage queries) turn a wire object into an engine :class:`SparseVector`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.sparse import MAX_SPARSE_INDEX, SparseRows, SparseVector
from server.errors import InvalidVector

__all__ = [
    "SparseRows",
    "SparseVector",
    "is_sparse_object",
    "parse_sparse",
    "sparse_rows",
    "sparse_wire",
]


def is_sparse_object(raw: Any) -> bool:
    """Whether a wire value has the shape of a sparse vector."""
    return isinstance(raw, dict) and "indices" in raw and "values" in raw


def parse_sparse(raw: Any, what: str) -> SparseVector:
    """One validated sparse vector, indices sorted ascending."""
    if not is_sparse_object(raw) or set(raw) != {"indices", "values"}:
        raise InvalidVector(
            f'Wrong input: {what}: a sparse vector is {{"indices": [...], "values": [...]}}'
        )
    indices, values = raw["indices"], raw["values"]
    if not isinstance(indices, list) or not isinstance(values, list):
        raise InvalidVector(f"Wrong input: {what}: `indices` and `values` must be lists")
    if len(indices) != len(values):
        raise InvalidVector(
            f"Wrong input: {what}: indices and values must have the same length "
            f"({len(indices)} != {len(values)})"
        )
    return SparseVector.of(_indices(indices, what), _values(values, what))


def _indices(indices: list[Any], what: str) -> np.ndarray:
    if not all(type(i) is int for i in indices):
        raise InvalidVector(f"Wrong input: {what}: sparse indices must be integers")
    if indices and (min(indices) < 0 or max(indices) > MAX_SPARSE_INDEX):
        raise InvalidVector(
            f"Wrong input: {what}: sparse indices must be between 0 and {MAX_SPARSE_INDEX}"
        )
    array = np.asarray(indices, dtype=np.int64)
    if len(np.unique(array)) != len(array):
        raise InvalidVector(f"Wrong input: {what}: sparse indices must be unique")
    return array


def _values(values: list[Any], what: str) -> np.ndarray:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InvalidVector(f"Wrong input: {what}: sparse values must be numbers")
    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InvalidVector(
            f"Wrong input: {what}: sparse values contain NaN or infinity "
            "(or a number too large for float32)"
        )
    return array


def sparse_wire(vector: SparseVector) -> dict[str, list[Any]]:
    """Qdrant's JSON shape of a stored sparse vector (indices ascending)."""
    return {"indices": vector.indices.tolist(), "values": vector.values.tolist()}


def sparse_rows(raws: Sequence[Any], present: np.ndarray, what: str) -> SparseRows:
    """Every point's sparse vector for one name (an empty row where ``present`` is
    False), validated one by one so the first bad one is named."""
    given = iter(raws)
    items: list[SparseVector | None] = []
    for i, has in enumerate(present.tolist()):
        if not has:
            items.append(None)
            continue
        raw = next(given)
        label = f"{what} (point #{i})" if len(present) > 1 else what
        if isinstance(raw, list):
            raise InvalidVector(
                f"Wrong input: Conversion between sparse and regular vectors failed for {label}"
            )
        items.append(parse_sparse(raw, label))
    return SparseRows.of(items)
