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


def checked_rows(
    index_lengths: np.ndarray, value_lengths: np.ndarray, indices: np.ndarray, values: np.ndarray
) -> tuple[SparseRows, list[tuple[np.ndarray, str]]]:
    """Many sparse vectors given as flat arrays (row ``i`` holds the next
    ``index_lengths[i]`` indices and ``value_lengths[i]`` values), checked in a few numpy
    passes: the rows (indices sorted within each, a bad row left empty) and, per
    problem, which rows have it. For bulk loads, where a per-point parse would dominate."""
    n = len(index_lengths)
    unequal = index_lengths != value_lengths
    lengths = np.where(unequal, 0, index_lengths).astype(np.int64)
    owner = np.repeat(np.arange(n), lengths)
    idx = np.asarray(indices, dtype=np.float64)[_row_ranges(index_lengths, lengths)]
    with np.errstate(over="ignore", invalid="ignore"):
        val = np.asarray(values, dtype=np.float64).astype(np.float32)
    val = val[_row_ranges(value_lengths, lengths)]
    out_of_range = (idx < 0) | (idx > MAX_SPARSE_INDEX) | (idx != np.floor(idx))
    whole = np.where(out_of_range, 0, idx).astype(np.int64)
    order = np.lexsort((whole, owner))
    sorted_owner, sorted_idx = owner[order], whole[order]
    repeated = (sorted_owner[1:] == sorted_owner[:-1]) & (sorted_idx[1:] == sorted_idx[:-1])
    bad = [
        (unequal, "indices and values must have the same length"),
        (_rows_with(owner, out_of_range, n), f"indices must be between 0 and {MAX_SPARSE_INDEX}"),
        (_rows_with(sorted_owner[1:], repeated, n), "indices must be unique"),
        (_rows_with(owner, ~np.isfinite(val), n), "values contain NaN or infinity"),
    ]
    rejected = np.logical_or.reduce([rows for rows, _ in bad])
    keep = ~rejected[sorted_owner]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(rejected, 0, lengths), out=indptr[1:])
    rows = SparseRows(indptr, sorted_idx[keep].astype(np.uint32), val[order][keep])
    return rows, bad


def _row_ranges(given: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Positions, in a flat array of rows of ``given`` lengths, of each row's first
    ``used`` items."""
    starts = np.zeros(len(given), dtype=np.int64)
    np.cumsum(given[:-1], out=starts[1:])
    firsts = np.zeros(len(used), dtype=np.int64)
    np.cumsum(used[:-1], out=firsts[1:])
    ranges: np.ndarray = np.repeat(starts - firsts, used) + np.arange(int(used.sum()))
    return ranges


def _rows_with(owner: np.ndarray, flags: np.ndarray, n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=bool)
    rows[owner[flags]] = True
    return rows


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
