"""Qdrant's ``UnindexedField`` issue: payload keys that slow searches filter on without
an index able to serve the condition.

A search batch that takes longer than ``SLOW_SEARCH_S`` (Qdrant's 300 ms
``SLOW_SEARCH_THRESHOLD``) hands its filters to ``UNINDEXED_FIELDS.observe``, which
remembers each key a filter tests unindexed (``filter_stats.unindexed_keys``, the same
rule strict mode applies) with the index types that would serve it. ``GET /issues``
lists them (``service_wire.find_issues``) until an index of a fitting type exists on the
key, as Qdrant solves the issue when the index is created, or until ``DELETE /issues``.

The log is process-wide, as the planner's counts are: in-process shards record under
their collection's name; Ray shards run in other processes, so their slow searches are
not seen here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from server.engine.filter_stats import unindexed_keys
from server.engine.filters import Filter

SLOW_SEARCH_S = 0.3
_EVERY_TYPE = 8  # is_empty / is_null / values_count: any index serves, none is suggested

Schema = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class UnindexedField:
    """One key of one collection, the index types that would serve the conditions seen
    on it (sorted), and when it was first seen slowing a search (epoch seconds)."""

    collection: str
    field: str
    types: tuple[str, ...]
    first_seen: float

    @property
    def code(self) -> str:
        """Qdrant's issue code for it."""
        return f"{self.collection}/UNINDEXED_FIELD/{self.field}"


class UnindexedFieldLog:
    """The keys seen slowing searches, per collection; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], UnindexedField] = {}

    def observe(
        self, collection: str, schema: Schema, filters: Iterable[Filter | None], seconds: float
    ) -> None:
        """Remember the unindexed keys of ``filters`` when the search was slow."""
        if seconds <= SLOW_SEARCH_S:
            return
        found: dict[str, set[str]] = {}
        for flt in filters:
            if flt is not None:
                for key, types in unindexed_keys(flt, schema):
                    if len(types) < _EVERY_TYPE:
                        found.setdefault(key, set()).update(types)
        if found:
            self._record(collection, found)

    def _record(self, collection: str, found: Mapping[str, set[str]]) -> None:
        now = time.time()
        with self._lock:
            for key, types in found.items():
                old = self._seen.get((collection, key))
                merged = tuple(sorted(types | set(old.types if old else ())))
                first = old.first_seen if old else now
                self._seen[(collection, key)] = UnindexedField(collection, key, merged, first)

    def current(self, schemas: Mapping[str, Schema]) -> list[UnindexedField]:
        """The remembered keys still unindexed, of the collections in ``schemas`` (name ->
        payload schema); keys indexed since, or of collections gone, are forgotten."""
        with self._lock:
            for (collection, key), seen in list(self._seen.items()):
                schema = schemas.get(collection)
                if schema is None or _indexed(schema.get(key), seen.types):
                    del self._seen[(collection, key)]
            return sorted(self._seen.values(), key=lambda seen: (seen.first_seen, seen.code))

    def clear(self, collections: Iterable[str] | None = None) -> None:
        """Forget every key (of ``collections`` only, when given)."""
        with self._lock:
            if collections is None:
                self._seen.clear()
                return
            names = set(collections)
            self._seen = {k: v for k, v in self._seen.items() if k[0] not in names}


def _indexed(spec: Mapping[str, Any] | None, types: tuple[str, ...]) -> bool:
    return spec is not None and spec.get("type") in types


UNINDEXED_FIELDS = UnindexedFieldLog()
