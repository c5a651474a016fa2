"""Validation of incoming vectors: names, dimensions, finiteness, metric preparation.

Everything a client sends as a vector passes through here before it reaches
storage or an index, so a bad vector is rejected before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.datatypes import TURBO_DATATYPES, to_datatype, to_turbo
from index.metrics import Distance, normalize_rows
from index.multivector import Ragged
from index.pooling import pool_tokens
from index.sparse import SparseRows
from server.engine.config import (
    DEFAULT_VECTOR,
    CollectionConfig,
    MultiVectorConfig,
    VectorParams,
    compact_storage,
)
from server.engine.requests import VectorColumns
from server.engine.sparse_vector import is_sparse_object, sparse_rows
from server.errors import InvalidVector


@dataclass(frozen=True, slots=True)
class PointVectors:
    """The vectors of a batch of points: a ``(n, dim)`` matrix per dense name, a ragged
    set per multi-vector name, CSR rows per sparse name, and which points carry each
    name."""

    dense: dict[str, np.ndarray]
    tokens: dict[str, Ragged]
    present: dict[str, np.ndarray]
    sparse: dict[str, SparseRows] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> PointVectors:
        return PointVectors(
            {n: m[rows] for n, m in self.dense.items()},
            {n: t.take(rows) for n, t in self.tokens.items()},
            {n: p[rows] for n, p in self.present.items()},
            {n: s.take(rows) for n, s in self.sparse.items()},
        )


def vector_name(config: CollectionConfig, name: str | None) -> str:
    """Resolve ``using`` / a named vector to a configured name, or fail clearly."""
    resolved = name or DEFAULT_VECTOR
    if resolved in config.sparse_vectors:
        raise InvalidVector(
            f"Wrong input: {resolved!r} is a sparse vector; give a sparse query "
            '({"indices": [...], "values": [...]})'
        )
    if resolved not in config.vectors:
        if not config.vectors:
            raise InvalidVector("Wrong input: this collection has only sparse vectors")
        if resolved == DEFAULT_VECTOR:
            names = ", ".join(sorted(config.vectors))
            raise InvalidVector(
                f"Wrong input: this collection has named vectors ({names}); say which one to use"
            )
        raise InvalidVector(f"Wrong input: Not existing vector name error: {resolved}")
    return resolved


def sparse_name(config: CollectionConfig, name: str | None) -> str:
    """``using`` of a sparse query: a configured sparse vector name, or a clear 400."""
    if name in config.sparse_vectors:
        return name
    if name is None or name == DEFAULT_VECTOR or name in config.vectors:
        raise InvalidVector(
            "Wrong input: a sparse query needs `using` to name one of the collection's "
            f"sparse vectors ({', '.join(sorted(config.sparse_vectors)) or 'it has none'})"
        )
    raise InvalidVector(f"Wrong input: Not existing vector name error: {name}")


def prepare_matrix(
    rows: Any, params: VectorParams, what: str, *, query: bool = False
) -> np.ndarray:
    """Rows of floats -> validated float32 matrix, normalised when the metric is Cosine,
    holding the values the vector's ``datatype`` stores (float16-rounded, uint8-cast,
    turbo4 coded and decoded). A ``query`` is never turbo-coded: TurboQuant scores the
    query as given against the stored codes."""
    try:
        with np.errstate(over="ignore"):  # too-large numbers become inf, rejected below
            matrix = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        raise _describe_ragged(rows, params, what) from None
    if matrix.ndim != 2 or matrix.shape[1] != params.size:
        got = matrix.shape[-1] if matrix.ndim >= 1 and matrix.size else 0
        if matrix.ndim == 3:
            raise InvalidVector(
                f"Wrong input: {what}: a list of vectors (multi-vector) given for a dense "
                "vector; create the vector with `multivector_config` to store sets"
            )
        raise InvalidVector(  # Qdrant's exact words, which clients match on
            f"Wrong input: Vector dimension error: expected dim: {params.size}, got {got}"
        )
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidVector(
            f"Wrong input: {what}: vector #{bad} contains NaN or infinity "
            "(or a number too large for float32)"
        )
    if params.distance is Distance.COSINE:
        matrix = normalize_rows(matrix)
    matrix = np.ascontiguousarray(matrix)
    if query and params.datatype in TURBO_DATATYPES:
        return matrix
    return typed_rows(matrix, params, what)


def typed_rows(matrix: np.ndarray, params: VectorParams, what: str) -> np.ndarray:
    """``matrix`` as the vector's ``datatype`` stores it; a value past float16's range
    (65504) is refused rather than stored as infinity."""
    if params.datatype in TURBO_DATATYPES:
        return to_turbo(matrix, params.datatype)
    typed = to_datatype(matrix, compact_storage(params))
    if typed is not matrix and not np.isfinite(typed).all():
        raise InvalidVector(
            f"Wrong input: {what}: a value is too large for the vector's float16 datatype"
        )
    return typed


def _describe_ragged(rows: Any, params: VectorParams, what: str) -> InvalidVector:
    """Name the first vector that is not a flat list of ``params.size`` numbers."""
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(isinstance(x, int | float) for x in row):
            return InvalidVector(f"Wrong input: {what} #{i} is not a flat list of numbers")
        if len(row) != params.size:
            return InvalidVector(
                f"Wrong input: Vector dimension error: expected dim: {params.size}, got {len(row)}"
            )
    return InvalidVector(f"Wrong input: {what}: expected flat lists of {params.size} numbers")


def prepare_sets(
    raws: Sequence[Any],
    params: VectorParams,
    limits: MultiVectorConfig,
    what: str,
    *,
    query: bool = False,
) -> list[np.ndarray]:
    """Multi-vector inputs (each a list of vectors) -> validated float32 ``(n_i, dim)``
    arrays, rows normalised when the metric is Cosine and typed as ``prepare_matrix``
    types them (a ``query``'s tokens are not turbo-coded)."""
    out = []
    for i, raw in enumerate(raws):
        label = f"{what} #{i}" if len(raws) > 1 else what
        if isinstance(raw, list) and raw and isinstance(raw[0], int | float):
            raw = [raw]  # one plain vector is a multi-vector of one row, as in Qdrant
        if not isinstance(raw, list) or not raw or not isinstance(raw[0], list):
            raise InvalidVector(
                f"Wrong input: {label}: a multi-vector is a non-empty list of vectors "
                f"(lists of {params.size} numbers)"
            )
        if len(raw) > limits.max_vectors_per_point:
            raise InvalidVector(
                f"Wrong input: {label} has {len(raw)} vectors, more than the collection's "
                f"limit of {limits.max_vectors_per_point} (`multivector.max_vectors_per_point`)"
            )
        out.append(prepare_matrix(raw, params, label, query=query))
    return out


def point_vectors(raw: Sequence[Any], config: CollectionConfig) -> PointVectors:
    """The ``vector`` field of each point -> per-name matrices or token sets, presence."""
    count = len(raw)
    by_name: dict[str, list[Any]] = {name: [] for name in _all_names(config)}
    present = {name: np.zeros(count, dtype=bool) for name in by_name}
    for i, vector in enumerate(raw):
        named = _as_named(vector, config, i)
        for name, value in named.items():
            _check_kind(config, name, value)
            present[name][i] = True
            by_name[name].append(value)
    return _assemble(by_name, present, config, count)


def column_vectors(columns: VectorColumns, config: CollectionConfig) -> PointVectors:
    """Batch-form vectors (a column per name, a value for every point) -> per-name
    matrices or token sets, with no per-point step."""
    count = len(columns)
    by_name: dict[str, list[Any]] = {name: [] for name in _all_names(config)}
    present = {name: np.zeros(count, dtype=bool) for name in by_name}
    for given, column in columns.columns.items():
        name = _unnamed(config) if given is None else given
        _check_kind(config, name, column[0] if column else None)
        present[name][:] = True
        by_name[name] = column
    return _assemble(by_name, present, config, count)


def _assemble(
    by_name: dict[str, list[Any]],
    present: dict[str, np.ndarray],
    config: CollectionConfig,
    count: int,
) -> PointVectors:
    """Each name's given values (for the points ``present`` marks) prepared in one pass."""
    matrices: dict[str, np.ndarray] = {}
    sets: dict[str, Ragged] = {}
    for name, params in config.vectors.items():
        label = f"vector {name!r}" if name else "vector"
        if params.is_multi:
            sets[name] = _point_sets(by_name[name], present[name], params, config, label)
            continue
        matrix = np.zeros((count, params.size), dtype=np.float32)
        if by_name[name]:
            matrix[present[name]] = prepare_matrix(by_name[name], params, label)
        matrices[name] = matrix
    sparse = {
        name: sparse_rows(by_name[name], present[name], f"sparse vector {name!r}")
        for name in config.sparse_vectors
    }
    return PointVectors(matrices, sets, present, sparse)


def check_vector_names(config: CollectionConfig, names: Sequence[str]) -> None:
    """Names a request removes: at least one, each a configured dense or sparse vector."""
    if not names:
        raise InvalidVector("Validation error in JSON body: [vector: must specify vector names]")
    for name in names:
        if name not in config.vectors and name not in config.sparse_vectors:
            raise InvalidVector(f"Wrong input: Not existing vector name error: {name}")


def merge_vector_updates(points: Sequence[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """An update of named vectors as ids and ``vector`` fields, one per id: a later
    entry for the same id sets its names over the earlier one's (they apply in order)."""
    if not points:
        raise InvalidVector(
            "Validation error in JSON body: [points: must specify points to update]"
        )
    merged: dict[Any, Any] = {}
    for point_id, vector in points:
        earlier = merged.get(point_id)
        if isinstance(earlier, dict) and isinstance(vector, dict) and not is_sparse_object(vector):
            merged[point_id] = earlier | vector
        else:
            merged[point_id] = vector
    return list(merged), list(merged.values())


def _all_names(config: CollectionConfig) -> list[str]:
    return [*config.vectors, *config.sparse_vectors]


def _check_kind(config: CollectionConfig, name: str, value: Any) -> None:
    """The name exists, and a sparse object goes under a sparse name only."""
    if name not in config.vectors and name not in config.sparse_vectors:
        raise InvalidVector(f"Wrong input: Not existing vector name error: {name}")
    if name in config.vectors and is_sparse_object(value):
        raise InvalidVector(
            f"Wrong input: Conversion between sparse and regular vectors failed for vector {name!r}"
        )


def _point_sets(
    raws: list[Any],
    present: np.ndarray,
    params: VectorParams,
    config: CollectionConfig,
    label: str,
) -> Ragged:
    """Every point's set for one multi-vector name (empty where absent), pooled as the
    collection asks."""
    limits = config.multivector
    prepared = iter(prepare_sets(raws, params, limits, label))
    items = [next(prepared) if has else np.zeros((0, params.size), np.float32) for has in present]
    ragged = Ragged.from_arrays(items, params.size)
    if limits.pool_factor is None and limits.max_tokens_per_doc is None:
        return ragged
    pooled = pool_tokens(ragged, limits.pool_factor, limits.max_tokens_per_doc)
    tokens = pooled.tokens
    if params.distance is Distance.COSINE:
        tokens = normalize_rows(tokens)
    return Ragged(typed_rows(tokens, params, label), pooled.offsets)


def _as_named(vector: Any, config: CollectionConfig, index: int) -> dict[str, Any]:
    if isinstance(vector, dict):
        if is_sparse_object(vector):
            raise InvalidVector(
                f"Wrong input: point #{index}: a sparse vector must be given under its name"
            )
        return vector
    if isinstance(vector, list):
        return {_unnamed(config): vector}
    raise InvalidVector(f"Wrong input: point #{index}: vector must be a list or an object")


def _unnamed(config: CollectionConfig) -> str:
    """The name a vector given without one is stored under."""
    return vector_name(config, None) if config.named_vectors else DEFAULT_VECTOR
