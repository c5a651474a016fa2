"""Bulk loads: a streamed body of points, consumed and committed in bounded chunks.

Two formats (``POST /collections/{name}/points/bulk``, chosen by Content-Type):

* NDJSON (``application/x-ndjson``): one point per line, ``{"id", "vector", "payload"}``
  exactly as in Qdrant's upsert; any vector shape the collection takes (named, multi).
* Arrow IPC stream (``application/vnd.apache.arrow.stream``): record batches with an
  ``id`` column (integers or UUID strings), ``vector`` (fixed-size list of float32; or
  ``vector.<name>`` per named dense vector; for a sparse vector a struct of ``indices``
  and ``values`` lists, a null or empty one meaning none), an optional ``payload`` column of JSON
  object strings, and any other column as a payload field of its name. Vectors arrive
  as one contiguous buffer per batch and reach the collection as a matrix: no number is
  parsed from text, so this is the fast path (bench/bench_bulk.py).

The body is read through a small file-like adapter over the request's chunks, so at
most one chunk of points is held at a time, and every buffer has a bound (``Limits``): an
NDJSON line is read only up to ``max_line_bytes`` and an Arrow IPC message only up to
``max_batch_bytes``; past either the load stops at once, naming the limit, without reading
the rest. A chunk is ``chunk_rows`` points, or fewer when its NDJSON text reaches
``max_chunk_bytes``. Each chunk is validated and committed as one durable transaction.
A bad row (unparseable, bad id, wrong dimension, NaN) is rejected alone and reported with
its row number (0-based, counting every line or Arrow row of the request); the rest of its
chunk is committed. A stream that breaks off (truncated, not Arrow, wrong columns, over a
bound) stops the load: the chunks before it stay committed and the report says how many
rows that was.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from server.api.inference import embed_point_vectors, vector_names
from server.engine.config import DEFAULT_VECTOR
from server.engine.payload import check_payload
from server.engine.point_ids import PointId, parse_point_id
from server.engine.sparse_vector import SparseRows, checked_rows
from server.errors import BadRequest, BulkLoadFailed, UnsupportedMediaType

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
ARROW_TYPES = ("application/vnd.apache.arrow.stream",)
MAX_REPORTED_ERRORS = 20
_POINT_KEYS = frozenset({"id", "vector", "payload"})


@dataclass
class BulkReport:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    operation_id: int | None = None

    def reject(self, row: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "error": reason})

    def to_wire(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": self.errors,
            "operation_id": self.operation_id,
        }


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the request body)."""

    def __init__(self, next_chunk: Callable[[], bytes | None]) -> None:
        self._next_chunk = next_chunk
        self._buffer = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._done:
            chunk = self._next_chunk()
            if chunk is None:
                self._done = True
            else:
                self._buffer = memoryview(chunk)
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


@dataclass(frozen=True)
class Limits:
    """How much of a body is held at once (``QUIVER_MAX_BULK_*`` settings)."""

    chunk_rows: int
    """Points per commit."""
    max_line_bytes: int
    """One NDJSON line, its newline not counted: a single point."""
    max_chunk_bytes: int
    """NDJSON text of one commit (as much as one upsert request body)."""
    max_batch_bytes: int
    """One Arrow IPC message (a record batch, or the schema)."""


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


def format_of(content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind in NDJSON_TYPES:
        return "ndjson"
    if kind in ARROW_TYPES:
        return "arrow"
    raise UnsupportedMediaType(kind or "(none)", [*NDJSON_TYPES[:1], *ARROW_TYPES])


def load(collection: CollectionHandle, kind: str, body: ChunkReader, limits: Limits) -> BulkReport:
    """Consume the whole body; indexing waits until the end (``Collection.bulk_loading``)."""
    report = BulkReport()
    with collection.bulk_loading():
        if kind == "ndjson":
            stream = io.BufferedReader(body, buffer_size=1 << 20)
            _load_ndjson(collection, stream, limits, report)
        else:
            bounded = _BoundedReader(body, limits.max_batch_bytes)
            _load_arrow(collection, bounded, limits, report)
    return report


# -- NDJSON ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    row: int
    point_id: PointId
    vector: Any
    payload: dict[str, Any]


def _load_ndjson(
    collection: CollectionHandle, stream: BinaryIO, limits: Limits, report: BulkReport
) -> None:
    pending: list[_Row] = []
    pending_bytes = 0
    try:
        for row, line in enumerate(_lines(stream, limits.max_line_bytes)):
            if not line.strip():
                continue
            parsed = _parse_line(line, row, report)
            if parsed is not None:
                pending.append(parsed)
                pending_bytes += len(line)
            if len(pending) >= limits.chunk_rows or pending_bytes >= limits.max_chunk_bytes:
                _commit_rows(collection, pending, report)
                pending, pending_bytes = [], 0
    except _LineTooLong as exc:
        _commit_rows(collection, pending, report)  # every row before the long line
        raise BulkLoadFailed(
            f"line {exc.row} is longer than the limit of {limits.max_line_bytes} bytes per "
            "point (QUIVER_MAX_BULK_LINE_BYTES)",
            report.to_wire(),
        ) from None
    _commit_rows(collection, pending, report)


class _LineTooLong(Exception):
    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


def _lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[bytes]:
    """The body's lines, each read only up to the bound: past it the load stops before
    more of the line is read."""
    row = 0
    while line := stream.readline(max_line_bytes + 1):
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            raise _LineTooLong(row)
        yield line
        row += 1


def _parse_line(line: bytes, row: int, report: BulkReport) -> _Row | None:
    try:
        point = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        truncated = "" if line.endswith(b"\n") else " (the stream ended inside this line)"
        report.reject(row, f"not valid JSON{truncated}: {exc}")
        return None
    if not isinstance(point, dict) or "id" not in point or "vector" not in point:
        report.reject(row, 'a point is an object with "id" and "vector" (and "payload")')
        return None
    unknown = set(point) - _POINT_KEYS
    if unknown:
        report.reject(row, f"unknown fields {sorted(unknown)}")
        return None
    payload = point.get("payload") or {}
    if not isinstance(payload, dict):
        report.reject(row, "payload must be an object")
        return None
    try:
        point_id = parse_point_id(point["id"])
    except BadRequest as exc:
        report.reject(row, exc.message)
        return None
    return _Row(row, point_id, point["vector"], payload)


def _commit_rows(collection: CollectionHandle, rows: list[_Row], report: BulkReport) -> None:
    """One transaction for the chunk; if any vector is bad, find it (rows are checked
    one by one only then) and commit the others."""
    rows = _embedded(collection, rows, report)
    if not rows:
        return
    try:
        report.operation_id = collection.upsert(
            [r.point_id for r in rows], [r.vector for r in rows], [r.payload for r in rows]
        )
        report.accepted += len(rows)
        return
    except BadRequest:
        pass
    good = []
    for item in rows:
        try:
            collection.check_vectors([item.vector])
            check_payload(item.payload)
            orjson.dumps(item.payload)
            good.append(item)
        except BadRequest as exc:
            report.reject(item.row, exc.message)
        except TypeError as exc:
            report.reject(item.row, f"payload cannot be stored as JSON: {exc}")
    if good:
        try:
            report.operation_id = collection.upsert(
                [r.point_id for r in good], [r.vector for r in good], [r.payload for r in good]
            )
        except BadRequest as exc:
            raise BulkLoadFailed(exc.message, report.to_wire()) from None
        report.accepted += len(good)


def _embedded(collection: CollectionHandle, rows: list[_Row], report: BulkReport) -> list[_Row]:
    """The rows with their documents embedded (one batch for the chunk); a row whose
    document cannot be embedded is rejected alone, as a bad vector is."""
    names = vector_names(collection.config)
    try:
        embed_point_vectors([r.vector for r in rows], names)
        return rows
    except BadRequest:
        pass  # nothing was replaced: find the bad rows one by one
    good = []
    for item in rows:
        try:
            embed_point_vectors([item.vector], names)
            good.append(item)
        except BadRequest as exc:
            report.reject(item.row, exc.message)
    return good


# -- Arrow IPC -------------------------------------------------------------------------------


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
