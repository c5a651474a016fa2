"""A sealed segment's point ids as arrays: 8 to 20 bytes a point, not ~140.

A Python list of ``int`` ids plus a ``dict`` from id to row costs some 140 bytes a
point (an int object, a list slot, a dict entry and a boxed row number); at 10M points
that is 1.4 GB next to the index. Sealed rows never move, so their ids fit arrays:

* ``values[row]``: the integer id, or for a UUID row its position in the side table
  ``uuid_hi`` / ``uuid_lo`` (the UUID's two 64-bit halves; ``is_uuid`` marks those rows);
* ``order``: rows sorted by (kind, high, low), and those keys in that order
  (``sorted_lo``, ``sorted_hi``), so a lookup is a binary search (``searchsorted``);
  scroll's sort keys come from the same arrays. Integer ids already ascending by row
  (a build of points uploaded in id order) need neither: ``values`` is the sorted key
  and the order is the identity, 8 bytes a point in all.

An id may sit on several rows (a merged segment keeps a tombstoned copy next to the
live one): :meth:`rows_of` returns them all and the segment picks the live one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

import numpy as np

from server.engine.point_ids import PointId, point_id_to_text


class IdColumn(Sequence[PointId]):
    """Immutable point ids of a sealed segment, row-aligned, with a sorted lookup."""

    def __init__(self, ids: Sequence[PointId]) -> None:
        count = len(ids)
        if all(type(i) is int for i in ids):
            self.values = np.array(ids, dtype=np.uint64).reshape(count)
            self.is_uuid: np.ndarray | None = None
            self.uuid_hi = self.uuid_lo = np.zeros(0, dtype=np.uint64)
        else:
            self._mixed(ids)
        self._index()

    def _index(self) -> None:
        """The sorted lookup over ``values`` (and the UUID tables)."""
        count = len(self.values)
        if self.is_uuid is None and bool(np.all(self.values[1:] >= self.values[:-1])):
            self._order: np.ndarray | None = None  # rows already sorted: no second copy
            self._ints, self.sorted_lo, self.sorted_hi = count, self.values, self.uuid_hi
            return
        self._order = self._sorted_rows()
        kind, hi, lo = self.sort_keys(self._order)
        self._ints = int(np.count_nonzero(kind == 0))
        self.sorted_lo = lo
        """Keys in ``order``: the integer ids, then the UUIDs' low halves."""
        self.sorted_hi = hi[self._ints :].copy()  # a view would keep every row's zero
        """The UUIDs' high halves, in ``order``."""

    ARRAYS = ("values", "order", "sorted_lo", "sorted_hi", "uuid_hi", "uuid_lo", "is_uuid")
    """The arrays a column is made of (``is_uuid`` absent when every id is an integer):
    what ``segment_rows.py`` writes to a segment's side file and maps back."""

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> IdColumn:
        """A column made of ``arrays`` as they are (e.g. read-only mappings of a file
        several processes share), not computed again from the ids."""
        column = cls.__new__(cls)
        for name in cls.ARRAYS:
            # ``order`` is a property over ``_order`` (None: rows already in key order)
            setattr(column, "_order" if name == "order" else name, arrays.get(name))
        column._ints = len(column.sorted_lo) - len(column.sorted_hi)
        return column

    @classmethod
    def from_keys(cls, kind: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> IdColumn:
        """The column of the ids whose :meth:`sort_keys` are ``(kind, hi, lo)``, row by
        row. A build gathers its rows' ids this way from its sources' columns, with no
        Python object per point: a list of a million ints, made and dropped by every
        build, left the small-object allocator's arenas pinned (issue 24)."""
        column = cls.__new__(cls)
        uuid_rows = kind.astype(bool)
        values = lo.astype(np.uint64)  # a copy: the column owns its arrays
        if uuid_rows.any():
            column.is_uuid = uuid_rows
            column.uuid_hi, column.uuid_lo = hi[uuid_rows], lo[uuid_rows]
            values[uuid_rows] = np.arange(len(column.uuid_hi), dtype=np.uint64)
        else:
            column.is_uuid = None
            column.uuid_hi = column.uuid_lo = np.zeros(0, dtype=np.uint64)
        column.values = values
        column._index()
        return column

    @classmethod
    def joined(cls, keys: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> IdColumn:
        """One column of several columns' ``sort_keys``, in order."""
        if not keys:
            return cls([])
        kind, hi, lo = (np.concatenate(part) for part in zip(*keys, strict=True))
        return cls.from_keys(kind, hi, lo)

    def subset(self, rows: np.ndarray) -> IdColumn:
        """The column of ``rows``, in that order."""
        return IdColumn.from_keys(*self.sort_keys(rows))

    def texts(self, chunk: int = 10_000) -> Iterator[str]:
        """Every id as storage text (``point_id_to_text``), made ``chunk`` at a time."""
        for start in range(0, len(self), chunk):
            rows = np.arange(start, min(len(self), start + chunk))
            yield from map(point_id_to_text, self.take(rows))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of ``ARRAYS`` this column holds, by name."""
        found = {name: getattr(self, name) for name in self.ARRAYS}
        return {name: array for name, array in found.items() if array is not None}

    def _mixed(self, ids: Sequence[PointId]) -> None:
        is_uuid = np.fromiter((isinstance(i, str) for i in ids), dtype=bool, count=len(ids))
        uuids = [uuid.UUID(str(i)).int for i in ids if isinstance(i, str)]
        self.uuid_hi = np.array([u >> 64 for u in uuids], dtype=np.uint64)
        self.uuid_lo = np.array([u & 0xFFFFFFFFFFFFFFFF for u in uuids], dtype=np.uint64)
        values = np.zeros(len(ids), dtype=np.uint64)
        values[~is_uuid] = np.array([i for i in ids if isinstance(i, int)], dtype=np.uint64)
        values[is_uuid] = np.arange(len(uuids), dtype=np.uint64)
        self.values, self.is_uuid = values, is_uuid

    def _sorted_rows(self) -> np.ndarray:
        """Rows by (kind, high, low), stable, as int32 when that holds every row."""
        kind, hi, lo = self.sort_keys(np.arange(len(self.values)))
        if self.is_uuid is None:
            order = np.argsort(lo, kind="stable")
        else:
            order = np.lexsort((lo, hi, kind))
        return order.astype(np.int32 if len(order) < 2**31 else np.int64)

    @property
    def order(self) -> np.ndarray:
        """Rows by key (built on demand when the rows already are in key order)."""
        if self._order is None:
            return np.arange(len(self.values), dtype=np.int32)
        return self._order

    def _rows_at(self, start: int, end: int) -> np.ndarray:
        """The rows at positions ``start:end`` of the key order."""
        if self._order is None:
            return np.arange(start, end, dtype=np.int64)
        return self._order[start:end].astype(np.int64)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, row: int) -> PointId:  # type: ignore[override]
        value = int(self.values[row])
        if self.is_uuid is None or not self.is_uuid[row]:
            return value
        return str(uuid.UUID(int=(int(self.uuid_hi[value]) << 64) | int(self.uuid_lo[value])))

    def __iter__(self) -> Iterator[PointId]:
        if self.is_uuid is None:
            return iter(self.values.tolist())
        return (self[row] for row in range(len(self.values)))

    def take(self, rows: Sequence[int] | np.ndarray) -> list[PointId]:
        """The ids of many rows (one numpy gather when every id is an integer)."""
        if self.is_uuid is None:
            picked: list[PointId] = self.values[np.asarray(rows, dtype=np.int64)].tolist()
            return picked
        return [self[int(row)] for row in rows]

    def sort_keys(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kind, high 64 bits, low 64 bits) of ``rows``: integers before UUIDs."""
        values = self.values[rows]
        if self.is_uuid is None:
            zeros = np.zeros(len(values), dtype=np.uint64)
            return zeros.astype(np.uint8), zeros, values
        uuid_rows = self.is_uuid[rows]
        kind = uuid_rows.astype(np.uint8)
        hi = np.zeros(len(values), dtype=np.uint64)
        lo = values.copy()
        hi[uuid_rows] = self.uuid_hi[values[uuid_rows]]
        lo[uuid_rows] = self.uuid_lo[values[uuid_rows]]
        return kind, hi, lo

    def rows_of(self, point_id: PointId) -> np.ndarray:
        """Every row holding ``point_id`` (usually one; none when absent): binary
        searches in the sorted keys (integers first, then UUIDs by high, low half)."""
        ints = self._ints
        if isinstance(point_id, int):
            lo = np.uint64(point_id)
            keys = self.sorted_lo[:ints]
            start = int(np.searchsorted(keys, lo, side="left"))
            end = int(np.searchsorted(keys, lo, side="right"))
            return self._rows_at(start, end)
        if self.is_uuid is None:
            return _NO_ROWS
        value = uuid.UUID(point_id).int
        hi, lo = np.uint64(value >> 64), np.uint64(value & 0xFFFFFFFFFFFFFFFF)
        first = ints + int(np.searchsorted(self.sorted_hi, hi, side="left"))
        last = ints + int(np.searchsorted(self.sorted_hi, hi, side="right"))
        window = self.sorted_lo[first:last]
        start = first + int(np.searchsorted(window, lo, side="left"))
        end = first + int(np.searchsorted(window, lo, side="right"))
        return self._rows_at(start, end)

    def int_rows(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For many non-negative integer ids at once (``rows_of`` in two vectorised
        binary searches): each id's first row, and how many rows hold it (0: absent,
        that row means nothing; more than 1: older copies beside the live one)."""
        keys = self.sorted_lo[: self._ints]
        if not len(keys):
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=np.int64)
        wanted = np.array(ids, dtype=np.uint64)
        first = np.searchsorted(keys, wanted, side="left")
        counts = np.searchsorted(keys, wanted, side="right") - first
        positions = np.minimum(first, len(keys) - 1).astype(np.int64)
        rows = positions if self._order is None else self._order[positions].astype(np.int64)
        return rows, counts

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = [self.values, self.sorted_hi, self.uuid_hi, self.uuid_lo]
        if self._order is not None:
            arrays += [self._order, self.sorted_lo]
        if self.is_uuid is not None:
            arrays.append(self.is_uuid)
        return sum(a.nbytes for a in arrays)


class IdTexts(Sequence[str]):
    """A column's ids as storage text, made as they are read (a new segment's manifest
    is written from it without a list of every id as a string)."""

    def __init__(self, column: IdColumn) -> None:
        self._column = column

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, row: int) -> str:  # type: ignore[override]
        return point_id_to_text(self._column[row])

    def __iter__(self) -> Iterator[str]:
        return self._column.texts()


_NO_ROWS = np.zeros(0, dtype=np.int64)
