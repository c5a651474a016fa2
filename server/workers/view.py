"""A reader's view of the data folder: every plain collection, opened read-only.

A view is what the point-read routes see as ``app.state.engine`` in a reader
(``get``, ``exists``, ``resolve``, ``names``, ``limits``). It is built from disk: the
SQLite point store (the truth, read in WAL mode beside the owner's writer) and the
sealed segments' index files. It never writes: no build worker, no sealing, no
clean-up of the owner's half-written segment folders (``Collection.open(read_only=
True)``). Sharded collections are left out; reads of them go to the owner.

A view is immutable once built; a newer one replaces it whole, and the old one is
dropped, not closed, so a request still running on it finishes undisturbed.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from server.engine.collection import Collection
from server.engine.limits import EngineLimits
from server.errors import CollectionNotFound
from server.storage.aliases import ALIASES_FILE, load_aliases
from server.storage.point_store import DB_FILE

log = logging.getLogger(__name__)

SHARDED_MARKER = "sharded.json"  # server/catalog.py SHARDED_FILE (catalog imports the cluster)
OPEN_TRIES = 3


class TornView(RuntimeError):
    """A collection changed while it was being read; the view is built again later."""


class ReadView:
    """The collections a reader answers for, as of one owner generation."""

    def __init__(
        self,
        collections: dict[str, Collection],
        aliases: dict[str, str],
        limits: EngineLimits,
        stamps: dict[str, Stamp] | None = None,
    ) -> None:
        self._collections = collections
        self._aliases = aliases
        self.limits = limits
        self._stamps = stamps or {}
        self._probes: dict[str, sqlite3.Connection] = {}

    def has(self, name: str) -> bool:
        """Whether this view can answer for ``name`` (a collection or an alias of one)."""
        return self.resolve(name) in self._collections

    def current(self, name: str) -> bool:
        """Whether ``name``'s collection is in this view and no write committed to it since
        it was loaded. This catches writes that reach the engine without an HTTP answer
        of the owner's (gRPC's fast upsert path); the generation catches the rest."""
        collection = self.resolve(name)
        if collection not in self._collections:
            return False
        probe = self._probes.get(collection)
        if probe is None:
            probe = self._probes[collection] = _read_only(self._collections[collection].path)
        try:
            return _op_id(probe) == self._stamps[collection].op_id
        except sqlite3.Error:
            return False

    def unchanged(self, path: Path) -> tuple[Collection, Stamp] | None:
        """This view's copy of the collection at ``path`` while nothing of it changed on
        disk since it was loaded (same stamp), for a newer view to keep; else None."""
        collection = self._collections.get(path.name)
        if collection is None:
            return None
        probe = _read_only(path)
        try:
            stamp = _stamp(path, probe)
        except (OSError, sqlite3.Error):
            return None
        finally:
            probe.close()
        return (collection, stamp) if stamp == self._stamps[path.name] else None

    def answers(self, name: str) -> bool:
        """Whether a reader may answer reads of ``name`` itself. Not when its strict mode
        sets a ``read_rate_limit``: the token bucket is the owner's, one for the server,
        where a bucket per reader would multiply the limit by the workers and start full
        again with every reloaded view."""
        collection = self._collections.get(self.resolve(name))
        if collection is None:
            return False
        strict = collection.config.strict_mode_config or {}
        return not (strict.get("enabled") is True and strict.get("read_rate_limit") is not None)

    def resolve(self, name: str) -> str:
        return self._aliases.get(name, name)

    def exists(self, name: str) -> bool:
        return self.has(name)

    def names(self) -> list[str]:
        return sorted(self._collections)

    def get(self, name: str) -> Collection:
        collection = self._collections.get(self.resolve(name))
        if collection is None:
            raise CollectionNotFound(name)
        return collection

    def close(self) -> None:
        """At shutdown only (see the module docstring)."""
        for collection in self._collections.values():
            collection.close()
        for probe in self._probes.values():
            probe.close()


def open_view(data_dir: Path, limits: EngineLimits, previous: ReadView | None = None) -> ReadView:
    """Every plain collection under ``data_dir`` as it is now on disk. Collections of
    ``previous`` that did not change since it was loaded are kept, not loaded again: a
    write to one collection (or an alias switch) reloads that one only (or none)."""
    root = data_dir / "collections"
    collections: dict[str, Collection] = {}
    stamps: dict[str, Stamp] = {}
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if _plain_collection(path):
                kept = previous.unchanged(path) if previous is not None else None
                collection, stamps[path.name] = kept or open_consistent(path)
                collection.result_budget = limits.max_request_result_bytes
                collections[path.name] = collection
    aliases = {a: c for a, c in load_aliases(data_dir / ALIASES_FILE).items() if c in collections}
    return ReadView(collections, aliases, limits, stamps)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a collection was loaded from: the point store's last operation id and
    config, and the identity of its files (the folder and point store: a collection
    deleted and created again differs; each sealed segment's folder: a build or merge
    differs). An equal stamp later means the copy in memory is still the one on disk."""

    op_id: int
    config: str
    files: tuple[tuple[str, int, int], ...]


def open_consistent(path: Path) -> tuple[Collection, Stamp]:
    """The collection opened while nothing of it changed: its stamp is the same before
    and after the load, so the points, vectors, config and segments read in several
    steps belong to one state (a write in between could pair a new point row with no
    vectors yet); with that stamp. Retried a few times, then ``TornView``."""
    probe = _read_only(path)
    try:
        for _ in range(OPEN_TRIES):
            before = _stamp(path, probe)
            collection = Collection.open(path.name, path, read_only=True)
            if _stamp(path, probe) == before:
                collection.store.shrink_cache()  # the load read every row once
                return collection, before
            collection.close()
    finally:
        probe.close()
    raise TornView(f"collection {path.name!r} kept changing while it was read")


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection of its own to the collection's point store that can only read."""
    uri = (path / DB_FILE).resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


def _stamp(path: Path, db: sqlite3.Connection) -> Stamp:
    row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    # the folder and the point store by inode only: SQLite's checkpoints and side files
    # touch their times, and the operation id already says whether the points changed
    files = [(p.name, p.stat().st_ino, 0) for p in (path, path / DB_FILE)]
    segments = path / "segments"
    if segments.is_dir():  # the owner creates it right after the point store
        for folder in sorted(p for p in segments.iterdir() if not p.name.startswith(".")):
            files.append((folder.name, (st := folder.stat()).st_ino, st.st_mtime_ns))
    return Stamp(_op_id(db), row[0] if row else "", tuple(files))


def _op_id(db: sqlite3.Connection) -> int:
    """The collection's last committed operation id."""
    row = db.execute("SELECT value FROM meta WHERE key = 'last_op_id'").fetchone()
    return int(row[0]) if row else 0


def _plain_collection(path: Path) -> bool:
    return (
        path.is_dir()
        and not path.name.startswith(".")
        and (path / DB_FILE).is_file()
        and not (path / SHARDED_MARKER).exists()
    )
