"""Bulk loads in Arrow IPC (``api/ingest.py`` has the formats and the bounds): record
batches whose vectors reach the collection as matrices, checked in numpy passes.

A module of its own so that pyarrow (some 27 MB of a process's memory) loads with the
first Arrow body, not with the server (issue 24).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from server.api.ingest import BulkReport, ChunkReader, Limits
from server.engine.config import DEFAULT_VECTOR
from server.engine.point_ids import PointId, parse_point_id
from server.engine.sparse_vector import SparseRows, checked_rows
from server.errors import BadRequest, BulkLoadFailed

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle


def load_arrow(
    collection: CollectionHandle, body: ChunkReader, limits: Limits, report: BulkReport
) -> None:
    """Consume an Arrow IPC stream, one ``limits.chunk_rows`` commit at a time."""
    _load_arrow(collection, _BoundedReader(body, limits.max_batch_bytes), limits, report)


class _BoundedReader(io.BufferedReader):
    """The Arrow reader asks for each message's body by its declared length: refuse a
    length over the bound before any of it is read."""

    def __init__(self, raw: ChunkReader, max_read: int) -> None:
        super().__init__(raw, buffer_size=1 << 20)
        self._max_read = max_read

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0 or size > self._max_read:
            raise _MessageTooLarge(size)
        return super().read(size)


class _MessageTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def _load_arrow(
    collection: CollectionHandle, stream: _BoundedReader, limits: Limits, report: BulkReport
) -> None:
    try:
        reader = pyarrow.ipc.open_stream(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BulkLoadFailed(
            f"the body is not an Arrow IPC stream ({exc})", report.to_wire()
        ) from None
    except _MessageTooLarge as exc:  # a schema message is small: this is not Arrow at all
        raise BulkLoadFailed(
            f"the body is not an Arrow IPC stream (its first message declares {exc.size} "
            f"bytes, over the limit of {limits.max_batch_bytes}: QUIVER_MAX_BULK_BATCH_BYTES)",
            report.to_wire(),
        ) from None
    vector_columns = _vector_columns(reader.schema, collection, report)
    row = 0
    for batch in _batches(reader, limits, report):
        for start in range(0, batch.num_rows, limits.chunk_rows):
            part = batch.slice(start, limits.chunk_rows)
            _commit_arrow(collection, part, vector_columns, row, report)
            row += part.num_rows


def _batches(reader: Any, limits: Limits, report: BulkReport) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            done = report.accepted + report.rejected
            raise BulkLoadFailed(
                f"the Arrow stream broke off after row {done} ({exc})", report.to_wire()
            ) from None
        except _MessageTooLarge as exc:
            raise _too_large(exc, limits, report) from None


def _too_large(exc: _MessageTooLarge, limits: Limits, report: BulkReport) -> BulkLoadFailed:
    declared = "an unbounded read" if exc.size is None or exc.size < 0 else f"{exc.size} bytes"
    return BulkLoadFailed(
        f"an Arrow IPC message of {declared} is over the limit of {limits.max_batch_bytes} "
        "bytes (QUIVER_MAX_BULK_BATCH_BYTES); send smaller record batches",
        report.to_wire(),
    )


def _vector_columns(
    schema: pa.Schema, collection: CollectionHandle, report: BulkReport
) -> dict[str, str]:
    """Column name -> vector name, checked against the collection before any row."""
    names = set(schema.names)
    if "id" not in names:
        raise BulkLoadFailed('the Arrow stream has no "id" column', report.to_wire())
    columns = {c: c.partition(".")[2] for c in schema.names if c.startswith("vector.")}
    if "vector" in names:
        columns["vector"] = DEFAULT_VECTOR
    if not columns:
        raise BulkLoadFailed(
            'the Arrow stream has no "vector" (or "vector.<name>") column', report.to_wire()
        )
    config = collection.config
    for column, name in columns.items():
        if name in config.sparse_vectors:
            _check_sparse_column(schema.field(column).type, column, report)
            continue
        params = config.vectors.get(name)
        if params is None or params.is_multi or (name == DEFAULT_VECTOR and config.named_vectors):
            raise BulkLoadFailed(
                f"column {column!r} names no dense vector of this collection "
                f"(it has {sorted(config.vectors)}; multi-vectors load as NDJSON)",
                report.to_wire(),
            )
    return columns


def _commit_arrow(
    collection: CollectionHandle,
    batch: pa.RecordBatch,
    vector_columns: dict[str, str],
    first_row: int,
    report: BulkReport,
) -> None:
    n = batch.num_rows
    ok = np.ones(n, dtype=bool)
    ids = _arrow_ids(batch.column("id"), first_row, ok, report)
    matrices: dict[str, np.ndarray | SparseRows] = {}
    for column, name in vector_columns.items():
        if name in collection.config.sparse_vectors:
            matrices[name] = _arrow_sparse(batch.column(column), column, first_row, ok, report)
            continue
        size = collection.config.vectors[name].size
        matrices[name] = _arrow_matrix(batch.column(column), size, column, first_row, ok, report)
    payloads = _arrow_payloads(batch, vector_columns, first_row, ok, report)
    report.errors.sort(key=lambda error: int(error["row"]))  # checks ran column by column
    keep = np.flatnonzero(ok)
    if len(keep) == 0:
        return
    kept_ids = [ids[i] for i in keep.tolist()]
    kept_payloads = [payloads[i] for i in keep.tolist()]
    kept = {name: _take(m, keep) if len(keep) < n else m for name, m in matrices.items()}
    report.operation_id = collection.bulk_upsert(kept_ids, kept, kept_payloads)
    report.accepted += len(keep)


def _arrow_ids(
    column: pa.Array, first_row: int, ok: np.ndarray, report: BulkReport
) -> list[PointId]:
    values = column.to_pylist()
    ids: list[PointId] = []
    for i, value in enumerate(values):
        try:
            ids.append(parse_point_id(value))
        except BadRequest as exc:
            ids.append(0)
            if ok[i]:
                ok[i] = False
                report.reject(first_row + i, exc.message)
    return ids


def _arrow_matrix(
    column: pa.Array, size: int, label: str, first_row: int, ok: np.ndarray, report: BulkReport
) -> np.ndarray:
    """A ``(n, size)`` float32 matrix; rows of the wrong length, null or non-finite are
    rejected (and left zero)."""
    n = len(column)
    matrix = np.zeros((n, size), dtype=np.float32)
    fixed = pa.types.is_fixed_size_list(column.type) and column.type.list_size == size
    if fixed and column.null_count == 0:
        flat = column.flatten().to_numpy(zero_copy_only=False)
        matrix[:] = np.asarray(flat, dtype=np.float32).reshape(n, size)
        _reject_rows(_non_finite(matrix), "contains NaN or infinity", label, first_row, ok, report)
        return matrix
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):  # fmt: skip
        raise BulkLoadFailed(
            f"column {label!r} must be a list of float32, got {column.type}", report.to_wire()
        )
    for i, value in enumerate(column.to_pylist()):
        if value is None or len(value) != size:
            got = "null" if value is None else f"dim {len(value)}"
            _reject_row(i, f"Vector dimension error: expected dim: {size}, got {got} ({label})",
                        first_row, ok, report)  # fmt: skip
            continue
        matrix[i] = value
    _reject_rows(_non_finite(matrix), "contains NaN or infinity", label, first_row, ok, report)
    return matrix


def _check_sparse_column(kind: pa.DataType, column: str, report: BulkReport) -> None:
    names = (
        {kind.field(i).name for i in range(kind.num_fields)} if pa.types.is_struct(kind) else set()
    )
    if names != {"indices", "values"}:
        raise BulkLoadFailed(
            f"column {column!r} holds a sparse vector: a struct of `indices` and `values` "
            f"lists, got {kind}",
            report.to_wire(),
        )


def _arrow_sparse(
    column: pa.Array, label: str, first_row: int, ok: np.ndarray, report: BulkReport
) -> SparseRows:
    """Sparse rows from a struct column, checked in numpy passes; a null struct (or null
    lists) is a point without this vector, a bad row is rejected."""
    indices, values = column.flatten()
    absent = column.is_null().to_numpy(zero_copy_only=False)
    absent |= indices.is_null().to_numpy(zero_copy_only=False)
    absent |= values.is_null().to_numpy(zero_copy_only=False)
    index_lengths = _list_lengths(indices, absent)
    value_lengths = _list_lengths(values, absent)
    flat_indices = _flat_present(indices, absent)
    flat_values = _flat_present(values, absent)
    rows, problems = checked_rows(index_lengths, value_lengths, flat_indices, flat_values)
    for bad, reason in problems:
        _reject_rows(bad, f"(sparse): {reason}", label, first_row, ok, report)
    return rows


def _list_lengths(lists: pa.Array, absent: np.ndarray) -> np.ndarray:
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    return np.where(absent, 0, lengths).astype(np.int64)


def _flat_present(lists: pa.Array, absent: np.ndarray) -> np.ndarray:
    """The items of the rows that are not ``absent``, in row order."""
    kept = lists.filter(pa.array(~absent)) if absent.any() else lists
    return np.asarray(kept.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)


def _take(column: np.ndarray | SparseRows, rows: np.ndarray) -> np.ndarray | SparseRows:
    return column.take(rows) if isinstance(column, SparseRows) else column[rows]


def _non_finite(matrix: np.ndarray) -> np.ndarray:
    finite: np.ndarray = np.isfinite(matrix).all(axis=1)
    return ~finite


def _arrow_payloads(
    batch: pa.RecordBatch,
    vector_columns: dict[str, str],
    first_row: int,
    ok: np.ndarray,
    report: BulkReport,
) -> list[dict[str, Any]]:
    n = batch.num_rows
    payloads: list[dict[str, Any]] = [{} for _ in range(n)]
    if "payload" in batch.schema.names:
        for i, text in enumerate(batch.column("payload").to_pylist()):
            if text is None:
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                _reject_row(i, f"payload is not valid JSON: {exc}", first_row, ok, report)
                continue
            if not isinstance(value, dict):
                _reject_row(i, "payload must be a JSON object", first_row, ok, report)
                continue
            payloads[i] = value
    fields = [
        c for c in batch.schema.names if c not in vector_columns and c not in ("id", "payload")
    ]
    for name in fields:
        for i, value in enumerate(batch.column(name).to_pylist()):
            if value is not None:
                payloads[i][name] = value
    return payloads


def _reject_rows(
    bad: np.ndarray, reason: str, label: str, first_row: int, ok: np.ndarray, report: BulkReport
) -> None:
    for i in np.flatnonzero(bad & ok).tolist():
        _reject_row(i, f"{label} {reason}", first_row, ok, report)


def _reject_row(i: int, reason: str, first_row: int, ok: np.ndarray, report: BulkReport) -> None:
    if ok[i]:
        ok[i] = False
        report.reject(first_row + i, reason)
