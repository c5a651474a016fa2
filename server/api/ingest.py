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
  parsed from text, so this is the fast path (bench/bench_bulk.py),
  decoded in ``ingest_arrow.py``.

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

import orjson

from server.api.inference import embed_point_vectors, vector_names
from server.engine.payload import check_payload
from server.engine.point_ids import PointId, parse_point_id
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
            from server.api.ingest_arrow import load_arrow  # pyarrow loads on first use

            load_arrow(collection, body, limits, report)
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
