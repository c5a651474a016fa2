"""Payload indexes with ``on_disk: true``: their bulk part lives in memory-mapped files.

Qdrant keeps an ``on_disk`` payload index in mmap'ed storage instead of the heap. Here
a segment's index is built in bulk (``build``: sealing, loading, ``set_schema``) and
then changed point by point. An on-disk index writes what ``build`` produced to
unlinked files in the temporary folder (``TMPDIR``; the index is rebuilt on start as
every payload index is, so the files need not outlive the process) and maps them
read-only with ``np.memmap``: the kernel pages them in on demand and may drop them
again, so the process heap never holds them. Lookups stay vectorised over the maps::

    inverted (keyword, uuid, bool, text)   vocabulary (sorted keys), offsets, rows by key
    sorted (integer, float, datetime) values ascending, their rows

Changes after ``build`` go to the in-memory structures of the parent class (a small
delta), and ``_gone`` remembers the rows whose mapped entries no longer hold: every
answer is (mapped rows - gone) | delta rows. The row flags (null, empty, other kinds)
stay in memory as compressed bitmaps, as does the per-row key bookkeeping of the
payload column; the postings / values themselves, the bulk of an index, do not.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from server.engine.payload_index import (
    BoolIndex,
    DatetimeIndex,
    FieldIndex,
    FloatIndex,
    IntegerIndex,
    Interval,
    KeywordIndex,
    UuidIndex,
    _bitmap,
    _FieldIndexBase,
    _InvertedIndex,
    _SortedIndex,
)
from server.engine.text_index import TextIndex, TextIndexParams, parse_text_index

_SPILL_AT = 4096  # delta entries kept in memory before they join the maps

DISK_TYPES = frozenset({"keyword", "uuid", "bool", "integer", "float", "datetime", "text"})


def spill(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` written to an unlinked temporary file and mapped back read-only (an
    empty array stays as it is: there is nothing to map)."""
    if values.size == 0:
        return values
    with tempfile.TemporaryFile(prefix="quiver-index-") as file:
        np.ascontiguousarray(values).tofile(file)
        file.flush()
        return np.memmap(file, dtype=values.dtype, mode="r", shape=values.shape)


def mapped_bytes(*arrays: npt.NDArray[Any]) -> int:
    """Bytes of ``arrays`` that live in file maps, not on the heap."""
    return sum(a.nbytes for a in arrays if isinstance(a, np.memmap))


def _selected(rows: npt.NDArray[np.bool_], gone: BitMap) -> npt.NDArray[np.bool_]:
    """The row mask ``rows`` with the gone rows cleared."""
    if not gone:
        return rows
    out = rows.copy()
    stale = np.asarray(gone.to_array(), dtype=np.int64)
    out[stale[stale < len(out)]] = False
    return out


class _StaleRows(_FieldIndexBase):
    """What both on-disk kinds share: a row deleted or moved since the maps were written
    joins ``_gone``, and its mapped entries are left out of every answer."""

    _gone: BitMap
    _drows: npt.NDArray[np.int64]

    def _delete(self, row: int, keys: list[Any]) -> None:
        self._gone.add(row)
        super()._delete(row, keys)

    def _relabel(self, src_row: int, dst_row: int, keys: list[Any]) -> None:
        self._delete(src_row, keys)
        if keys:
            self._insert(dst_row, keys)

    def _keys_bytes(self) -> int:
        return super()._keys_bytes() + sys.getsizeof(self._gone)

    def _kept(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``rows`` are not gone."""
        return ~np.isin(rows, np.asarray(self._gone.to_array(), dtype=np.int64))

    def _live(self) -> npt.NDArray[np.bool_]:
        """Which mapped entries still hold."""
        return self._kept(self._drows)


class _DiskInverted(_StaleRows, _InvertedIndex):
    """value -> rows postings in three maps: sorted vocabulary, offsets, rows."""

    def __init__(self, field: str, *options: Any) -> None:
        super().__init__(field, *options)  # a text index's params, for DiskTextIndex
        self._vocab: npt.NDArray[Any] = np.empty(0)
        self._offsets = np.zeros(1, dtype=np.int64)
        self._kid = np.empty(0, dtype=np.int64)
        self._drows = np.empty(0, dtype=np.int64)
        self._gone, self._pending = BitMap(), 0

    def _bulk(self, rows: Any, keys: Any) -> None:
        super()._bulk([], [])
        self._gone, self._pending = BitMap(), 0
        if not len(keys):
            return
        vocab, kid = np.unique(np.asarray(keys), return_inverse=True)
        row_array = np.array(rows, dtype=np.int64)
        # one posting per (value, row), as the in-memory sets keep: a row whose array
        # repeats a value ([true, true]) is listed once; sorted by value, then row
        pairs = np.unique(np.stack([kid.astype(np.int64), row_array], axis=1), axis=0)
        self._kid, self._drows = spill(pairs[:, 0].copy()), spill(pairs[:, 1].copy())
        self._offsets = spill(np.searchsorted(self._kid, np.arange(len(vocab) + 1)))
        self._vocab = spill(vocab)

    def _insert(self, row: int, keys: list[Any]) -> None:
        super()._insert(row, keys)
        self._pending += len(keys)
        if self._pending > max(_SPILL_AT, len(self._drows)):
            self._settle()

    def _settle(self) -> None:
        """Move the delta into new maps (amortised: the delta is as big as the maps)."""
        live = self._live()
        pairs = [(key, row) for key, rows in self._postings.items() for row in rows]
        parts = [np.asarray(self._vocab[self._kid[live]])] if live.any() else []
        if pairs:
            parts.append(np.array([key for key, _ in pairs]))
        rows = np.concatenate([self._drows[live], np.array([r for _, r in pairs], dtype=np.int64)])
        self._bulk(rows, np.concatenate(parts) if parts else [])

    def mapped_bytes(self) -> int:
        return mapped_bytes(self._vocab, self._offsets, self._kid, self._drows)

    def _disk_rows(self, ids: Iterable[int]) -> BitMap:
        offsets = self._offsets
        parts = [self._drows[offsets[i] : offsets[i + 1]] for i in ids]
        if not parts:
            return BitMap()
        return _bitmap(np.concatenate(parts)) - self._gone

    def entries(self) -> list[tuple[Any, int]]:
        keep = self._live()
        keys = self._vocab[self._kid[keep]].tolist()
        disk = list(zip(keys, self._drows[keep].tolist(), strict=True))
        return sorted([*disk, *super().entries()])

    def value_counts(self, rows: npt.NDArray[np.bool_]) -> dict[Any, int]:
        counts = super().value_counts(rows)
        selected = _selected(rows, self._gone)
        inside = self._drows < len(selected)
        picked = self._kid[inside][selected[self._drows[inside]]]
        disk = np.bincount(picked, minlength=len(self._vocab))
        for i in np.flatnonzero(disk).tolist():
            key = self._vocab[i].item()
            counts[key] = counts.get(key, 0) + int(disk[i])
        return counts

    def _rows_of(self, keys: Iterable[Any]) -> BitMap:
        wanted = set(keys)
        rows = super()._rows_of(wanted)
        if not wanted or not len(self._vocab):
            return rows
        probe = np.array(sorted(wanted))
        at = np.searchsorted(self._vocab, probe).clip(0, len(self._vocab) - 1)
        found = at[self._vocab[at] == probe]
        return rows | self._disk_rows(found.tolist())

    def _rows_where(self, check: Callable[[Any], bool]) -> BitMap:
        ids = [i for i, key in enumerate(self._vocab.tolist()) if check(key)]
        return super()._rows_where(check) | self._disk_rows(ids)


class DiskKeywordIndex(_DiskInverted, KeywordIndex):
    pass


class DiskUuidIndex(_DiskInverted, UuidIndex):
    pass


class DiskBoolIndex(_DiskInverted, BoolIndex):
    pass


class DiskTextIndex(_DiskInverted, TextIndex):
    """Token postings in the maps (the vocabulary is the sorted tokens); the word
    sequences kept for ``phrase_matching`` stay in memory."""

    def __init__(self, field: str, params: TextIndexParams) -> None:
        super().__init__(field, params)


class _DiskSorted(_StaleRows, _SortedIndex):
    """(value, row) pairs in two maps, sorted by value (rows ascending within one)."""

    def __init__(self, field: str, **options: bool) -> None:
        self._dvalues: npt.NDArray[Any] = np.empty(0, dtype=self.dtype)
        self._drows = np.empty(0, dtype=np.int64)
        self._gone = BitMap()
        super().__init__(field, **options)

    def _bulk(self, rows: Any, keys: Any) -> None:
        super()._bulk([], [])
        self._gone = BitMap()
        values = np.asarray(keys, dtype=self.dtype)
        row_array = np.asarray(rows, dtype=np.int64)
        order = np.lexsort((row_array, values))
        self._dvalues, self._drows = spill(values[order]), spill(row_array[order])

    def _insert(self, row: int, keys: list[Any]) -> None:
        super()._insert(row, keys)
        if self._size > max(_SPILL_AT, len(self._drows)):
            self._settle()

    def _settle(self) -> None:
        """Move the delta into new maps (amortised: the delta is as big as the maps)."""
        live = self._live()
        slots = np.flatnonzero(self._alive[: self._size])
        values = np.concatenate([self._dvalues[live], self._values[slots]])
        self._bulk(np.concatenate([self._drows[live], self._rows[slots]]), values)

    def mapped_bytes(self) -> int:
        return mapped_bytes(self._dvalues, self._drows)

    def entries(self) -> list[tuple[Any, int]]:
        keep = self._live()
        disk = zip(self._dvalues[keep].tolist(), self._drows[keep].tolist(), strict=True)
        return sorted([*disk, *super().entries()])

    def value_counts(self, rows: npt.NDArray[np.bool_]) -> dict[Any, int]:
        counts = super().value_counts(rows)
        selected = _selected(rows, self._gone)
        inside = np.flatnonzero(self._drows < len(selected))
        picked = inside[selected[self._drows[inside]]]
        if picked.size:
            pairs = np.unique(np.stack([self._dvalues[picked], self._drows[picked]]).T, axis=0)
            values, hits = np.unique(pairs[:, 0], return_counts=True)
            for value, hit in zip(values.tolist(), hits.tolist(), strict=True):
                counts[value] = counts.get(value, 0) + hit
        return counts

    def _select(self, interval: Interval | None) -> BitMap:
        rows = super()._select(interval)
        if interval is None or not len(self._dvalues):
            return rows
        lo, lo_inclusive, hi, hi_inclusive = interval
        start = 0
        if lo is not None:
            start = int(self._dvalues.searchsorted(lo, "left" if lo_inclusive else "right"))
        stop = len(self._dvalues)
        if hi is not None:
            stop = int(self._dvalues.searchsorted(hi, "right" if hi_inclusive else "left"))
        if start >= stop:
            return rows
        return rows | (_bitmap(self._drows[start:stop]) - self._gone)

    def _not_in(self, keys: Iterable[int | float]) -> BitMap:
        wanted = list(keys)  # often a generator: read it once
        rows = super()._not_in(wanted)
        outside = ~np.isin(self._dvalues, np.array(wanted, dtype=self.dtype))
        return rows | (_bitmap(self._drows[outside]) - self._gone)

    def ordered(
        self, start: float | None, descending: bool
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None:
        """The mapped run's slice from ``start`` merged with the delta's (both sorted)."""
        delta = super().ordered(start, descending)
        assert delta is not None
        delta_values, delta_rows = delta
        if descending:
            delta_values, delta_rows = delta_values[::-1], delta_rows[::-1]
        begin, end = 0, len(self._dvalues)
        if start is not None and descending:
            end = int(self._dvalues.searchsorted(start, "right"))
        elif start is not None:
            begin = int(self._dvalues.searchsorted(start, "left"))
        values = np.asarray(self._dvalues[begin:end])
        rows = np.asarray(self._drows[begin:end])
        if self._gone:
            live = self._kept(rows)
            values, rows = values[live], rows[live]
        all_values = np.concatenate([values, delta_values])
        all_rows = np.concatenate([rows, delta_rows])
        order = np.argsort(all_values, kind="stable")
        if descending:
            order = order[::-1]
        return all_values[order], all_rows[order]


class DiskIntegerIndex(_DiskSorted, IntegerIndex):
    pass


class DiskFloatIndex(_DiskSorted, FloatIndex):
    pass


class DiskDatetimeIndex(_DiskSorted, DatetimeIndex):
    pass


def make_disk_index(field: str, options: Mapping[str, Any]) -> FieldIndex:
    """The on-disk index for ``options["type"]`` (one of ``DISK_TYPES``)."""
    kind = options["type"]
    if kind == "text":
        return DiskTextIndex(field, parse_text_index(options))
    if kind == "integer":
        lookup, range_ = options.get("lookup"), options.get("range")
        return DiskIntegerIndex(field, lookup=lookup is not False, range_=range_ is not False)
    classes: dict[str, Callable[[str], FieldIndex]] = {
        "keyword": DiskKeywordIndex,
        "uuid": DiskUuidIndex,
        "bool": DiskBoolIndex,
        "float": DiskFloatIndex,
        "datetime": DiskDatetimeIndex,
    }
    return classes[kind](field)
