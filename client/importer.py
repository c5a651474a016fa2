"""``quiver import``: stream a vector file into a collection, resumably.

The file is sent in requests of ``request_rows`` rows; each request is one streamed body
of several chunks (Arrow record batches, or NDJSON lines) to
``POST /collections/{name}/points/bulk``, produced while it is sent, so memory holds one
chunk. After every acknowledged request the state file is replaced atomically with the
rows done so far. A rerun with the same arguments starts after those rows, so an
interruption (Ctrl-C, a crash, a lost connection) costs at most one request's worth of
work; re-sending part of a request is harmless because an upsert by id is idempotent.

Transport errors and 5xx answers are retried ``retries`` times, from the acknowledged
row. A 4xx answer (the stream was refused) stops the import.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import pyarrow.ipc
from tqdm import tqdm

from client.errors import CliError, ConnectionFailed, ServerError, StateMismatch
from client.http import NDJSON, BulkReport, QuiverClient
from client.readers import UNNAMED, Chunk, NdjsonChunk, Reader

STATE_VERSION = 1
MAX_BATCH_VECTOR_BYTES = 64 * 1024 * 1024
"""Vector bytes per record batch: well under the server's bound on one Arrow message
(``QUIVER_MAX_BULK_BATCH_BYTES``, 256 MiB by default), leaving room for ids and payloads."""
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")


def default_state_path(path: Path) -> Path:
    return path.with_name(path.name + ".quiver-import.json")


@dataclass(frozen=True)
class ImportOptions:
    """One ``quiver import``; every field is a flag of the command."""

    collection: str
    state_path: Path
    request_rows: int = 100_000
    batch_rows: int = 10_000
    restart: bool = False
    create_distance: str | None = None
    retries: int = 3
    progress: bool | None = None
    """True: always draw the bar; None: only on a terminal; False: never."""
    max_errors: int = 20


@dataclass
class ImportState:
    """The state file: which import this is, and how far the server acknowledged it."""

    file: str
    file_size: int
    file_mtime_ns: int
    url: str
    collection: str
    reader: dict[str, Any]
    rows_total: int
    rows_done: int = 0
    accepted: int = 0
    rejected: int = 0
    complete: bool = False
    updated_at: str = ""
    version: int = STATE_VERSION

    @classmethod
    def for_import(cls, reader: Reader, url: str, collection: str) -> ImportState:
        stat = reader.path.stat()
        return cls(
            file=str(reader.path.resolve()),
            file_size=stat.st_size,
            file_mtime_ns=stat.st_mtime_ns,
            url=url,
            collection=collection,
            reader=reader.options(),
            rows_total=reader.rows,
        )

    @classmethod
    def load(cls, path: Path) -> ImportState | None:
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StateMismatch(
                f"cannot read the state file {path} ({exc}); pass --restart to start over"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise StateMismatch(
                f"{path} is not a version {STATE_VERSION} import state file; "
                "pass --restart to start over"
            )
        try:
            return cls(**raw)
        except TypeError as exc:
            raise StateMismatch(f"{path} is damaged ({exc}); pass --restart") from None

    def save(self, path: Path) -> None:
        """Write to a temporary file beside ``path``, fsync, then rename over it."""
        self.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
        data = orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)
        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def differences(self, other: ImportState) -> list[str]:
        """What makes ``other`` (this run) a different import than the saved one."""
        keys = ("file", "file_size", "file_mtime_ns", "url", "collection", "reader")
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]!r} then, {theirs[k]!r} now" for k in keys if mine[k] != theirs[k]]


@dataclass
class ImportResult:
    state: ImportState
    rows_sent: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.state.rejected else 0


class Importer:
    """Runs one import; `run` returns the final state (also written to the state file)."""

    def __init__(
        self, client: QuiverClient, reader: Reader, options: ImportOptions, log: TextIO
    ) -> None:
        if options.request_rows < 1 or options.batch_rows < 1:
            raise CliError("--request-rows and --batch-rows must be at least 1")
        self.client = client
        self.reader = reader
        self.options = options
        self._batch_rows = _batch_rows(options.batch_rows, reader.vector_sizes)
        self._log = log
        self._bar: Any = None
        self._errors_shown = 0
        self._hidden_errors = 0

    def run(self) -> ImportResult:
        state = self._starting_state()
        self._ensure_collection(state)
        result = ImportResult(state)
        if state.complete:
            self._say(
                f"{self.reader.path} was already imported into {state.collection!r} "
                f"(state file {self.options.state_path}); pass --restart to import "
                "it again"
            )
            return result
        if state.rows_done:
            self._say(
                f"resuming after row {state.rows_done:,} of {state.rows_total:,} "
                f"(state file {self.options.state_path})"
            )
        started = time.monotonic()
        with self._progress(state) as bar:
            self._bar = bar
            result.rows_sent = self._send_all(state)
        result.seconds = time.monotonic() - started
        state.complete = True
        state.save(self.options.state_path)
        return result

    # -- setup ----------------------------------------------------------------------------

    def _starting_state(self) -> ImportState:
        fresh = ImportState.for_import(self.reader, self.client.url, self.options.collection)
        saved = None if self.options.restart else ImportState.load(self.options.state_path)
        if saved is None:
            return fresh
        differences = saved.differences(fresh)
        if differences:
            raise StateMismatch(
                f"the state file {self.options.state_path} belongs to another import ("
                + "; ".join(differences)
                + "); pass --restart to start over, or --state to keep both"
            )
        return saved

    def _ensure_collection(self, state: ImportState) -> None:
        name = self.options.collection
        try:
            info = self.client.collection_info(name)
        except ServerError as exc:
            if exc.status_code != 404:
                raise
            info = None
        if info is None:
            if state.rows_done:
                raise StateMismatch(
                    f"the state file says {state.rows_done:,} rows were imported, but "
                    f"collection {name!r} does not exist any more; pass --restart"
                )
            self._create_collection(name)
            return
        _check_vectors(name, info, self.reader.vector_sizes)

    def _create_collection(self, name: str) -> None:
        distance = self.options.create_distance
        if distance is None:
            raise CliError(
                f"collection {name!r} does not exist; create it first, or pass "
                "--create-distance to create it from the file's vector size"
            )
        sizes = self.reader.vector_sizes
        if not sizes:
            raise CliError(
                f"cannot create {name!r}: no dense vector size can be read from "
                f"{self.reader.path}; create the collection first"
            )
        if list(sizes) == [UNNAMED]:
            vectors: dict[str, Any] = {"size": sizes[UNNAMED], "distance": distance}
        else:
            vectors = {n: {"size": s, "distance": distance} for n, s in sizes.items()}
        self.client.create_collection(name, {"vectors": vectors})
        self._say(f"created collection {name!r}: {orjson.dumps(vectors).decode()}")

    # -- sending --------------------------------------------------------------------------

    def _send_all(self, state: ImportState) -> int:
        """Send the rows after ``state.rows_done``; returns how many this run sent."""
        sent = 0
        source = _RowSource(self.reader, self._batch_rows, state.rows_done)
        failures = 0
        while state.rows_done < state.rows_total:
            rows = min(self.options.request_rows, state.rows_total - state.rows_done)
            try:
                report, labels = self._send_request(source, rows)
            except (ConnectionFailed, ServerError) as exc:
                if not _retryable(exc) or failures >= self.options.retries:
                    raise
                failures += 1
                self._before_retry(exc, failures, state.rows_done)
                source = _RowSource(self.reader, self._batch_rows, state.rows_done)
                continue
            failures = 0
            self._acknowledged(state, rows, report, labels)
            sent += rows
        if self._hidden_errors:
            self._note(f"{self._hidden_errors:,} more rejected rows not shown")
        return sent

    def _before_retry(self, exc: CliError, failures: int, rows_done: int) -> None:
        self._note(
            f"request failed ({exc.message}); retry {failures} of {self.options.retries} "
            f"from row {rows_done:,}"
        )
        time.sleep(min(2.0 ** (failures - 1), 10.0))
        self._bar.n = rows_done
        self._bar.refresh()

    def _acknowledged(
        self, state: ImportState, rows: int, report: BulkReport, labels: list[int]
    ) -> None:
        """Count a request the server answered, then record it in the state file."""
        if report.accepted + report.rejected != rows:
            raise CliError(
                f"the server acknowledged {report.accepted + report.rejected} rows of the "
                f"{rows} sent from row {state.rows_done:,}; stopping so that no row goes missing"
            )
        self._show_rejected(report, state.rows_done, labels)
        state.rows_done += rows
        state.accepted += report.accepted
        state.rejected += report.rejected
        state.save(self.options.state_path)
        self._bar.set_postfix(rejected=state.rejected, refresh=True)

    def _send_request(self, source: _RowSource, rows: int) -> tuple[BulkReport, list[int]]:
        """One bulk request of ``rows`` rows; returns the report and, for NDJSON, the file
        line of each row (the server numbers rows within the request)."""
        labels: list[int] = []

        def sent(chunk: Chunk) -> None:
            if isinstance(chunk, NdjsonChunk):
                labels.extend(chunk.line_numbers)
            self._bar.update(chunk.num_rows)

        chunks = source.take(rows)
        encode = _ndjson_body if self.reader.content_type == NDJSON else _arrow_body
        body = encode(chunks, sent)
        report = self.client.bulk(self.options.collection, body, self.reader.content_type)
        return report, labels

    def _show_rejected(self, report: BulkReport, first_row: int, lines: list[int]) -> None:
        """Print the server's reasons (it lists the first few per request), naming the file
        line (JSONL) or row (other formats); the rest are counted for the end."""
        shown = 0
        for row, reason in report.errors:
            if self._errors_shown >= self.options.max_errors:
                break
            where = f"line {lines[row]}" if row < len(lines) else f"row {first_row + row:,}"
            self._note(f"rejected {where}: {reason}")
            self._errors_shown += 1
            shown += 1
        self._hidden_errors += report.rejected - shown

    # -- output ---------------------------------------------------------------------------

    def _progress(self, state: ImportState) -> Any:
        show = self.options.progress
        return tqdm(
            total=state.rows_total,
            initial=state.rows_done,
            unit=" points",
            unit_scale=True,
            desc=f"import {state.collection}",
            file=self._log,
            dynamic_ncols=True,
            disable=None if show is None else not show,
            smoothing=0.1,
        )

    def _say(self, message: str) -> None:
        print(message, file=self._log, flush=True)

    def _note(self, message: str) -> None:
        """A line that does not tear the progress bar."""
        if self._bar is not None and not self._bar.disable:
            self._bar.write(message, file=self._log)
        else:
            self._say(message)


def _batch_rows(asked: int, vector_sizes: dict[str, int]) -> int:
    """``--batch-rows``, lowered for wide vectors so one batch stays a message the server
    takes (a 10,000-row batch of 8,192-d vectors would be 328 MB)."""
    row_bytes = 4 * sum(vector_sizes.values())
    return max(1, min(asked, MAX_BATCH_VECTOR_BYTES // max(row_bytes, 1)))


class _RowSource:
    """The reader's chunks from ``start``, handed out in requests of exactly N rows
    (a chunk that crosses a request boundary is split)."""

    def __init__(self, reader: Reader, batch_rows: int, start: int) -> None:
        self._chunks = reader.batches(batch_rows, skip=start)
        self._left: Chunk | None = None

    def take(self, rows: int) -> Iterator[Chunk]:
        while rows > 0:
            chunk = self._left if self._left is not None else next(self._chunks, None)
            self._left = None
            if chunk is None:
                return
            if chunk.num_rows > rows:
                self._left = chunk.slice(rows, chunk.num_rows - rows)
                chunk = chunk.slice(0, rows)
            rows -= chunk.num_rows
            yield chunk


def _arrow_body(chunks: Iterator[Any], sent: Callable[[Chunk], None]) -> Iterator[bytes]:
    """An Arrow IPC stream, produced one record batch at a time."""
    sink = io.BytesIO()
    writer = None
    for batch in chunks:
        if writer is None:
            writer = pyarrow.ipc.new_stream(sink, batch.schema)
        writer.write_batch(batch)
        yield _drain(sink)
        sent(batch)
    if writer is not None:
        writer.close()
        yield _drain(sink)


def _ndjson_body(chunks: Iterator[Any], sent: Callable[[Chunk], None]) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"".join(chunk.lines)
        sent(chunk)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _retryable(exc: CliError) -> bool:
    return isinstance(exc, ConnectionFailed) or (
        isinstance(exc, ServerError) and exc.status_code >= 500
    )


def _check_vectors(name: str, info: dict[str, Any], sizes: dict[str, int]) -> None:
    """Refuse early a file whose vectors the collection cannot take (every row would be
    rejected); vectors the wire shape does not describe are left to the server."""
    vectors = info.get("config", {}).get("params", {}).get("vectors")
    if not isinstance(vectors, dict):
        return
    configured = {UNNAMED: vectors} if "size" in vectors else vectors
    for vector, size in sizes.items():
        params = configured.get(vector)
        label = f"vector {vector!r}" if vector else "the unnamed vector"
        if params is None:
            have = sorted(configured) if UNNAMED not in configured else ["(unnamed)"]
            raise CliError(
                f"collection {name!r} has no {label} (it has {have}); "
                "name one with --vector-name or --vector-column"
            )
        if params.get("size") != size:
            raise CliError(
                f"collection {name!r} takes {label} of size {params.get('size')}, "
                f"the file's vectors have {size}"
            )


def summary(result: ImportResult) -> str:
    state = result.state
    rate = result.rows_sent / result.seconds if result.seconds > 0 else 0.0
    return (
        f"{state.collection}: {state.rows_done:,} of {state.rows_total:,} rows done, "
        f"{state.accepted:,} accepted, {state.rejected:,} rejected; this run sent "
        f"{result.rows_sent:,} rows in {result.seconds:.1f} s ({rate:,.0f} points/s)"
    )
