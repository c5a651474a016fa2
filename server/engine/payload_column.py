"""Where a segment keeps its rows' payloads: in process memory, or in the point store.

``on_disk_payload: false`` keeps every payload as a dict per row (:class:`MemoryPayloads`).
With ``on_disk_payload: true`` (Qdrant's default, and Quiver's) a segment keeps no payload
per row (:class:`StoredPayloads`): a response, a re-check of an unindexed filter
condition or a payload rewrite reads the payloads it needs from the collection's
SQLite point store (the system of record, written before any segment), many rows in
one batched query. Only the values of *indexed* top-level keys stay in memory, as in
Qdrant ("once you create the field index, Qdrant preserves all values of the indexed
field in RAM"): the payload indexes need a row's old values to forget them when the
row changes, and by then the store already holds the new payload.

Both share one interface (``SegmentRows`` uses it): ``many(rows)`` reads payloads,
``kept(row)`` is what the payload indexes were given for that row, and ``keep_keys``
says which top-level keys the indexes read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson

from server.engine.point_ids import PointId, point_id_to_text

Payload = dict[str, Any]


class PayloadReader(Protocol):
    """The point store, as far as payloads go."""

    def payloads_of(self, pids: Sequence[str]) -> dict[str, bytes]:
        """The stored JSON payload of each of ``pids`` that exists (batched)."""
        ...


class PayloadColumn(Protocol):
    """A segment's payloads by row (rows align with the segment's ids)."""

    def __len__(self) -> int: ...
    def __getitem__(self, row: int) -> Payload: ...
    def many(self, rows: Iterable[int]) -> list[Payload]: ...
    def kept(self, row: int) -> Payload: ...
    def kept_all(self) -> list[Payload]: ...
    def extend(self, payloads: Sequence[Payload]) -> None: ...
    def set(self, row: int, payload: Payload) -> None: ...
    def move(self, src_row: int, dst_row: int) -> None: ...
    def pop(self) -> None: ...
    def keep_keys(self, keys: frozenset[str] | None, payloads: Sequence[Payload]) -> None: ...
    @property
    def nbytes(self) -> int:
        """Memory held per row (row slots and kept values, shallow sizes)."""
        ...


class MemoryPayloads:
    """Every payload as a dict in process memory (``on_disk_payload: false``); an empty
    payload is held as None (a slot, not a 64-byte dict per point) and read as ``{}``."""

    def __init__(self) -> None:
        self._items: list[Payload | None] = []

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, row: int) -> Payload:
        return self._items[row] or {}

    def many(self, rows: Iterable[int]) -> list[Payload]:
        items = self._items
        return [items[row] or {} for row in rows]

    def kept(self, row: int) -> Payload:
        return self[row]

    def kept_all(self) -> list[Payload]:
        return [item or {} for item in self._items]

    def extend(self, payloads: Sequence[Payload]) -> None:
        self._items.extend(payload or None for payload in payloads)

    def set(self, row: int, payload: Payload) -> None:
        self._items[row] = payload or None

    @property
    def nbytes(self) -> int:
        items = self._items
        return sys.getsizeof(items) + sum(sys.getsizeof(i) for i in items if i is not None)

    def move(self, src_row: int, dst_row: int) -> None:
        self._items[dst_row] = self._items[src_row]

    def pop(self) -> None:
        self._items.pop()

    def keep_keys(self, keys: frozenset[str] | None, payloads: Sequence[Payload]) -> None:
        """Nothing to do: every key is kept."""


_EMPTY: Payload = {}


class StoredPayloads:
    """Payloads read from the point store; only indexed top-level keys kept per row.

    ``ids`` is the segment's own id list (shared, not copied): row ``r``'s payload is
    the stored payload of ``ids[r]``. A row whose point is no longer stored (a
    tombstoned row of a sealed segment, never shown) reads as ``{}``.
    """

    def __init__(self, reader: PayloadReader, ids: Sequence[PointId]) -> None:
        self._reader = reader
        self._ids = ids
        self._rows = 0
        self._kept: dict[int, str] = {}  # row -> JSON of its kept keys; absent when none
        self._keys: frozenset[str] | None = frozenset()  # None: every key

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, row: int) -> Payload:
        return self.many([row])[0]

    def many(self, rows: Iterable[int]) -> list[Payload]:
        """The stored payloads of ``rows``, in one batched read."""
        pids = [point_id_to_text(self._ids[row]) for row in rows]
        found = self._reader.payloads_of(pids)
        return [orjson.loads(found[pid]) if pid in found else {} for pid in pids]

    def kept(self, row: int) -> Payload:
        return _decoded(self._kept.get(row))

    def kept_all(self) -> list[Payload]:
        kept = self._kept
        return [_decoded(kept.get(row)) for row in range(self._rows)]

    def extend(self, payloads: Sequence[Payload]) -> None:
        if self._keys is not None and not self._keys:  # nothing indexed: nothing kept
            self._rows += len(payloads)
            return
        for payload in payloads:
            self._put(self._rows, self._project(payload))
            self._rows += 1

    def set(self, row: int, payload: Payload) -> None:
        self._put(row, self._project(payload))

    def move(self, src_row: int, dst_row: int) -> None:
        self._put(dst_row, self._kept.get(src_row))

    def pop(self) -> None:
        self._rows -= 1
        self._kept.pop(self._rows, None)

    def keep_keys(self, keys: frozenset[str] | None, payloads: Sequence[Payload]) -> None:
        """From now on keep ``keys`` (None: all) of each row, projected from
        ``payloads`` (every row's full payload, e.g. just read with ``many``)."""
        self._keys = keys
        self._kept, self._rows = {}, 0
        self.extend(payloads)

    @property
    def nbytes(self) -> int:
        kept = self._kept
        return sys.getsizeof(kept) + sum(sys.getsizeof(text) for text in kept.values())

    def _put(self, row: int, kept: str | None) -> None:
        if kept is None:
            self._kept.pop(row, None)
        else:
            self._kept[row] = kept

    def _project(self, payload: Payload) -> str | None:
        """The kept keys as JSON text: a fifth of a dict's memory, and only a write or
        a seal reads them back. Text, because ``orjson.dumps``'s bytes keep their 4 KiB
        buffer; decoding copies them to their exact size."""
        keys = self._keys
        if keys is None:
            return orjson.dumps(payload).decode()
        if not keys:
            return None
        kept = {key: payload[key] for key in keys if key in payload}
        return orjson.dumps(kept).decode() if kept else None


def _decoded(kept: str | None) -> Payload:
    if kept is None:
        return _EMPTY
    payload: Payload = orjson.loads(kept)
    return payload


def payload_column(reader: PayloadReader | None, ids: Sequence[PointId]) -> PayloadColumn:
    """Payloads read from ``reader`` when given (``on_disk_payload``), else in memory."""
    return MemoryPayloads() if reader is None else StoredPayloads(reader, ids)
