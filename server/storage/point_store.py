"""The system of record for one collection: a SQLite database in WAL mode.

Durability policy (also in docs/adr/0001-storage.md): every write request is
one SQLite transaction whose WAL frames are fsynced before the server answers:
with group commit (the default, docs/adr/0016-group-commit.md) one fsync shared by
the concurrent writers (``group_commit.GroupSync``), without it ``synchronous=FULL``.
A request that was answered survives ``kill -9`` and power loss; a batch is
all-or-nothing because it is one transaction. The in-memory search structures are
rebuilt from this file on start, so they never need to be durable themselves.

Layout (``FORMAT_VERSION`` 1)::

    meta(key PRIMARY KEY, value)         format_version, config (JSON), last_op_id
    points(pid PRIMARY KEY, version, payload)    payload: JSON bytes
    vectors(pid, name, data)             data: little-endian float32 bytes
    jobs(id PRIMARY KEY, body)           background job records (JSON)
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from server.errors import StorageError, reason
from server.storage.group_commit import GroupSync

FORMAT_VERSION = 1
DB_FILE = "points.sqlite"
ROLLBACK_JOURNAL = b"\x01\x01"
"""Bytes 18-19 of an SQLite file's header, its write and read format versions: 1 for a
rollback journal, 2 for WAL (sqlite.org/fileformat.html)."""

_group_commit = True
_CHUNK_BYTES = 1 << 27
"""Vector bytes per aggregate at open: well under SQLite's 1 GB string limit."""


def wrong_width(name: str, width: int) -> ValueError:
    """A stored vector ``name`` of another byte ``width`` than its column's: a damaged
    store, found when the columns load at open or when an install reads vectors later."""
    return ValueError(f"a stored vector {name!r} is not {width // 4} float32 values")


def set_group_commit(enabled: bool) -> None:
    """Choose, for stores opened from now on, between one shared fsync per group of
    concurrent writes (True) and SQLite's fsync per commit (``QUIVER_GROUP_COMMIT``)."""
    global _group_commit
    _group_commit = enabled


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    pid TEXT PRIMARY KEY, version INTEGER NOT NULL, payload BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS training_queries (
    name TEXT NOT NULL, source TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vectors (
    pid TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (pid, name)
) WITHOUT ROWID;
"""


@dataclass(slots=True)
class PointRows:
    """Points to write, column by column (no object per point: bulk loads write
    hundreds of thousands). ``vectors`` holds (pid, name, float32 bytes) rows;
    ``replaced`` the pids that may exist already, whose old vector rows are removed
    first (a load of new ids does no deletes)."""

    pids: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    vectors: list[tuple[str, str, bytes]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WriteBatch:
    """Everything one request changes; committed as a single transaction."""

    put_points: PointRows = field(default_factory=PointRows)
    put_payloads: list[tuple[str, bytes]] = field(default_factory=list)
    delete_pids: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.put_points.pids or self.put_payloads or self.delete_pids)


@dataclass(frozen=True, slots=True)
class VectorColumn:
    """The stored vectors of one name: ``pids`` the points that hold one, in store
    order; ``data`` their bytes, concatenated into one string when the rows have a
    fixed width (dense), else one bytes object per point."""

    pids: list[str]
    data: bytes | list[bytes]


@dataclass(frozen=True, slots=True)
class StoredColumns:
    """Every stored point as columns, row ``i`` of each the same point (a restart
    reads hundreds of thousands: no tuple per point). ``payloads`` parsed;
    ``vectors`` each name's column."""

    pids: list[str]
    versions: list[int]
    payloads: list[dict[str, Any]]
    vectors: dict[str, VectorColumn]


class PointStore:
    """Single-writer access to one collection's database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._sync = GroupSync(path / DB_FILE) if _group_commit else None
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path / DB_FILE, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'NORMAL' if self._sync else 'FULL'}")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot open the storage of collection `{self.path.name}`: {reason(exc)}"
            ) from exc
        return db

    @classmethod
    def create(cls, path: Path, config: dict[str, Any]) -> PointStore:
        store = cls(path)
        with store._transaction() as db:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("config", orjson.dumps(config).decode()),
                    ("last_op_id", "0"),
                ],
            )
        return store

    @classmethod
    def open(cls, path: Path) -> PointStore:
        store = cls(path)
        version = store._meta("format_version")
        if version != str(FORMAT_VERSION):
            store.close()
            raise StorageError(
                f"collection `{path.name}`: unknown storage format version {version!r}, "
                f"this Quiver reads version {FORMAT_VERSION}"
            )
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def shrink_cache(self) -> None:
        """Hand back the pages SQLite cached for this connection (up to ~2 MB): a reader
        worker's after loading its view, which read every row once (ADR 0013)."""
        with self._lock:
            self._db.execute("PRAGMA shrink_memory")

    def reopen(self, path: Path) -> None:
        """Connect again, to the database in folder ``path``, after ``close`` and a move
        of the folder (its files must not be renamed under an open connection: SQLite
        removes its WAL by name on close). Every write was synced before ``close``, so
        a fresh ``GroupSync`` starts with nothing pending."""
        with self._lock:
            self.path = path
            self._sync = GroupSync(path / DB_FILE) if self._sync is not None else None
            self._db = self._connect()

    def config(self) -> dict[str, Any]:
        raw = self._meta("config")
        if raw is None:
            raise StorageError(f"collection `{self.path.name}`: its config is missing")
        config: dict[str, Any] = orjson.loads(raw)
        return config

    def last_op_id(self) -> int:
        return int(self._meta("last_op_id") or 0)

    def write_config(self, config: dict[str, Any], drop_vectors: Sequence[str] = ()) -> int:
        """Replace the stored config; a numbered operation like any other write. The
        vectors of names in ``drop_vectors`` (removed from the config) go in the same
        transaction."""
        with self._transaction() as db:
            op_id = self._next_op_id(db)
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'config'", (orjson.dumps(config).decode(),)
            )
            db.executemany("DELETE FROM vectors WHERE name = ?", [(n,) for n in drop_vectors])
        return op_id

    def commit(self, batch: WriteBatch, *, durable: bool = True) -> int:
        """Apply ``batch`` atomically; return its operation id. It is durable on
        return, or with ``durable=False`` once ``sync()`` returns: a writer holding
        its collection's lock defers the fsync until it has released it."""
        with self._transaction(durable) as db:
            op_id = self._next_op_id(db)
            self._delete(db, batch.delete_pids)
            self._put_points(db, batch.put_points, op_id)
            db.executemany(
                "UPDATE points SET payload = ?, version = ? WHERE pid = ?",
                [(payload, op_id, pid) for pid, payload in batch.put_payloads],
            )
        return op_id

    def sync(self) -> None:
        """Wait until every write committed so far is on disk (one fsync shared with
        the writers waiting at the same time; nothing to do without group commit)."""
        if self._sync is not None:
            self._sync.wait()

    @property
    def fsyncs(self) -> int:
        """Group-commit fsyncs so far (0 without group commit)."""
        return 0 if self._sync is None else self._sync.fsyncs

    def load_columns(
        self, names: Sequence[str], widths: Mapping[str, int] | None = None
    ) -> StoredColumns:
        """Every stored point with its vectors under ``names``. Each column comes
        from aggregates over a scan in key order (the ids as a JSON array, the payloads
        as one JSON array, fixed-width vectors concatenated), so SQLite hands Python a
        few strings, not a tuple per point (a restart reads every point; row by row
        that was most of opening). Aggregates of one query consume the same rows in
        the same order, which keeps the columns aligned. ``widths``: the byte width of
        a dense name's rows; a stored row of another width is a damaged store
        (ValueError)."""
        widths = widths or {}
        aggregates = (
            "json_group_array(pid), json_group_array(version), "
            "CAST('[' || group_concat(payload, ',') || ']' AS BLOB)"
        )
        columns = StoredColumns([], [], [], {})
        with self._lock:
            self._db.execute("BEGIN")  # one read snapshot for every column
            try:
                for pids, versions, payloads in self._chunks(aggregates, "points", (), 1 << 18):
                    columns.pids.extend(orjson.loads(pids))
                    columns.versions.extend(orjson.loads(versions))
                    columns.payloads.extend(orjson.loads(payloads))
                for name in names:
                    columns.vectors[name] = self._vector_column(name, widths.get(name))
            finally:
                self._db.execute("COMMIT")
        return columns

    def _vector_column(self, name: str, width: int | None) -> VectorColumn:
        if width is None:
            cursor = self._db.execute("SELECT pid, data FROM vectors WHERE name = ?", (name,))
            found: list[Any] = [list(c) for c in zip(*cursor.fetchall(), strict=True)] or [[], []]
            return VectorColumn(found[0], found[1])
        aggregates = (
            "json_group_array(pid), CAST(group_concat(data, x'') AS BLOB), "
            f"total(length(data) != {int(width)})"
        )
        pids: list[str] = []
        parts: list[bytes] = []
        rows = max(1, _CHUNK_BYTES // max(1, width))
        for chunk_pids, data, wrong in self._chunks(aggregates, "vectors", (name,), rows):
            if wrong:
                raise wrong_width(name, width)
            pids.extend(orjson.loads(chunk_pids))
            parts.append(data)
        return VectorColumn(pids, parts[0] if len(parts) == 1 else b"".join(parts))

    def _chunks(
        self, aggregates: str, table: str, names: tuple[str, ...], rows: int
    ) -> Iterator[tuple[Any, ...]]:
        """``aggregates`` over ``table`` (the rows of vector name ``names[0]`` when
        given), ``rows`` rows at a time in key order, so no aggregate outgrows SQLite's
        string limit (1 GB); a chunk that still does (large payloads) is halved."""
        where = "name = ? AND pid > ?" if names else "pid > ?"
        source = f"SELECT * FROM {table} WHERE {where} ORDER BY pid LIMIT ?"
        query = f"SELECT max(pid), count(*), {aggregates} FROM ({source})"
        last = ""
        while True:
            try:
                found = self._db.execute(query, (*names, last, rows)).fetchone()
            except sqlite3.DataError:
                if rows == 1:
                    raise
                rows //= 2
                continue
            if not found[1]:
                return
            yield tuple(found[2:])
            if found[1] < rows:
                return
            last = found[0]

    def vector_pids(self, name: str) -> list[str]:
        """The ids of the points holding a vector under ``name``, in store order, without
        their data (an install's open reads only the vectors it needs: ``StoredPoints``)."""
        pids: list[str] = []
        with self._lock:
            for (chunk,) in self._chunks("json_group_array(pid)", "vectors", (name,), 1 << 18):
                pids.extend(orjson.loads(chunk))
        return pids

    def vectors_of(self, pids: Sequence[str], name: str) -> dict[str, bytes]:
        """The stored (exact) vectors of ``pids`` under ``name``; absent ones are missing."""
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(pids), 500):
                chunk = list(pids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                query = f"SELECT pid, data FROM vectors WHERE name = ? AND pid IN ({marks})"
                found.update(self._db.execute(query, [name, *chunk]).fetchall())
        return found

    def payloads_of(self, pids: Sequence[str]) -> dict[str, bytes]:
        """The stored JSON payloads of ``pids`` (absent ones are missing), in one query
        whatever their number: the ids travel as one JSON array (``on_disk_payload``
        segments read every payload they need through here)."""
        if not pids:
            return {}
        if len(pids) == 1:  # one record of a response: a plain key lookup is faster
            query, argument = "SELECT pid, payload FROM points WHERE pid = ?", pids[0]
        else:
            query = "SELECT pid, payload FROM points WHERE pid IN (SELECT value FROM json_each(?))"
            argument = orjson.dumps(list(pids)).decode()
        with self._lock:
            rows = self._db.execute(query, (argument,)).fetchall()
        return {pid: payload for pid, payload in rows}

    def save_job(self, job_id: str, body: dict[str, Any]) -> None:
        """Background-job records (history and crash recovery), outside the op-id sequence."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs(id, body) VALUES (?, ?)", (job_id, orjson.dumps(body))
            )

    def delete_jobs(self, job_ids: list[str]) -> None:
        """Drop job records (the worker keeps a bounded history)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in job_ids])

    def load_jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM jobs").fetchall()
        return [orjson.loads(body) for (body,) in rows]

    def save_training_queries(self, name: str, source: str, matrix: bytes) -> None:
        """Query samples a query-aware index learns from (LeanVec OOD): ``source`` is
        "given" (uploaded) or "seen" (a reservoir of served queries); float32 rows."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO training_queries(name, source, data) VALUES (?, ?, ?)",
                (name, source, matrix),
            )

    def load_training_queries(self, name: str, source: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM training_queries WHERE name = ? AND source = ?", (name, source)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def backup_to(self, target: Path) -> None:
        """Write a point-in-time copy of the database to ``target``, one self-contained
        file, while writes continue (``_copy_into``)."""
        with self._copying(), closing(sqlite3.connect(target, isolation_level=None)) as copy:
            self._copy_into(copy)

    def image(self) -> bytearray:
        """A point-in-time copy of the database as a database file's bytes, built in
        memory (``_copy_into``): nothing is written to this store's disk and read back.
        Marked as a rollback-journal database, as ``backup_to``'s file is (an in-memory
        database keeps its journal in memory whatever it is asked; the store that opens
        the file switches it to WAL)."""
        with self._copying(), closing(sqlite3.connect(":memory:", isolation_level=None)) as copy:
            self._copy_into(copy)
            image = bytearray(copy.serialize())
        image[18:20] = ROLLBACK_JOURNAL
        return image

    def _copy_into(self, copy: sqlite3.Connection) -> None:
        """SQLite's online backup through a read-only connection of its own in a single
        step, one read transaction, which WAL mode serves without blocking the writer
        (this store's lock is not taken); the copy is switched to a rollback journal
        before it is changed. Job records are left out: they are this collection's
        history, not its data."""
        source_uri = (self.path / DB_FILE).resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(source_uri, uri=True)) as source:
            source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        copy.execute("DELETE FROM jobs")

    @contextmanager
    def _copying(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot copy the storage of collection `{self.path.name}`: {reason(exc)}"
            ) from exc

    # -- internals -------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _next_op_id(db: sqlite3.Connection) -> int:
        op_id = int(db.execute("SELECT value FROM meta WHERE key='last_op_id'").fetchone()[0]) + 1
        db.execute("UPDATE meta SET value = ? WHERE key = 'last_op_id'", (str(op_id),))
        return op_id

    @staticmethod
    def _delete(db: sqlite3.Connection, pids: Sequence[str]) -> None:
        rows = [(pid,) for pid in pids]
        db.executemany("DELETE FROM points WHERE pid = ?", rows)
        db.executemany("DELETE FROM vectors WHERE pid = ?", rows)

    @staticmethod
    def _put_points(db: sqlite3.Connection, points: PointRows, op_id: int) -> None:
        db.executemany("DELETE FROM vectors WHERE pid = ?", zip(points.replaced))
        db.executemany(
            "INSERT OR REPLACE INTO points(pid, version, payload) VALUES (?, ?, ?)",
            zip(points.pids, itertools.repeat(op_id), points.payloads),
        )
        db.executemany(
            "INSERT OR REPLACE INTO vectors(pid, name, data) VALUES (?, ?, ?)", points.vectors
        )

    def _transaction(self, durable: bool = True) -> _Transaction:
        return _Transaction(self, durable)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error; with ``durable``
    the commit is synced before the block's exit returns."""

    def __init__(self, store: PointStore, durable: bool) -> None:
        self._store = store
        self._durable = durable

    def __enter__(self) -> sqlite3.Connection:
        if self._store._sync is not None:
            self._store._sync.check()
        self._store._lock.acquire()
        try:
            self._store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._store._lock.release()
            raise StorageError(f"Cannot start a write: {reason(exc)}") from exc
        return self._store._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        db, sync = self._store._db, self._store._sync
        try:
            if exc_type is None:
                db.execute("COMMIT")
                if sync is not None:
                    sync.committed()
            else:
                db.execute("ROLLBACK")
        except sqlite3.Error as err:
            db.execute("ROLLBACK")
            raise StorageError(f"Write failed and was rolled back: {reason(err)}") from err
        finally:
            self._store._lock.release()
        if exc_type is None and self._durable:
            self._store.sync()
