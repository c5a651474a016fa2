"""Payload indexes: exact per-segment indexes over the payload fields a user indexed.

A segment keeps one ``FieldIndex`` per indexed field (Qdrant's ``field_schema`` types)
over its rows (a row is a position in the segment)::

    keyword, uuid, bool         inverted: value -> BitMap of rows
    text                        inverted: token -> BitMap of rows (``text_index.py``)
    integer, float, datetime    (value, row) pairs kept sorted for searchsorted ranges

Options of the wire ``field_schema`` are checked by ``check_field_schema``; those that
change evaluation are integer ``lookup`` / ``range`` (``FieldIndex.answers``: which
conditions an index serves, the others scan payloads), the text options, and
``is_tenant`` / ``is_principal`` (``PayloadIndexes.leading``: evaluated first), and
``on_disk`` (``payload_index_disk.py``: the same indexes over memory-mapped files).

Values are read exactly as filters read them (``JsonPath.values``, arrays flattened one
level), so a row appears under each of its values. A value of the wrong type for the
index (a number in a keyword field) is not indexed; the row is remembered as holding
an *other* value so that no answer ever forgets it. Each index also remembers which
rows are not empty and which hold a null, so ``is_empty`` / ``is_null`` are exact.

``PayloadIndexes.candidates`` turns a parsed ``Filter`` into a superset of its matching
rows. Every condition is evaluated to *bounds*: rows that certainly match and rows
that may match. AND/OR combine bounds and NOT swaps them (``must_not x`` certainly
excludes only rows where ``x`` certainly holds), so the answer stays a superset with
any mix of indexed and unindexed conditions; the caller re-checks the full filter on
the candidates only.
"""

from __future__ import annotations

import array
import math
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar, NamedTuple, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from server.engine.config import MEMORY_TIERS, resolved_on_disk
from server.engine.field_matchers import (
    DatetimeRange,
    GeoBoundingBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchExcept,
    MatchPhrase,
    MatchPrefix,
    MatchSubstring,
    MatchText,
    MatchTextAny,
    MatchValue,
    Range,
    ValueTest,
    parse_datetime,
)
from server.engine.filters import (
    Condition,
    FieldCondition,
    Filter,
    IsEmpty,
    IsNull,
    MinShould,
    TextMatch,
    rewrite_conditions,
)
from server.engine.payload import JsonPath, PathItem, parse_json_path
from server.errors import BadRequest, UnsupportedFeature

FIELD_TYPES = ("keyword", "integer", "float", "bool", "datetime", "uuid", "text")

# tests that only a string / only an object (a geo point) can pass
_STRING_TESTS = (DatetimeRange, MatchText, MatchTextAny, MatchPhrase, MatchPrefix, MatchSubstring)
_GEO_TESTS = (GeoRadius, GeoBoundingBox, GeoPolygon)
_NEVER_ON_NUMBERS = (*_STRING_TESTS, *_GEO_TESTS)
_NEVER_ON_STRINGS = (Range, *_GEO_TESTS)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_FLOAT_EXACT_INT = 1 << 53  # integers up to this magnitude survive float64 exactly
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PENDING_SCAN = 256  # unsorted numeric pairs scanned linearly before a re-sort
_COMPACT_AT = 1024  # dead numeric pairs tolerated before compaction
_U32 = "I" if array.array("I").itemsize == 4 else "L"

Bounds = tuple[BitMap, BitMap]  # (rows that certainly match, rows that may match)
Interval = tuple[int | float | None, bool, int | float | None, bool]  # lo, lo_incl, hi, hi_incl


def _union(maps: Sequence[BitMap]) -> BitMap:
    if not maps:
        return BitMap()
    return maps[0].copy() if len(maps) == 1 else BitMap.union(*maps)


def _bitmap(rows: npt.NDArray[np.int64]) -> BitMap:
    buffer = array.array(_U32)
    buffer.frombytes(np.ascontiguousarray(rows, dtype=np.uint32).tobytes())
    return BitMap(buffer)


def rows_mask(rows: BitMap, row_count: int) -> npt.NDArray[np.bool_]:
    """``rows`` as a boolean mask over a segment's ``row_count`` rows."""
    mask = np.zeros(row_count, dtype=bool)
    found = np.asarray(rows.to_array(), dtype=np.int64)
    mask[found[found < row_count]] = True
    return mask


def _exact(rows: BitMap) -> Bounds:
    return rows, rows.copy()


def _nothing() -> Bounds:
    return BitMap(), BitMap()


def _kind(value: Any) -> str:
    """The JSON kind filters tell apart: bool, int, float, str, or object (dict/list)."""
    for kind in (bool, int, float, str):  # bool first: a bool is an int
        if isinstance(value, kind):
            return kind.__name__
    return "object"


_KINDS = ("bool", "int", "float", "str", "object")
_FLAGS = ("value", "altered", "not_empty", "null", *(f"other_{kind}" for kind in _KINDS))


def _kinds_passing(test: ValueTest) -> tuple[str, ...]:
    """The kinds of payload value that can pass ``test`` (all of them when unsure)."""
    if isinstance(test, MatchValue):
        return (_kind(test.value),)
    if isinstance(test, MatchAny):
        return tuple({_kind(variant) for variant in test.any})
    if isinstance(test, Range):
        return ("int", "float")
    if isinstance(test, _STRING_TESTS):
        return ("str",)
    if isinstance(test, _GEO_TESTS):
        return ("object",)
    return _KINDS


def _flatten(path: JsonPath, payload: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Non-null values as filters see them (arrays flattened once), plus the flags
    ``not_empty`` (``is_empty`` is false) and ``null`` (``is_null`` is true)."""
    flat: list[Any] = []
    not_empty = null = False
    for value in path.values(payload, flatten=False):
        if isinstance(value, list):
            not_empty = not_empty or bool(value)
            null = null or any(item is None for item in value)
            flat.extend(item for item in value if item is not None)
        elif value is None:
            null = True
        else:
            not_empty = True
            flat.append(value)
    return flat, ["not_empty"] * not_empty + ["null"] * null


class FieldIndex(Protocol):
    """One indexed field of one segment.

    A row holds at most one payload: ``remove`` (or ``move`` away) a row's payload,
    passing the payload that was added, before adding another at that row.
    """

    field: str
    type: str
    path: JsonPath

    def add(self, row: int, payload: dict[str, Any]) -> None: ...
    def remove(self, row: int, payload: dict[str, Any]) -> None: ...
    def move(self, src_row: int, dst_row: int, payload: dict[str, Any]) -> None: ...
    def build(self, payloads: Sequence[dict[str, Any]]) -> None: ...
    def match(self, test: ValueTest) -> Bounds:
        """Rows where some *indexed* value certainly / possibly passes ``test``."""
        ...

    def answers(self, test: ValueTest) -> bool:
        """Whether ``match`` may be asked about ``test`` (else the rows are scanned,
        as Qdrant scans a field whose index cannot serve the condition)."""
        ...

    def bind_text(self, condition: FieldCondition) -> TextMatch | None:
        """A text index's reading of a text condition (None for other indexes)."""
        ...

    def match_text(self, condition: TextMatch) -> Bounds: ...
    def rows_with_value(self) -> BitMap: ...
    def rows_with_other_values(self, kinds: Iterable[str] = _KINDS) -> BitMap:
        """Rows holding a non-null value of one of ``kinds`` that the index cannot hold."""
        ...

    def rows_not_empty(self) -> BitMap: ...
    def rows_with_null(self) -> BitMap: ...
    def entries(self) -> list[tuple[Any, int]]:
        """Every (key, row) pair, sorted: for persistence and tests."""
        ...

    def memory_bytes(self) -> int: ...
    def points(self) -> int: ...
    def value_counts(self, rows: npt.NDArray[np.bool_]) -> dict[Any, int]:
        """Per indexed value: how many of the ``rows`` set in the mask hold it (facets)."""
        ...

    def ordered(
        self, start: float | None, descending: bool
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None:
        """Live ``(values, rows)`` sorted by value in ``descending`` or ascending order,
        from ``start`` on (inclusive); None when this index cannot order (no ranges)."""
        ...


class _FieldIndexBase:
    """Row bookkeeping shared by both index shapes; subclasses store the keys.

    ``_flagged[name]`` holds the rows where flag ``name`` (one of ``_FLAGS``) is set:
    ``value`` (some value indexed), ``altered`` (a key differs from its spelling in
    the payload: uuid only), ``not_empty``, ``null`` and ``other_<kind>``.
    """

    type: str

    def __init__(self, field: str) -> None:
        self.field = field
        self.path = parse_json_path(field)
        self._flagged = {name: BitMap() for name in _FLAGS}

    # -- what subclasses provide ------------------------------------------------------

    def _key(self, value: Any) -> Any:
        """The key stored for a non-null payload value, or None if it is not indexable."""
        raise NotImplementedError

    def _insert(self, row: int, keys: list[Any]) -> None:
        raise NotImplementedError

    def _delete(self, row: int, keys: list[Any]) -> None:
        raise NotImplementedError

    def _relabel(self, src_row: int, dst_row: int, keys: list[Any]) -> None:
        raise NotImplementedError

    def _bulk(self, rows: list[int], keys: list[Any]) -> None:
        """Replace every stored key with ``keys`` (``rows`` ascending)."""
        raise NotImplementedError

    def _keys_bytes(self) -> int:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------

    def _convert(self, values: list[Any]) -> tuple[list[Any], list[str]]:
        """Keys for the indexable values, flags for the rest."""
        keys, flags = [], []
        for value in values:
            key = self._key(value)
            if key is None:
                flags.append(f"other_{_kind(value)}")
            else:
                keys.append(key)
        return keys, flags

    def _read(self, payload: dict[str, Any]) -> tuple[list[Any], set[str]]:
        flat, flags = _flatten(self.path, payload)
        keys, more = self._convert(flat)
        return keys, {*flags, *more, *(["value"] if keys else [])}

    def add(self, row: int, payload: dict[str, Any]) -> None:
        keys, flags = self._read(payload)
        if keys:
            self._insert(row, keys)
        for name in flags:
            self._flagged[name].add(row)

    def remove(self, row: int, payload: dict[str, Any]) -> None:
        keys, _ = self._read(payload)
        self._delete(row, keys)
        for rows in self._flagged.values():
            rows.discard(row)

    def move(self, src_row: int, dst_row: int, payload: dict[str, Any]) -> None:
        """The payload at ``src_row`` now lives at ``dst_row`` (which holds none)."""
        if src_row == dst_row:
            return
        keys, _ = self._read(payload)
        self._relabel(src_row, dst_row, keys)
        for rows in self._flagged.values():
            if src_row in rows:
                rows.discard(src_row)
                rows.add(dst_row)

    def build(self, payloads: Sequence[dict[str, Any]]) -> None:
        """Index ``payloads`` (row i = payloads[i]) from scratch, in bulk."""
        key_rows: list[int] = []
        all_keys: list[Any] = []
        flagged: dict[str, list[int]] = {name: [] for name in _FLAGS}
        for row, payload in enumerate(payloads):
            keys, flags = self._read(payload)
            key_rows.extend([row] * len(keys))
            all_keys.extend(keys)
            for name in flags:
                flagged[name].append(row)
        self._bulk(key_rows, all_keys)
        self._flagged = {name: BitMap(rows) for name, rows in flagged.items()}

    def answers(self, test: ValueTest) -> bool:
        return True

    def bind_text(self, condition: FieldCondition) -> TextMatch | None:
        return None

    def match_text(self, condition: TextMatch) -> Bounds:
        return BitMap(), self.rows_with_value()

    def rows_with_value(self) -> BitMap:
        return self._flagged["value"].copy()

    def rows_with_other_values(self, kinds: Iterable[str] = _KINDS) -> BitMap:
        return _union([self._flagged[f"other_{kind}"] for kind in kinds])

    def rows_not_empty(self) -> BitMap:
        return self._flagged["not_empty"].copy()

    def rows_with_null(self) -> BitMap:
        return self._flagged["null"].copy()

    def points(self) -> int:
        return len(self._flagged["value"])

    def ordered(
        self, start: float | None, descending: bool
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None:
        return None

    def memory_bytes(self) -> int:
        flags = sum(map(sys.getsizeof, self._flagged.values()))
        return sys.getsizeof(self) + flags + self._keys_bytes()

    def _maybe(self) -> Bounds:
        """No knowledge beyond 'some indexed value might pass'."""
        return BitMap(), self.rows_with_value()


# --- inverted indexes: keyword, uuid, bool ---------------------------------------------


class _InvertedIndex(_FieldIndexBase):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self._postings: dict[Any, BitMap] = {}
        self._flat: tuple[list[Any], npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    def _insert(self, row: int, keys: list[Any]) -> None:
        self._flat = None
        for key in keys:
            rows = self._postings.get(key)
            if rows is None:
                self._postings[key] = rows = BitMap()
            rows.add(row)

    def _delete(self, row: int, keys: list[Any]) -> None:
        self._flat = None
        for key in keys:
            rows = self._postings.get(key)
            if rows is not None:
                rows.discard(row)
                if not rows:
                    del self._postings[key]

    def _relabel(self, src_row: int, dst_row: int, keys: list[Any]) -> None:
        self._flat = None
        for key in keys:
            rows = self._postings.get(key)
            if rows is not None and src_row in rows:
                rows.discard(src_row)
                rows.add(dst_row)

    def _bulk(self, rows: list[int], keys: list[Any]) -> None:
        self._flat = None
        grouped: dict[Any, list[int]] = {}
        for row, key in zip(rows, keys, strict=True):
            grouped.setdefault(key, []).append(row)
        self._postings = {key: BitMap(key_rows) for key, key_rows in grouped.items()}

    def _keys_bytes(self) -> int:
        postings = self._postings
        return sys.getsizeof(postings) + sum(
            sys.getsizeof(key) + sys.getsizeof(rows) for key, rows in postings.items()
        )

    def entries(self) -> list[tuple[Any, int]]:
        return sorted((key, row) for key, rows in self._postings.items() for row in rows)

    def value_counts(self, rows: npt.NDArray[np.bool_]) -> dict[Any, int]:
        """One ``np.bincount`` over every (value, row) posting, never a pass per row or
        a bitmap call per value (a facet over 1,000 values would pay 1,000 of those)."""
        keys, key_ids, key_rows = self._flat_postings()
        inside = key_rows < len(rows)
        picked = key_ids[inside][rows[key_rows[inside]]]
        counts = np.bincount(picked, minlength=len(keys))
        return {keys[i]: int(counts[i]) for i in np.flatnonzero(counts).tolist()}

    def _flat_postings(self) -> tuple[list[Any], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The postings as parallel arrays (value number, row), built once per change.
        Readers share it under the collection's read lock: one of two racing builds
        wins the assignment, and both are the same."""
        flat = self._flat
        if flat is None:
            keys = list(self._postings)
            arrays = [np.asarray(self._postings[key].to_array(), dtype=np.int64) for key in keys]
            sizes = [len(array) for array in arrays]
            key_ids = np.repeat(np.arange(len(keys), dtype=np.int64), sizes)
            key_rows = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
            self._flat = flat = (keys, key_ids, key_rows)
        return flat

    def _rows_of(self, keys: Iterable[Any]) -> BitMap:
        postings = self._postings
        return _union([postings[key] for key in set(keys) if key in postings])

    def _rows_where(self, check: Callable[[Any], bool]) -> BitMap:
        """Union over the vocabulary: exact for any test when keys are the raw values."""
        return _union([rows for key, rows in self._postings.items() if check(key)])


class KeywordIndex(_InvertedIndex):
    type = "keyword"

    def _key(self, value: Any) -> Any:
        return value if isinstance(value, str) else None

    def match(self, test: ValueTest) -> Bounds:
        if isinstance(test, MatchValue):
            operand = test.value
            return _exact(self._rows_of([operand] if isinstance(operand, str) else []))
        if isinstance(test, MatchAny):
            return _exact(self._rows_of(v for v in test.any if isinstance(v, str)))
        return _exact(self._rows_where(test.check))

    def rows_per_value(self, values: Sequence[str]) -> list[npt.NDArray[np.int64]]:
        """Each value's rows (empty where no row holds it), straight from the postings:
        a grouped search fills its groups from these without a filter mask."""
        empty = np.empty(0, dtype=np.int64)
        postings = self._postings
        return [
            empty if (rows := postings.get(value)) is None
            else np.asarray(rows.to_array(), dtype=np.int64)
            for value in values
        ]  # fmt: skip


class BoolIndex(_InvertedIndex):
    type = "bool"

    def _key(self, value: Any) -> Any:
        return value if isinstance(value, bool) else None

    def match(self, test: ValueTest) -> Bounds:
        return _exact(self._rows_where(test.check))  # two keys at most


def _canonical_uuid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class UuidIndex(_InvertedIndex):
    """Keys are canonical UUIDs; rows spelling one otherwise are ``altered``, because
    filters compare the spelling, so only unaltered rows give certain answers."""

    type = "uuid"

    def _key(self, value: Any) -> Any:
        return _canonical_uuid(value)

    def _convert(self, values: list[Any]) -> tuple[list[Any], list[str]]:
        keys: list[Any] = []
        flags: list[str] = []
        for value in values:
            key = _canonical_uuid(value)
            if key is None:
                flags.append(f"other_{_kind(value)}")
            else:
                keys.append(key)
                if key != value:
                    flags.append("altered")
        return keys, flags

    def match(self, test: ValueTest) -> Bounds:
        if isinstance(test, MatchValue | MatchAny):
            operands = [test.value] if isinstance(test, MatchValue) else list(test.any)
            canonical = {op: _canonical_uuid(op) for op in operands}
            possible = self._rows_of(key for key in canonical.values() if key is not None)
            certain = self._rows_of(key for op, key in canonical.items() if key == op)
            return certain - self._flagged["altered"], possible
        rows = self._rows_where(test.check)
        altered = self._flagged["altered"]
        return rows - altered, rows | altered


# --- sorted indexes: integer, float, datetime ------------------------------------------


class _SortedView(NamedTuple):
    order: npt.NDArray[np.int64]  # live slots below ``upto``, by value
    values: npt.NDArray[Any]  # their values, for searchsorted
    upto: int  # slots from here on are unsorted


class _SortedIndex(_FieldIndexBase):
    """(value, row) pairs in growable arrays ("slots"), answered with searchsorted.

    Adds append slots, which stay unsorted (scanned linearly) until there are enough of
    them to re-sort; removes only clear ``alive``; a move rewrites the slots' row. Each
    row's slots form a linked list (``head`` -> ``next``), so none of these needs the
    sorted order, and a rebuild is one vectorised argsort.
    """

    dtype: ClassVar[type[np.generic]]

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self._reset(np.empty(0, dtype=self.dtype), np.empty(0, dtype=np.int64))

    def _reset(self, values: npt.NDArray[Any], rows: npt.NDArray[np.int64]) -> None:
        """Store ``values``/``rows`` as slots, each row's slots adjacent."""
        size = len(values)
        self._values = values
        self._rows = rows
        self._alive = np.ones(size, dtype=bool)
        self._next = np.arange(1, size + 1, dtype=np.int64)
        self._next[np.flatnonzero(rows[1:] != rows[:-1])] = -1
        if size:
            self._next[-1] = -1
        self._head = np.full(int(rows.max()) + 1 if size else 0, -1, dtype=np.int64)
        firsts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if size else rows
        self._head[rows[firsts]] = firsts
        self._size, self._dead = size, 0
        self._view = _SortedView(np.empty(0, dtype=np.int64), np.empty(0, dtype=self.dtype), 0)
        self._sorted_view()

    def _reserve(self, slots: int, row: int) -> None:
        if slots > len(self._values):
            capacity = max(slots, 2 * len(self._values), 64)
            for name in ("_values", "_rows", "_alive", "_next"):
                old = getattr(self, name)
                grown = np.zeros(capacity, dtype=old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
        if row >= len(self._head):
            head = np.full(max(row + 1, 2 * len(self._head), 64), -1, dtype=np.int64)
            head[: len(self._head)] = self._head
            self._head = head

    def _insert(self, row: int, keys: list[Any]) -> None:
        start, count = self._size, len(keys)
        self._reserve(start + count, row)
        if count == 1:  # the usual case; scalar stores are much cheaper than slices
            self._values[start], self._rows[start], self._alive[start] = keys[0], row, True
            self._next[start], self._head[row] = self._head[row], start
            self._size += 1
            return
        end = start + count
        self._values[start:end] = keys
        self._rows[start:end] = row
        self._alive[start:end] = True
        self._next[start : end - 1] = np.arange(start + 1, end)
        self._next[end - 1] = self._head[row]
        self._head[row] = start
        self._size = end

    def _slots_of(self, row: int) -> list[int]:
        slots = []
        slot = int(self._head[row]) if row < len(self._head) else -1
        while slot >= 0:
            slots.append(slot)
            slot = int(self._next[slot])
        return slots

    def _delete(self, row: int, keys: list[Any]) -> None:
        slots = self._slots_of(row)
        if not slots:
            return
        self._alive[slots] = False
        self._head[row] = -1
        self._dead += len(slots)
        if self._dead > _COMPACT_AT and 2 * self._dead > self._size:
            self._compact()

    def _relabel(self, src_row: int, dst_row: int, keys: list[Any]) -> None:
        slots = self._slots_of(src_row)
        if not slots:
            return
        self._reserve(self._size, dst_row)
        self._rows[slots] = dst_row
        self._head[dst_row] = slots[0]
        self._head[src_row] = -1

    def _compact(self) -> None:
        live = np.flatnonzero(self._alive[: self._size])
        rows = self._rows[live]
        by_row = np.argsort(rows, kind="stable")
        self._reset(self._values[live][by_row], rows[by_row])

    def _bulk(self, rows: list[int], keys: list[Any]) -> None:
        self._reset(np.array(keys, dtype=self.dtype), np.array(rows, dtype=np.int64))

    def _keys_bytes(self) -> int:
        arrays = (self._values, self._rows, self._alive, self._next, self._head, *self._view[:2])
        return sum(a.nbytes for a in arrays)

    def entries(self) -> list[tuple[Any, int]]:
        live = np.flatnonzero(self._alive[: self._size])
        return sorted(zip(self._values[live].tolist(), self._rows[live].tolist(), strict=True))

    def value_counts(self, rows: npt.NDArray[np.bool_]) -> dict[Any, int]:
        """Live (value, row) pairs of the selected rows, a row counted once per value,
        counted by one ``np.unique``."""
        live = np.flatnonzero(self._alive[: self._size])
        slot_rows = self._rows[live]
        inside = slot_rows < len(rows)
        live, slot_rows = live[inside], slot_rows[inside]
        picked = rows[slot_rows]
        pairs = np.unique(np.stack([self._values[live[picked]], slot_rows[picked]]).T, axis=0)
        values, counts = np.unique(pairs[:, 0], return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def _sorted_view(self) -> _SortedView:
        """Re-sort once the unsorted tail outgrows a cheap linear scan.

        Queries run under a shared read lock, so the new view is published in one
        assignment: a concurrent query sees the old view or the new one, both valid.
        """
        view = self._view
        if self._size - view.upto <= _PENDING_SCAN + view.upto // 8:
            return view
        live = np.flatnonzero(self._alive[: self._size])
        order = live[np.argsort(self._values[live], kind="stable")]
        self._view = view = _SortedView(order, self._values[order], self._size)
        return view

    def _select(self, interval: Interval | None) -> BitMap:
        """Rows with a value inside ``interval`` (None: the empty interval)."""
        if interval is None:
            return BitMap()
        lo, lo_inclusive, hi, hi_inclusive = interval
        order, ordered, upto = self._sorted_view()
        start = (
            0 if lo is None else int(ordered.searchsorted(lo, "left" if lo_inclusive else "right"))
        )
        stop = len(ordered)
        if hi is not None:
            stop = int(ordered.searchsorted(hi, "right" if hi_inclusive else "left"))
        tail = self._values[upto : self._size]
        keep = np.ones(len(tail), dtype=bool)
        if lo is not None:
            keep &= tail >= lo if lo_inclusive else tail > lo
        if hi is not None:
            keep &= tail <= hi if hi_inclusive else tail < hi
        slots = np.concatenate([order[start:stop], upto + np.flatnonzero(keep)])
        return _bitmap(self._rows[slots[self._alive[slots]]])

    def ordered(
        self, start: float | None, descending: bool
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None:
        """The sorted view's slice from ``start``, merged with the unsorted tail: two
        sorted runs, which a stable sort (timsort) merges in about linear time."""
        order, ordered, upto = self._sorted_view()
        begin, end = 0, len(ordered)
        tail = np.arange(upto, self._size)
        if start is not None:
            if descending:
                end = int(ordered.searchsorted(start, "right"))
                tail = tail[self._values[tail] <= start]
            else:
                begin = int(ordered.searchsorted(start, "left"))
                tail = tail[self._values[tail] >= start]
        slots = order[begin:end]
        if tail.size:
            tail = tail[np.argsort(self._values[tail], kind="stable")]
            slots = np.concatenate([slots, tail])
            slots = slots[np.argsort(self._values[slots], kind="stable")]
        slots = slots[self._alive[slots]]
        if descending:
            slots = slots[::-1]
        return self._values[slots], self._rows[slots]

    def _equal(self, keys: Iterable[int | float]) -> BitMap:
        return _union([self._select((key, True, key, True)) for key in set(keys)])

    def _not_in(self, keys: Iterable[int | float]) -> BitMap:
        """Rows with some value outside ``keys`` (exact: every live slot is checked)."""
        values = self._values[: self._size]
        outside = ~np.isin(values, np.array(list(keys), dtype=self.dtype))
        return _bitmap(self._rows[: self._size][outside & self._alive[: self._size]])


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _int64(value: Any) -> int | None:
    return value if _is_int(value) and _INT64_MIN <= value <= _INT64_MAX else None


def _int_interval(test: Range) -> Interval | None:
    """The integers satisfying ``test`` as an inclusive int64 interval (None if empty)."""
    lo, hi = _INT64_MIN, _INT64_MAX
    for bound, strict, lower in (
        (test.gt, True, True),
        (test.gte, False, True),
        (test.lt, True, False),
        (test.lte, False, False),
    ):
        if bound is None:
            continue
        if isinstance(bound, float) and math.isnan(bound):
            return None
        if isinstance(bound, float) and math.isinf(bound):
            if (bound > 0) == lower:
                return None
            continue
        if lower:
            lo = max(lo, math.floor(bound) + 1 if strict else math.ceil(bound))
        else:
            hi = min(hi, math.ceil(bound) - 1 if strict else math.floor(bound))
    return (lo, True, hi, True) if lo <= hi else None


class IntegerIndex(_SortedIndex):
    """Integers (not bools) that fit int64; answers match and range exactly.

    Qdrant's ``lookup`` / ``range`` options say which conditions the index serves: with
    ``lookup: false`` a ``match`` scans payloads, with ``range: false`` a ``range`` does
    (the answers are the same, the cost is not; strict mode counts them unindexed)."""

    type = "integer"
    dtype = np.int64

    def __init__(self, field: str, *, lookup: bool = True, range_: bool = True) -> None:
        super().__init__(field)
        self.lookup = lookup
        self.range = range_

    def answers(self, test: ValueTest) -> bool:
        if isinstance(test, Range):
            return self.range
        if isinstance(test, MatchValue | MatchAny | MatchExcept):
            return self.lookup
        return True

    def _key(self, value: Any) -> Any:
        return _int64(value)

    def match(self, test: ValueTest) -> Bounds:
        if isinstance(test, MatchValue):
            key = _int64(test.value)
            return _exact(self._equal([] if key is None else [key]))
        if isinstance(test, MatchAny | MatchExcept):
            variants = test.any if isinstance(test, MatchAny) else test.except_
            keys = [key for key in map(_int64, variants) if key is not None]
            return _exact(self._equal(keys) if isinstance(test, MatchAny) else self._not_in(keys))
        if isinstance(test, Range):
            return _exact(self._select(_int_interval(test)))
        if isinstance(test, _NEVER_ON_NUMBERS):
            return _nothing()
        return self._maybe()


def _as_float(value: Any) -> float | None:
    """``value`` as the float64 equal to it, if there is one."""
    if isinstance(value, float):
        return value
    if _is_int(value) and abs(value) <= _FLOAT_EXACT_INT:
        return float(value)
    return None


class FloatIndex(_SortedIndex):
    """Every number (int or float, not bool) that float64 holds exactly; NaN is not.

    Ints and floats share one key space here, so equality answers (``match`` on an
    integer) are only possible ones: filters keep ``1`` and ``1.0`` apart.
    """

    type = "float"
    dtype = np.float64

    def _key(self, value: Any) -> Any:
        key = _as_float(value)
        return None if key is None or math.isnan(key) else key

    def match(self, test: ValueTest) -> Bounds:
        if isinstance(test, MatchValue | MatchAny):
            operands = [test.value] if isinstance(test, MatchValue) else list(test.any)
            keys = [_as_float(op) for op in operands if _is_int(op)]
            return BitMap(), self._equal(key for key in keys if key is not None)
        if isinstance(test, MatchExcept):
            if not all(_is_int(v) for v in test.except_):  # strings: every number passes
                return _exact(self.rows_with_value())
            keys = [_as_float(v) for v in test.except_]
            return self._not_in(key for key in keys if key is not None), self.rows_with_value()
        if isinstance(test, Range):
            return self._range(test)
        if isinstance(test, _NEVER_ON_NUMBERS):
            return _nothing()
        return self._maybe()

    def _range(self, test: Range) -> Bounds:
        lo: tuple[float, bool] | None = None  # (bound, exclusive): the tightest lower one
        hi: tuple[float, bool] | None = None  # (bound, inclusive): the tightest upper one
        for bound, inclusive, lower in (
            (test.gt, False, True),
            (test.gte, True, True),
            (test.lt, False, False),
            (test.lte, True, False),
        ):
            if bound is None:
                continue
            value = _as_float(bound)
            if value is None:
                return self._maybe()  # an integer bound float64 cannot hold exactly
            if math.isnan(value):
                return _nothing()
            if lower:
                lo = max(lo or (value, not inclusive), (value, not inclusive))
            else:
                hi = min(hi or (value, inclusive), (value, inclusive))
        interval: Interval = (
            None if lo is None else lo[0],
            lo is not None and not lo[1],
            None if hi is None else hi[0],
            hi is not None and hi[1],
        )
        return _exact(self._select(interval))


def _micros(text: Any) -> int | None:
    """A datetime string as microseconds since the epoch (exact, unlike a float)."""
    if not isinstance(text, str):
        return None
    moment = parse_datetime(text)
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


class DatetimeIndex(_SortedIndex):
    """Strings that parse as datetimes, keyed by their instant in int64 microseconds."""

    type = "datetime"
    dtype = np.int64

    def _key(self, value: Any) -> Any:
        return _micros(value)

    def match(self, test: ValueTest) -> Bounds:
        if isinstance(test, DatetimeRange):
            return _exact(self._select(self._interval(test)))
        if isinstance(test, MatchValue | MatchAny):
            # equal instants may be spelled differently, so these rows are only possible
            operands = [test.value] if isinstance(test, MatchValue) else list(test.any)
            keys = [_micros(op) for op in operands]
            return BitMap(), self._equal(key for key in keys if key is not None)
        if isinstance(test, MatchExcept):
            if not any(isinstance(v, str) for v in test.except_):
                return _exact(self.rows_with_value())  # every string passes
            return self._maybe()
        if isinstance(test, _NEVER_ON_STRINGS):
            return _nothing()
        return self._maybe()

    @staticmethod
    def _interval(test: DatetimeRange) -> Interval | None:
        lo, hi = _INT64_MIN, _INT64_MAX
        if test.gt is not None:
            lo = max(lo, (test.gt - _EPOCH) // _MICROSECOND + 1)
        if test.gte is not None:
            lo = max(lo, (test.gte - _EPOCH) // _MICROSECOND)
        if test.lt is not None:
            hi = min(hi, (test.lt - _EPOCH) // _MICROSECOND - 1)
        if test.lte is not None:
            hi = min(hi, (test.lte - _EPOCH) // _MICROSECOND)
        return (lo, True, hi, True) if lo <= hi else None


def _integer_index(field: str, spec: Mapping[str, Any]) -> FieldIndex:
    lookup, range_ = spec.get("lookup"), spec.get("range")
    return IntegerIndex(field, lookup=lookup is not False, range_=range_ is not False)


def _text_index(field: str, spec: Mapping[str, Any]) -> FieldIndex:
    # imported here: the text index builds on this module's inverted index
    from server.engine.text_index import TextIndex, parse_text_index

    return TextIndex(field, parse_text_index(spec))


_INDEX_CLASSES: dict[str, Callable[[str, Mapping[str, Any]], FieldIndex]] = {
    "keyword": lambda field, _spec: KeywordIndex(field),
    "integer": _integer_index,
    "float": lambda field, _spec: FloatIndex(field),
    "bool": lambda field, _spec: BoolIndex(field),
    "datetime": lambda field, _spec: DatetimeIndex(field),
    "uuid": lambda field, _spec: UuidIndex(field),
    "text": _text_index,
}


def make_field_index(field: str, spec: str | Mapping[str, Any]) -> FieldIndex:
    """An empty index over ``field`` for a ``field_schema``: a type name (one of
    ``FIELD_TYPES``) or the wire object with its options (``check_field_schema``)."""
    options: Mapping[str, Any] = {"type": spec} if isinstance(spec, str) else spec
    factory = _INDEX_CLASSES.get(options.get("type"))  # type: ignore[arg-type]
    if factory is not None and resolved_on_disk(options.get("memory"), options.get("on_disk")):
        # imported here: the on-disk indexes build on this module's classes
        from server.engine.payload_index_disk import make_disk_index

        factory = make_disk_index
    if factory is None:
        raise UnsupportedFeature(f"a {options.get('type')!r} payload index")
    try:
        return factory(field, options)
    except ValueError as exc:
        raise BadRequest(f"Wrong input: bad payload index field {field!r}: {exc}") from None


_COMMON_KEYS = frozenset({"type", "on_disk", "memory", "enable_hnsw"})
_SCHEMA_KEYS: dict[str, frozenset[str]] = {
    "keyword": _COMMON_KEYS | {"is_tenant", "prefix"},
    "uuid": _COMMON_KEYS | {"is_tenant"},
    "integer": _COMMON_KEYS | {"lookup", "range", "is_principal"},
    "float": _COMMON_KEYS | {"is_principal"},
    "datetime": _COMMON_KEYS | {"is_principal"},
    "bool": _COMMON_KEYS,
    "geo": _COMMON_KEYS,
}


def check_field_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A wire ``field_schema`` object (its ``type`` already known), its options checked
    as Qdrant checks them: every option of the type, of the right kind; a 400 naming
    the first bad one. Returned unchanged."""
    kind = schema["type"]
    if kind == "text":
        from server.engine.text_index import parse_text_index  # see _text_index

        parse_text_index(schema)
        return schema
    allowed = _SCHEMA_KEYS[kind]
    for key, value in schema.items():
        if key in ("nested", "scoring"):
            raise UnsupportedFeature(f"`{key}` in a payload index `field_schema`")
        if key not in allowed:
            raise BadRequest(f"Wrong input: unknown option `{key}` for a {kind} payload index")
        if key == "memory" and value not in MEMORY_TIERS:
            raise BadRequest(f"Wrong input: `memory` must be one of {', '.join(MEMORY_TIERS)}")
        if key not in ("type", "memory") and value is not None and not isinstance(value, bool):
            raise BadRequest(f"Wrong input: `{key}` must be true or false, got {value!r}")
    if schema.get("lookup") is False and schema.get("range") is False:
        raise BadRequest("Wrong input: an integer index needs `lookup` or `range`: both are false")
    return schema


def is_tenant_or_principal(spec: str | Mapping[str, Any]) -> bool:
    """Whether a field_schema marks its field as the one most filters select by."""
    return not isinstance(spec, str) and bool(spec.get("is_tenant") or spec.get("is_principal"))


def pinned_tenant(flt: Filter | None, schema: Mapping[str, str | Mapping[str, Any]]) -> str | None:
    """``field=value`` when ``flt`` keeps one tenant only: a top-level ``must`` matches
    one value of a keyword / uuid ``is_tenant`` field (the planner's tenant rule)."""
    for condition in () if flt is None else flt.must:
        if not isinstance(condition, FieldCondition) or not isinstance(condition.test, MatchValue):
            continue
        spec = schema.get(condition.key)
        if isinstance(spec, Mapping) and spec.get("is_tenant") is True:
            return f"{condition.key}={condition.test.value}"
    return None


# --- one segment's indexes and the filter evaluation ---------------------------------


@dataclass(frozen=True, slots=True)
class RowBounds:
    """What the indexes know about a filter: ``certain`` rows match for sure, every
    matching row is in ``possible`` (None: every row may match)."""

    certain: BitMap
    possible: BitMap | None


class PayloadIndexes:
    """All indexed fields of one segment.

    ``schema`` maps field -> type, or to a wire ``field_schema`` object with a
    ``type``; types Quiver cannot index yet (Qdrant's ``geo``) are skipped, which only
    means filters on those fields scan payloads. Fields marked ``is_tenant`` or
    ``is_principal`` are the ``leading`` ones: a top-level ``must`` on them is
    evaluated first, and when it leaves no row nothing else is evaluated.
    """

    def __init__(self, schema: Mapping[str, str | Mapping[str, Any]]) -> None:
        self._fields: dict[str, FieldIndex] = {}
        for field, spec in schema.items():
            schema_type = spec if isinstance(spec, str) else spec.get("type")
            if isinstance(schema_type, str) and schema_type in FIELD_TYPES:
                self._fields[field] = make_field_index(field, spec)
        self.leading = frozenset(
            self._fields[field].path.items
            for field, spec in schema.items()
            if field in self._fields and is_tenant_or_principal(spec)
        )
        self._by_path: dict[tuple[PathItem, ...], FieldIndex] = {
            index.path.items: index for index in self._fields.values()
        }

    @property
    def fields(self) -> Mapping[str, FieldIndex]:
        return self._fields

    def top_keys(self) -> frozenset[str] | None:
        """The top-level payload keys these indexes read (None: some path starts
        elsewhere, so every key may matter)."""
        firsts = [index.path.items[0] for index in self._fields.values()]
        if not all(isinstance(first, str) for first in firsts):
            return None
        return frozenset(str(first) for first in firsts)

    def add(self, row: int, payload: dict[str, Any]) -> None:
        for index in self._fields.values():
            index.add(row, payload)

    def remove(self, row: int, payload: dict[str, Any]) -> None:
        for index in self._fields.values():
            index.remove(row, payload)

    def move(self, src_row: int, dst_row: int, payload: dict[str, Any]) -> None:
        """The appendable segment's swap-remove: ``payload`` moves from src to dst."""
        for index in self._fields.values():
            index.move(src_row, dst_row, payload)

    def build(self, payloads: Sequence[dict[str, Any]]) -> None:
        for index in self._fields.values():
            index.build(payloads)

    def bind(self, flt: Filter) -> Filter:
        """``flt`` with its text conditions on text-indexed fields read through those
        indexes' tokenizers (``text_index``); the same filter when there are none."""
        texts = {path: i for path, i in self._by_path.items() if i.type == "text"}
        if not texts:
            return flt

        def bound(condition: Condition) -> Condition | None:
            if not isinstance(condition, FieldCondition):
                return None
            index = texts.get(condition.path.items)
            return None if index is None else index.bind_text(condition)

        return rewrite_conditions(flt, bound)

    def candidates(self, flt: Filter, row_count: int) -> BitMap | None:
        """A superset of the rows matching ``flt``, from indexed conditions only;
        None when the indexes do not constrain it (the caller scans every row)."""
        return self.bounds(flt, row_count).possible

    def bounds(self, flt: Filter, row_count: int) -> RowBounds:
        """``candidates`` plus the rows that surely match (those need no re-check)."""
        evaluator = _Evaluator(self._by_path, row_count)
        if self.leading:
            first = [c for c in flt.must if _path_of(c) in self.leading]
            if first:
                bounds = evaluator.filter(Filter(must=tuple(first)))
                if bounds.possible is not None and not bounds.possible:
                    return bounds  # an empty tenant: no other condition is looked at
        return evaluator.filter(flt)

    def at_path(self, path: JsonPath) -> FieldIndex | None:
        """The index of the field read at ``path``, if one is."""
        return self._by_path.get(path.items)

    def memory_bytes(self) -> int:
        return sum(index.memory_bytes() for index in self._fields.values())

    def points(self, field: str) -> int:
        return self._fields[field].points()


def _path_of(condition: Condition) -> tuple[PathItem, ...] | None:
    if isinstance(condition, FieldCondition | TextMatch):
        return condition.path.items
    return None


class _Evaluator:
    """One ``bounds`` call: conditions -> RowBounds over rows [0, row_count)."""

    def __init__(self, by_path: Mapping[tuple[PathItem, ...], FieldIndex], row_count: int) -> None:
        self._by_path = by_path
        self._row_count = row_count

    @cached_property
    def _every_row(self) -> BitMap:
        rows = BitMap()
        rows.add_range(0, self._row_count)
        return rows

    def filter(self, flt: Filter) -> RowBounds:
        parts = [self._condition(c) for c in flt.must]
        parts += [self._negate(self._condition(c)) for c in flt.must_not]
        if flt.should:
            parts.append(self._any([self._condition(c) for c in flt.should]))
        if flt.min_should is not None:
            parts.append(self._min_should(flt.min_should))
        bounds = self._all(parts)
        certain = bounds.certain & self._every_row
        if bounds.possible is None:
            return RowBounds(certain, None)
        return RowBounds(certain, bounds.possible & self._every_row)

    def _condition(self, condition: Condition) -> RowBounds:
        if isinstance(condition, Filter):
            return self.filter(condition)
        if isinstance(condition, TextMatch):
            index = self._by_path.get(condition.path.items)
            if index is not None and index.type == "text":
                return RowBounds(*index.match_text(condition))
        elif isinstance(condition, FieldCondition | IsEmpty | IsNull):
            index = self._by_path.get(condition.path.items)
            if index is not None and (
                not isinstance(condition, FieldCondition) or index.answers(condition.test)
            ):
                return self._field(index, condition)
        return RowBounds(BitMap(), None)  # has_id, nested, values_count, unindexed keys

    def _field(self, index: FieldIndex, condition: FieldCondition | IsEmpty | IsNull) -> RowBounds:
        if isinstance(condition, IsEmpty):
            empty = self._every_row - index.rows_not_empty()
            return RowBounds(empty, empty.copy())
        if isinstance(condition, IsNull):
            null = index.rows_with_null()
            return RowBounds(null, null.copy())
        certain, possible = index.match(condition.test)
        # values the index could not hold may pass the test; nulls never do
        others = index.rows_with_other_values(_kinds_passing(condition.test))
        return RowBounds(certain, possible | others)

    def _negate(self, bounds: RowBounds) -> RowBounds:
        certain = BitMap() if bounds.possible is None else self._every_row - bounds.possible
        possible = self._every_row - bounds.certain if bounds.certain else None
        return RowBounds(certain, possible)

    def _all(self, parts: list[RowBounds]) -> RowBounds:
        if not parts:
            return RowBounds(self._every_row.copy(), None)
        certain = BitMap.intersection(*(part.certain for part in parts))
        known = [part.possible for part in parts if part.possible is not None]
        return RowBounds(certain, BitMap.intersection(*known) if known else None)

    def _any(self, parts: list[RowBounds]) -> RowBounds:
        certain = _union([part.certain for part in parts])
        known = [part.possible for part in parts if part.possible is not None]
        return RowBounds(certain, _union(known) if len(known) == len(parts) else None)

    def _min_should(self, min_should: MinShould) -> RowBounds:
        parts = [self._condition(c) for c in min_should.conditions]
        count = min_should.min_count
        known = [part.possible for part in parts if part.possible is not None]
        needed = count - (len(parts) - len(known))  # unknown parts may all hold
        possible = None if needed <= 0 else _at_least(known, needed)
        return RowBounds(_at_least([part.certain for part in parts], count), possible)


def _at_least(maps: list[BitMap], count: int) -> BitMap:
    """Rows present in at least ``count`` (>= 1) of ``maps``."""
    if count > len(maps):
        return BitMap()
    if count == 1:
        return _union(maps)
    if count == len(maps):
        return BitMap.intersection(*maps)
    rows = np.concatenate([np.asarray(m.to_array(), dtype=np.int64) for m in maps])
    values, hits = np.unique(rows, return_counts=True)
    return _bitmap(values[hits >= count])
