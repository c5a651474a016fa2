"""Bulk loads: a streamed body of points, consumed and committed in bounded chunks.

Two formats (``POST /collections/{name}/points/bulk``, chosen by Content-Type):

* NDJSON (``application/x-ndjson``): one point per line, ``{"id", "vector", "payload"}``
  exactly as in Qdrant's upsert; any vector shape the collection takes (named, multi).
* Arrow IPC stream (``application/vnd.apache.arrow.stream``): record batches with an
  ``id`` column (integers or UUID strings), ``vector`` (fixed-size list of float32; or
  ``vector.<name>`` per named dense vector), an optional ``payload`` column of JSON
  object strings, and any other column as a payload field of its name. Vectors arrive
  as one contiguous buffer per batch and reach the collection as a matrix: no number is
  parsed from text, so this is the fast path (bench/bench_bulk.py).

The body is read through a small file-like adapter over the request's chunks, so at
most one chunk of ``chunk_rows`` points is held at a time. Each chunk is validated and
committed as one durable transaction. A bad row (unparseable, bad id, wrong dimension,
NaN) is rejected alone and reported with its row number (0-based, counting every line
or Arrow row of the request); the rest of its chunk is committed. A stream that breaks
off (truncated, not Arrow, wrong columns) stops the load: the chunks before it stay
committed and the report says how many rows that was.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc

from server.engine.config import DEFAULT_VECTOR
from server.engine.payload import check_payload
from server.engine.point_ids import PointId, parse_point_id
from server.errors import BadRequest, BulkLoadFailed, UnsupportedMediaType

if TYPE_CHECKING:
    from server.cluster.shards import AnyCollection

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


def format_of(content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind in NDJSON_TYPES:
        return "ndjson"
    if kind in ARROW_TYPES:
        return "arrow"
    raise UnsupportedMediaType(kind or "(none)", [*NDJSON_TYPES[:1], *ARROW_TYPES])


def load(collection: AnyCollection, kind: str, body: ChunkReader, chunk_rows: int) -> BulkReport:
    """Consume the whole body; indexing waits until the end (``Collection.bulk_loading``)."""
    report = BulkReport()
    with collection.bulk_loading():
        stream: Any = io.BufferedReader(body, buffer_size=1 << 20)
        if kind == "ndjson":
            _load_ndjson(collection, stream, chunk_rows, report)
        else:
            _load_arrow(collection, stream, chunk_rows, report)
    return report


# -- NDJSON ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    row: int
    point_id: PointId
    vector: Any
    payload: dict[str, Any]


def _load_ndjson(
    collection: AnyCollection, stream: Iterator[bytes], chunk_rows: int, report: BulkReport
) -> None:
    pending: list[_Row] = []
    for row, line in enumerate(stream):
        if not line.strip():
            continue
        parsed = _parse_line(line, row, report)
        if parsed is not None:
            pending.append(parsed)
        if len(pending) >= chunk_rows:
            _commit_rows(collection, pending, report)
            pending = []
    _commit_rows(collection, pending, report)


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


def _commit_rows(collection: AnyCollection, rows: list[_Row], report: BulkReport) -> None:
    """One transaction for the chunk; if any vector is bad, find it (rows are checked
    one by one only then) and commit the others."""
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


# -- Arrow IPC -------------------------------------------------------------------------------


def _load_arrow(
    collection: AnyCollection, stream: Any, chunk_rows: int, report: BulkReport
) -> None:
    try:
        reader = pyarrow.ipc.open_stream(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BulkLoadFailed(
            f"the body is not an Arrow IPC stream ({exc})", report.to_wire()
        ) from None
    vector_columns = _vector_columns(reader.schema, collection, report)
    row = 0
    for batch in _batches(reader, report):
        for start in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(start, chunk_rows)
            _commit_arrow(collection, part, vector_columns, row, report)
            row += part.num_rows


def _batches(reader: Any, report: BulkReport) -> Iterator[pa.RecordBatch]:
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


def _vector_columns(
    schema: pa.Schema, collection: AnyCollection, report: BulkReport
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
        params = config.vectors.get(name)
        if params is None or params.is_multi or (name == DEFAULT_VECTOR and config.named_vectors):
            raise BulkLoadFailed(
                f"column {column!r} names no dense vector of this collection "
                f"(it has {sorted(config.vectors)}; multi-vectors load as NDJSON)",
                report.to_wire(),
            )
    return columns


def _commit_arrow(
    collection: AnyCollection,
    batch: pa.RecordBatch,
    vector_columns: dict[str, str],
    first_row: int,
    report: BulkReport,
) -> None:
    n = batch.num_rows
    ok = np.ones(n, dtype=bool)
    ids = _arrow_ids(batch.column("id"), first_row, ok, report)
    matrices: dict[str, np.ndarray] = {}
    for column, name in vector_columns.items():
        size = collection.config.vectors[name].size
        matrices[name] = _arrow_matrix(batch.column(column), size, column, first_row, ok, report)
    payloads = _arrow_payloads(batch, vector_columns, first_row, ok, report)
    report.errors.sort(key=lambda error: int(error["row"]))  # checks ran column by column
    keep = np.flatnonzero(ok)
    if len(keep) == 0:
        return
    kept_ids = [ids[i] for i in keep.tolist()]
    kept_payloads = [payloads[i] for i in keep.tolist()]
    kept = {name: m[keep] if len(keep) < n else m for name, m in matrices.items()}
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
