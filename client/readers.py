"""Readers that turn a vector file into the chunks of a bulk load, at most N rows each.

Every reader knows its row count and its vectors' sizes up front (the importer needs
both for the progress bar, the resume check and ``--create-distance``) and can start at
any row (``batches(rows, skip=k)``), which is how an interrupted import resumes.

* ``.npy``: a 2-D numeric matrix, memory-mapped; row i becomes id ``i + id_offset``.
* ``.fvecs``: little-endian records ``int32 dim, dim x float32``, memory-mapped; ids as .npy.
* ``.parquet``: ``iter_batches`` over the columns used; the ``id`` column (default "id",
  else row index + offset), the vector column (default "vector", else ``vector.<name>``
  columns), and every other column a payload field (a struct ``payload`` column is spread
  into fields, a string one is JSON objects).
* ``.jsonl`` / ``.ndjson``: one Qdrant point ``{"id", "vector", "payload"}`` per line,
  sent verbatim as NDJSON, so every vector shape the server takes (named subsets,
  multi-vectors) passes through and no number is parsed twice.

Arrow chunks have the bulk endpoint's columns: ``id`` (int64 or string), ``vector`` or
``vector.<name>`` (``fixed_size_list<float32>[D]``; a sparse vector's column, a struct of
``indices`` and ``values`` lists, is passed on as it is), then payload columns.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from client.errors import FileFormatError
from client.http import ARROW_STREAM, NDJSON

FORMATS = {
    ".npy": "npy",
    ".fvecs": "fvecs",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
UNNAMED = ""
"""The key of the unnamed vector in ``vector_sizes``."""


@dataclass(frozen=True)
class NdjsonChunk:
    """Lines of a JSONL file, each ending in a newline; ``line_numbers`` are 1-based."""

    lines: list[bytes]
    line_numbers: list[int]

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def slice(self, start: int, length: int) -> NdjsonChunk:
        end = start + length
        return NdjsonChunk(self.lines[start:end], self.line_numbers[start:end])


Chunk = Any
"""A ``pyarrow.RecordBatch`` or an `NdjsonChunk`; both have ``num_rows`` and ``slice``."""


class Reader(Protocol):
    path: Path
    content_type: str
    rows: int
    vector_sizes: dict[str, int]

    def batches(self, batch_rows: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of at most ``batch_rows`` rows, starting after the first ``skip`` rows."""
        ...

    def options(self) -> dict[str, Any]:
        """What decides which point each row becomes (kept in the resume state)."""
        ...


@dataclass(frozen=True)
class ReadOptions:
    """How rows become points; each field is a ``quiver import`` flag."""

    id_offset: int = 0
    id_column: str | None = None
    vector_column: str | None = None
    vector_name: str | None = None
    payload_columns: Sequence[str] | None = None


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        return given
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMATS))
        raise FileFormatError(
            path,
            f"unknown file type {path.suffix!r}; use one of {known} "
            "or name the format with --format",
        )
    return found


def open_reader(path: Path, options: ReadOptions, fmt: str | None = None) -> Reader:
    """The reader for ``path`` (format from ``fmt`` or the file name)."""
    if not path.is_file():
        raise FileFormatError(path, "no such file")
    kind = detect_format(path, fmt)
    if kind == "npy":
        return MatrixReader.from_npy(path, options)
    if kind == "fvecs":
        return MatrixReader.from_fvecs(path, options)
    if kind == "parquet":
        return ParquetReader(path, options)
    return JsonlReader(path)


def _check_batch_rows(batch_rows: int, skip: int) -> None:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if skip < 0:
        raise ValueError(f"skip must not be negative, got {skip}")


def _vector_array(matrix: np.ndarray) -> pa.Array:
    flat = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), matrix.shape[1])


def _vector_column_name(vector_name: str | None) -> str:
    return f"vector.{vector_name}" if vector_name else "vector"


# -- .npy and .fvecs: a memory-mapped matrix --------------------------------------------------


class MatrixReader:
    """A ``(rows, dim)`` matrix on disk; ids are row numbers plus ``id_offset``."""

    content_type = ARROW_STREAM

    def __init__(self, path: Path, matrix: np.ndarray, options: ReadOptions, fmt: str) -> None:
        if options.id_offset < 0:
            raise FileFormatError(path, f"--id-offset must not be negative ({options.id_offset})")
        self.path = path
        self.format = fmt
        self._matrix = matrix
        self._options = options
        self.rows = int(matrix.shape[0])
        self.dim = int(matrix.shape[1]) - (1 if fmt == "fvecs" else 0)
        self.vector_sizes = {options.vector_name or UNNAMED: self.dim}

    @classmethod
    def from_npy(cls, path: Path, options: ReadOptions) -> MatrixReader:
        try:
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise FileFormatError(path, f"not a readable .npy file ({exc})") from None
        if not isinstance(matrix, np.ndarray):
            raise FileFormatError(
                path, "holds several arrays (.npz?); save one matrix with np.save"
            )
        if matrix.ndim != 2 or matrix.shape[1] < 1:
            raise FileFormatError(
                path, f"expected a 2-D matrix (rows x dimension), got shape {matrix.shape}"
            )
        if not (
            np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)
        ):
            raise FileFormatError(path, f"expected a float matrix, got dtype {matrix.dtype}")
        return cls(path, matrix, options, "npy")

    @classmethod
    def from_fvecs(cls, path: Path, options: ReadOptions) -> MatrixReader:
        size = path.stat().st_size
        if size == 0:
            raise FileFormatError(path, "empty file: an .fvecs file holds at least one vector")
        if size < 4:
            raise FileFormatError(path, f"too short for .fvecs ({size} bytes)")
        dim = int(np.fromfile(path, dtype="<i4", count=1)[0])
        if not 0 < dim <= 1 << 20:
            raise FileFormatError(path, f"not .fvecs: the first record's dimension is {dim}")
        record = 4 * (dim + 1)
        if size % record:
            raise FileFormatError(
                path,
                f"size {size} is not a multiple of the record size "
                f"{record} (4 + 4 x {dim} bytes): truncated, or not "
                ".fvecs",
            )
        records = np.memmap(path, dtype="<i4", mode="r", shape=(size // record, dim + 1))
        return cls(path, records, options, "fvecs")

    def options(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "id_offset": self._options.id_offset,
            "vector_name": self._options.vector_name,
        }

    def batches(self, batch_rows: int, skip: int = 0) -> Iterator[pa.RecordBatch]:
        _check_batch_rows(batch_rows, skip)
        column = _vector_column_name(self._options.vector_name)
        for start in range(skip, self.rows, batch_rows):
            stop = min(start + batch_rows, self.rows)
            ids = np.arange(start, stop, dtype=np.int64) + self._options.id_offset
            vectors = self._vectors(start, stop)
            yield pa.record_batch([pa.array(ids), _vector_array(vectors)], names=["id", column])

    def _vectors(self, start: int, stop: int) -> np.ndarray:
        block = self._matrix[start:stop]
        if self.format != "fvecs":
            return block
        bad = np.flatnonzero(block[:, 0] != self.dim)
        if len(bad):
            row = start + int(bad[0])
            raise FileFormatError(
                self.path,
                f"record {row} says dimension {block[bad[0], 0]}, "
                f"the file's first record says {self.dim}",
            )
        return block[:, 1:].view("<f4")


# -- .parquet ---------------------------------------------------------------------------------


class ParquetReader:
    """Reads only the columns it sends; a row group is the unit it seeks to on resume."""

    content_type = ARROW_STREAM

    def __init__(self, path: Path, options: ReadOptions) -> None:
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise FileFormatError(path, f"not a readable Parquet file ({exc})") from None
        self.path = path
        self._options = options
        schema = self._file.schema_arrow
        self.rows = int(self._file.metadata.num_rows)
        self._id_column = self._pick_id_column(schema)
        self._vectors = self._pick_vector_columns(schema)
        self._payload = self._pick_payload_columns(schema)
        self.vector_sizes = {
            name: self._dimension(column)
            for column, name in self._vectors.items()
            if not _is_sparse(schema.field(column).type)
        }

    def options(self) -> dict[str, Any]:
        return {
            "format": "parquet",
            "id_column": self._id_column,
            "id_offset": self._options.id_offset,
            "vectors": self._vectors,
            "payload_columns": self._payload,
        }

    def _pick_id_column(self, schema: pa.Schema) -> str | None:
        wanted = self._options.id_column
        if wanted is not None:
            if wanted not in schema.names:
                raise FileFormatError(
                    self.path, f"no id column {wanted!r}; columns: {schema.names}"
                )
        elif "id" in schema.names:
            wanted = "id"
        if wanted is None:
            return None
        kind = schema.field(wanted).type
        if not (
            pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
        ):
            raise FileFormatError(
                self.path, f"id column {wanted!r} must hold integers or UUID strings, not {kind}"
            )
        return wanted

    def _pick_vector_columns(self, schema: pa.Schema) -> dict[str, str]:
        """Column -> vector name (``UNNAMED`` for the collection's single vector)."""
        wanted = self._options.vector_column
        if wanted is None and "vector" not in schema.names:
            named = {c: c.partition(".")[2] for c in schema.names if c.startswith("vector.")}
            if named:
                return named
        wanted = wanted or "vector"
        if wanted not in schema.names:
            raise FileFormatError(
                self.path,
                f"no vector column {wanted!r} (nor vector.<name> columns); columns: {schema.names}",
            )
        kind = schema.field(wanted).type
        if not _is_list(kind) or not _is_number(kind.value_type):
            raise FileFormatError(
                self.path, f"vector column {wanted!r} must be a list of numbers, not {kind}"
            )
        return {wanted: self._options.vector_name or UNNAMED}

    def _pick_payload_columns(self, schema: pa.Schema) -> list[str]:
        taken = {self._id_column, *self._vectors}
        if self._options.payload_columns is None:
            picked = [c for c in schema.names if c not in taken]
        else:
            missing = [c for c in self._options.payload_columns if c not in schema.names]
            if missing:
                raise FileFormatError(
                    self.path, f"no payload columns {missing}; columns: {schema.names}"
                )
            picked = [c for c in self._options.payload_columns if c not in taken]
        for column in picked:
            kind = schema.field(column).type
            if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
                raise FileFormatError(
                    self.path,
                    f"column {column!r} holds bytes, which a JSON "
                    "payload cannot; leave it out with "
                    "--payload-columns",
                )
        return picked

    def _dimension(self, column: str) -> int:
        kind = self._file.schema_arrow.field(column).type
        if pa.types.is_fixed_size_list(kind):
            return int(kind.list_size)
        for batch in self._file.iter_batches(batch_size=1024, columns=[column]):
            lengths = pc.list_value_length(batch.column(0)).drop_null()
            if len(lengths):
                return int(lengths[0].as_py())
        raise FileFormatError(self.path, f"vector column {column!r} holds no vector")

    def batches(self, batch_rows: int, skip: int = 0) -> Iterator[pa.RecordBatch]:
        _check_batch_rows(batch_rows, skip)
        if skip >= self.rows:
            return
        first_group, row = 0, 0
        metadata = self._file.metadata
        while row + metadata.row_group(first_group).num_rows <= skip:
            row += metadata.row_group(first_group).num_rows
            first_group += 1
        columns = [c for c in (self._id_column, *self._vectors, *self._payload) if c is not None]
        groups = list(range(first_group, metadata.num_row_groups))
        pending = skip - row  # rows of the first group that were sent before
        for raw in self._file.iter_batches(
            batch_size=batch_rows, row_groups=groups, columns=columns
        ):
            if pending >= raw.num_rows:
                pending -= raw.num_rows
                row += raw.num_rows
                continue
            raw = raw.slice(pending)
            row += pending
            pending = 0
            yield self._convert(raw, row)
            row += raw.num_rows

    def _convert(self, raw: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
        names, arrays = ["id"], [self._ids(raw, first_row)]
        for column, name in self._vectors.items():
            names.append(_vector_column_name(name))
            if name in self.vector_sizes:
                arrays.append(self._fixed_vectors(raw.column(column), column, first_row))
            else:  # sparse: the server checks it
                arrays.append(raw.column(column))
        for column in self._payload:
            for name, array in _payload_fields(column, raw.column(column), self.path):
                names.append(name)
                arrays.append(array)
        return pa.record_batch(arrays, names=names)

    def _ids(self, raw: pa.RecordBatch, first_row: int) -> pa.Array:
        if self._id_column is None:
            start = first_row + self._options.id_offset
            return pa.array(np.arange(start, start + raw.num_rows, dtype=np.int64))
        ids = raw.column(self._id_column)
        if pa.types.is_integer(ids.type) and ids.type != pa.uint64():
            return ids.cast(pa.int64())
        if pa.types.is_large_string(ids.type):
            return ids.cast(pa.string())
        return ids

    def _fixed_vectors(self, column: pa.Array, label: str, first_row: int) -> pa.Array:
        """``fixed_size_list<float32>[D]`` whatever the stored list type; a null stays
        null (the server rejects that row), a vector of another length stops the import."""
        size = self.vector_sizes[self._vectors[label]]
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        valid = ~np.isnan(lengths.astype(np.float64))
        wrong = np.flatnonzero(valid & (lengths != size))
        if len(wrong):
            row = first_row + int(wrong[0])
            raise FileFormatError(
                self.path,
                f"row {row}: column {label!r} holds a vector of "
                f"{int(lengths[wrong[0]])} numbers; the file's "
                f"vectors have {size}",
            )
        if pa.types.is_fixed_size_list(column.type):
            return column.cast(pa.list_(pa.float32(), size))
        # flatten() skips null lists, so the valid rows' values are placed into a matrix
        matrix = np.zeros((len(column), size), dtype=np.float32)
        values = column.flatten().to_numpy(zero_copy_only=False)
        matrix[valid] = np.asarray(values, dtype=np.float32).reshape(-1, size)
        mask = None if valid.all() else pa.array(~valid)
        return pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.reshape(-1), type=pa.float32()), size, mask=mask
        )


def _is_sparse(kind: pa.DataType) -> bool:
    """A struct of ``indices`` and ``values`` lists: a sparse vector column."""
    if not pa.types.is_struct(kind):
        return False
    return {kind.field(i).name for i in range(kind.num_fields)} == {"indices", "values"}


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind))


def _payload_fields(name: str, array: pa.Array, path: Path) -> Iterator[tuple[str, pa.Array]]:
    """The wire columns for one Parquet payload column: a struct ``payload`` is spread
    into its fields, a string ``payload`` is JSON objects, others become one field."""
    if name == "payload":
        if pa.types.is_struct(array.type):
            for index in range(array.type.num_fields):
                field = array.type.field(index)
                yield field.name, _json_ready(pc.struct_field(array, [index]))
            return
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            yield "payload", array.cast(pa.string())
            return
        raise FileFormatError(
            path, f"column 'payload' must hold JSON object strings or a struct, not {array.type}"
        )
    yield name, _json_ready(array)


def _json_ready(array: pa.Array) -> pa.Array:
    """Types without a JSON form become the values a JSON payload would hold: a
    dictionary its values, a timestamp or date an ISO 8601 string, a decimal a float."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _json_ready(array.cast(kind.value_type))
    if pa.types.is_timestamp(kind) and kind.tz:
        utc = array.cast(pa.timestamp(kind.unit, "UTC"))
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_timestamp(kind):
        return pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
    if pa.types.is_date(kind):
        return pc.strftime(array, format="%Y-%m-%d")
    if pa.types.is_decimal(kind):
        return array.cast(pa.float64())
    if pa.types.is_large_string(kind):
        return array.cast(pa.string())
    return array


# -- .jsonl / .ndjson: sent as NDJSON ---------------------------------------------------------


class JsonlReader:
    """Lines are sent verbatim (blank lines dropped); only the first is parsed here, for
    the vector sizes. The server validates the rest and reports bad lines, which the
    importer names by their line number in this file."""

    content_type = NDJSON

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        first: tuple[int, bytes] | None = None
        with path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if line.strip():
                    self.rows += 1
                    if first is None:
                        first = (number, line)
        self.vector_sizes = self._sizes(*first) if first else {}

    def options(self) -> dict[str, Any]:
        return {"format": "jsonl"}

    def _sizes(self, number: int, line: bytes) -> dict[str, int]:
        try:
            point = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise FileFormatError(self.path, f"line {number} is not JSON ({exc})") from None
        if not isinstance(point, dict) or "vector" not in point:
            raise FileFormatError(
                self.path,
                f"line {number} is not a point: expected an object "
                'with "id", "vector" and "payload"',
            )
        vector = point["vector"]
        vectors = vector if isinstance(vector, dict) else {UNNAMED: vector}
        # multi-vectors and sparse vectors have no single size: leave them to the server
        return {name: len(v) for name, v in vectors.items() if _is_dense(v)}

    def batches(self, batch_rows: int, skip: int = 0) -> Iterator[NdjsonChunk]:
        _check_batch_rows(batch_rows, skip)
        lines: list[bytes] = []
        numbers: list[int] = []
        seen = 0
        with self.path.open("rb", buffering=io.DEFAULT_BUFFER_SIZE * 16) as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                seen += 1
                if seen <= skip:
                    continue
                lines.append(line if line.endswith(b"\n") else line + b"\n")
                numbers.append(number)
                if len(lines) == batch_rows:
                    yield NdjsonChunk(lines, numbers)
                    lines, numbers = [], []
        if lines:
            yield NdjsonChunk(lines, numbers)


def _is_dense(vector: Any) -> bool:
    return isinstance(vector, list) and all(isinstance(x, int | float) for x in vector)
