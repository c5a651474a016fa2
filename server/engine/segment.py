"""Segments: where a collection's points live in memory.

Every segment keeps rows of point ids, payloads and versions plus each point id's
sort key (for scroll order), and exposes them to filters (``FilterSource``). Two kinds:

* ``AppendableSegment`` takes new points. Rows stay compact (a delete moves the
  last row into the hole) and search is exact, one native call over a contiguous
  matrix.
* ``SealedSegment`` (``sealed_segment.py``) is immutable in its rows: deletes and
  overwrites become tombstones, and each named vector is served by an index backend.

Segments are not thread-safe: ``Collection`` holds its lock around them.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.base import SearchParams
from index.datatypes import Datatype
from index.flat import FlatIndex, FlatParams, exact_search
from index.graph_walk import CustomScore, exact_custom
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, Ragged, exact_maxsim, token_rows
from index.registry import AnyIndex, create_sparse_index
from index.sparse import SparseIndex, SparseRows, SparseVector
from server.engine.filters import Filter, HasId
from server.engine.payload_column import PayloadColumn, PayloadReader, payload_column
from server.engine.payload_index import PayloadIndexes, rows_mask
from server.engine.point_ids import PointId
from server.storage.mapped_matrix import MappedMatrix

PayloadSchema = Mapping[str, str | Mapping[str, Any]]

_INITIAL_CAPACITY = 1024


@dataclass(slots=True)
class PointBatch:
    """Validated points with unique ids, vectors already prepared for each metric.

    ``vectors[name]`` is a ``(len(ids), dim)`` float32 matrix for a dense name,
    ``tokens[name]`` a ragged set per point for a multi-vector name (empty where
    absent), ``sparse[name]`` CSR rows per sparse name (empty where absent), and
    ``present[name]`` says which rows actually carry that named vector.
    """

    ids: list[PointId]
    vectors: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    payloads: list[dict[str, Any]]
    tokens: dict[str, Ragged] = field(default_factory=dict)
    sparse: dict[str, SparseRows] = field(default_factory=dict)


def sort_keys_of(ids: Sequence[PointId]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sort_key`` of many ids as three arrays; integer ids (the common bulk case) in
    one numpy conversion."""
    if all(type(i) is int for i in ids):
        n = len(ids)
        lo = np.array(ids, dtype=np.uint64)
        return np.zeros(n, dtype=np.uint8), np.zeros(n, dtype=np.uint64), lo
    keys = [sort_key(i) for i in ids]
    kind = np.array([k[0] for k in keys], dtype=np.uint8)
    hi = np.array([k[1] for k in keys], dtype=np.uint64)
    lo = np.array([k[2] for k in keys], dtype=np.uint64)
    return kind, hi, lo


def sort_key(point_id: PointId) -> tuple[int, int, int]:
    """(kind, high 64 bits, low 64 bits): integers sort before UUIDs, as in Qdrant."""
    if isinstance(point_id, int):
        return 0, 0, point_id
    value = uuid.UUID(point_id).int
    return 1, value >> 64, value & 0xFFFFFFFFFFFFFFFF


class SegmentRows:
    """Row bookkeeping shared by both segment kinds, including the payload indexes.

    Payloads live in a ``PayloadColumn``: in memory, or (given a ``payload_reader``,
    ``on_disk_payload``) in the point store, read back in batches (``payload_column``).
    """

    def __init__(
        self, schema: PayloadSchema | None = None, payload_reader: PayloadReader | None = None
    ) -> None:
        self.payload_indexes = PayloadIndexes(schema or {})
        self.payload_reader = payload_reader
        self._ids: list[PointId] = []
        self._payloads: PayloadColumn = payload_column(payload_reader, self._ids)
        self._payloads.keep_keys(self.payload_indexes.top_keys(), [])
        self._versions: list[int] = []
        self._row_of: dict[PointId, int] = {}
        self._sort_kind = np.zeros(_INITIAL_CAPACITY, dtype=np.uint8)
        self._sort_hi = np.zeros(_INITIAL_CAPACITY, dtype=np.uint64)
        self._sort_lo = np.zeros(_INITIAL_CAPACITY, dtype=np.uint64)

    # FilterSource: rows include tombstoned ones in a sealed segment; callers AND
    # the mask with ``live_mask()``.
    @property
    def ids(self) -> Sequence[PointId]:
        return self._ids

    @property
    def payloads(self) -> PayloadColumn:
        return self._payloads

    def payloads_at(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        """The payloads of many rows at once (one store read when on disk)."""
        return self._payloads.many(rows)

    @property
    def versions(self) -> Sequence[int] | np.ndarray:
        return self._versions

    def row_count(self) -> int:
        return len(self._ids)

    def row_of(self, point_id: PointId) -> int | None:
        """The live row holding ``point_id``, if this segment has it."""
        return self._row_of.get(point_id)

    def payload(self, row: int) -> dict[str, Any]:
        return self._payloads[row]

    def version(self, row: int) -> int:
        return self._versions[row]

    def set_payload(self, row: int, payload: dict[str, Any], version: int) -> None:
        self._set_payload_only(row, payload)
        self._versions[row] = version

    def _set_payload_only(self, row: int, payload: dict[str, Any]) -> None:
        self.payload_indexes.remove(row, self._payloads.kept(row))
        self.payload_indexes.add(row, payload)
        self._payloads.set(row, payload)

    def vector_present(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def _has_id_rows(self, flt: Filter) -> np.ndarray | None:
        """A top-level ``must: has_id`` bounds the rows through the id map, so its cost
        follows the number of ids listed, not the segment size."""
        for condition in flt.must:
            if isinstance(condition, HasId):
                found = (self.row_of(i) for i in condition.ids)
                rows = {row for row in found if row is not None}
                return np.fromiter(sorted(rows), dtype=np.int64, count=len(rows))
        return None

    def set_schema(self, schema: PayloadSchema) -> None:
        """Index exactly the fields of ``schema`` (built from the current payloads)."""
        indexes = PayloadIndexes(schema)
        payloads = self._payloads.many(range(self.row_count()))
        indexes.build(payloads)
        self._payloads.keep_keys(indexes.top_keys(), payloads)
        self.payload_indexes = indexes

    def filter_mask(self, flt: Filter, live: np.ndarray) -> tuple[np.ndarray, int | None]:
        """Live rows matching ``flt``, and the candidate count the indexes estimated.

        Indexed conditions give bitmaps: rows certain to match skip the payload scan,
        and only the possible-but-uncertain rows are checked against the full filter."""
        count = self.row_count()
        flt = self.payload_indexes.bind(flt)
        bounds = self.payload_indexes.bounds(flt, count)
        by_id = self._has_id_rows(flt)
        if bounds.possible is None and not bounds.certain and by_id is None:
            return flt.mask(self) & live, None
        if bounds.possible is None:
            possible = np.arange(count)
        else:
            possible = np.asarray(bounds.possible.to_array(), dtype=np.int64)
        if by_id is not None:
            possible = np.intersect1d(possible, by_id, assume_unique=True)
        estimated = len(possible)
        possible = possible[live[possible]]
        certain = rows_mask(bounds.certain, count)[possible]
        mask = np.zeros(count, dtype=bool)
        mask[possible[certain]] = True
        check = possible[~certain]
        if check.size:
            mask[check[flt.mask_of(self, check)]] = True
        return mask, estimated

    def sort_keys(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._sort_kind[rows], self._sort_hi[rows], self._sort_lo[rows]

    def _grow_sort_keys(self, rows: int) -> None:
        if rows > self._sort_kind.shape[0]:
            capacity = max(rows, 2 * self._sort_kind.shape[0])
            self._sort_kind = _grown(self._sort_kind, capacity)
            self._sort_hi = _grown(self._sort_hi, capacity)
            self._sort_lo = _grown(self._sort_lo, capacity)

    def _append_rows(
        self,
        ids: Sequence[PointId],
        payloads: Sequence[dict[str, Any]],
        versions: Sequence[int],
        *,
        index: bool = True,
    ) -> None:
        """Append many new rows at once (ids not yet in this segment)."""
        start, n = len(self._ids), len(ids)
        self._grow_sort_keys(start + n)
        self._ids.extend(ids)
        self._payloads.extend(payloads)
        self._versions.extend(versions)
        self._row_of.update(zip(ids, range(start, start + n), strict=True))
        kind, hi, lo = sort_keys_of(ids)
        self._sort_kind[start : start + n] = kind
        self._sort_hi[start : start + n] = hi
        self._sort_lo[start : start + n] = lo
        if index and self.payload_indexes.fields:
            for offset, payload in enumerate(payloads):
                self.payload_indexes.add(start + offset, payload)


class VectorColumn:
    """One named vector of every row, as a growable dense matrix of the vector's
    datatype (float16 / uint8 rows take 2 / 1 bytes a dimension; written rows already
    hold values of that type, so the narrower array keeps them exactly).

    Rows past the live count are kept zeroed and not ``present``. Given a ``folder``
    (an ``on_disk`` vector), the matrix lives in a memory-mapped scratch file there
    (``MappedMatrix``), not in the heap.
    """

    def __init__(
        self,
        dim: int,
        distance: Distance,
        datatype: Datatype = "float32",
        folder: Path | None = None,
    ) -> None:
        self.dim = dim
        self.distance = distance
        self.dtype = np.dtype(datatype)
        self._folder = folder
        self._file = None if folder is None else MappedMatrix(folder, dim, self.dtype, 0)
        self.data = np.zeros((0, dim), dtype=self.dtype)
        self.present = np.zeros(0, dtype=bool)
        self.reserve(_INITIAL_CAPACITY)

    @property
    def mapped(self) -> bool:
        return self._file is not None

    def floats(self, count: int) -> np.ndarray:
        """The first ``count`` rows as float32 (a copy for a narrower datatype)."""
        return self.data[:count].astype(np.float32, copy=False)

    def reserve(self, rows: int) -> None:
        if rows <= self.data.shape[0]:
            return
        capacity = max(rows, 2 * self.data.shape[0])
        if self._file is not None:  # the file keeps its rows as it grows
            self.data, self.present = self._file.resize(capacity), _grown(self.present, capacity)
            return
        data = np.zeros((capacity, self.dim), dtype=self.dtype)
        data[: self.data.shape[0]] = self.data
        self.data, self.present = data, _grown(self.present, capacity)

    def exact_index(self, count: int) -> FlatIndex:
        """The first ``count`` rows as an exact index, for sealing: a mapped float32
        column hands its file over (no copy; the tail then starts a new one), a mapped
        narrower one is widened into a new scratch file."""
        if self._folder is None:
            flat = FlatIndex(self.dim, self.distance)
            flat.add(self.floats(count))
            return flat
        rows = self.data[:count]
        if self.dtype != np.float32:
            rows = MappedMatrix.holding(self._folder, self.floats(count))
        return FlatIndex.over(rows, self.distance, FlatParams(on_disk=True))

    def move(self, src: int, dst: int) -> None:
        """Row ``src`` overwrites row ``dst``; ``src`` is then cleared."""
        self.data[dst] = self.data[src]
        self.present[dst] = self.present[src]
        self.clear(src)

    def clear(self, row: int) -> None:
        self.data[row] = 0.0
        self.present[row] = False


class TokenColumn:
    """One multi-vector name of every row: a growable token buffer of the vector's
    datatype (float16 / uint8 tokens already hold values of that type) plus each row's
    (start, length). Overwrites append and deletes move rows, leaving the buffer out of
    row order; :meth:`view` repacks it (one gather) before the next search. Given a
    ``folder`` (an ``on_disk`` vector), each token buffer is a memory-mapped scratch file
    there (``MappedMatrix``), not heap memory."""

    def __init__(
        self,
        dim: int,
        distance: Distance,
        datatype: Datatype = "float32",
        folder: Path | None = None,
    ) -> None:
        self.dim = dim
        self.distance = distance
        self.dtype = np.dtype(datatype)
        self._folder = folder
        self.data = self._buffer(_INITIAL_CAPACITY)
        self.starts = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self.lengths = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self.present = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.used = 0
        self.packed = True
        self._repack = threading.Lock()

    def _buffer(self, tokens: int) -> np.ndarray:
        """A new zeroed token buffer: in the heap, or in a new scratch file."""
        if self._folder is None:
            return np.zeros((tokens, self.dim), dtype=self.dtype)
        return MappedMatrix(self._folder, self.dim, self.dtype, tokens).array

    @property
    def mapped(self) -> bool:
        return self._folder is not None

    def reserve(self, rows: int) -> None:
        if rows > self.starts.shape[0]:
            capacity = max(rows, 2 * self.starts.shape[0])
            self.starts, self.lengths = (
                _grown(self.starts, capacity),
                _grown(self.lengths, capacity),
            )
            self.present = _grown(self.present, capacity)

    def write(self, rows: np.ndarray, sets: Ragged, present: np.ndarray, count: int) -> None:
        """Store ``sets`` at ``rows``; rows below ``count`` existed before (overwrites)."""
        need = self.used + len(sets.tokens)
        if need > self.data.shape[0]:
            data = self._buffer(max(need, 2 * self.data.shape[0]))
            data[: self.used] = self.data[: self.used]
            self.data = data
        self.data[self.used : need] = sets.tokens
        self.starts[rows] = sets.offsets[:-1] + self.used
        self.lengths[rows] = sets.lengths
        self.present[rows] = present
        self.used = need
        self.packed &= bool((rows >= count).all()) and bool((np.diff(rows) == 1).all())

    def move(self, src: int, dst: int) -> None:
        self.starts[dst], self.lengths[dst] = self.starts[src], self.lengths[src]
        self.present[dst] = self.present[src]
        self.clear(src)

    def clear(self, row: int) -> None:
        self.lengths[row] = 0
        self.present[row] = False
        self.packed = False

    def view(self, count: int) -> Ragged:
        """Rows ``0 .. count-1`` as a contiguous ragged set (repacked if needed), in the
        column's datatype (MaxSim widens chunks to float32 as it scans).

        Searches call this under the collection's *read* lock, so two may race: the
        repack builds new arrays and swaps them in under a lock, and a search still
        holding the old buffer keeps reading a consistent copy."""
        with self._repack:
            if not self.packed:
                lengths = self.lengths[:count]
                gathered = self.data[token_rows(self.starts[:count], lengths)]
                data = self._buffer(len(self.data))
                data[: len(gathered)] = gathered
                starts = self.starts.copy()
                starts[:count] = np.cumsum(lengths) - lengths
                self.data, self.starts, self.used, self.packed = data, starts, len(gathered), True
            data, lengths = self.data, self.lengths[:count]
        offsets = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Ragged(data[: offsets[-1]], offsets)

    def exact_index(self, count: int) -> MaxSimIndex:
        """The first ``count`` rows as exact MaxSim, for sealing: a mapped column hands
        its (repacked) token file over and maps the offsets beside it."""
        params = MaxSimParams(storage=self.dtype.name, on_disk=self.mapped)  # type: ignore[arg-type]
        items = self.view(count)
        if self._folder is not None:
            offsets = MappedMatrix.holding(self._folder, items.offsets[:, None])
            items = Ragged(items.tokens, offsets.reshape(-1))
        return MaxSimIndex.over(items, self.distance, params)

    def row(self, row: int) -> np.ndarray:
        with self._repack:
            start, data = self.starts[row], self.data
        tokens: np.ndarray = data[start : start + self.lengths[row]].astype(np.float32)
        return tokens


class SparseColumn:
    """One sparse name of every row: each row's vector (None where absent) and an exact
    index over them. New rows appended at the end extend the index (its posting lists
    fold them in as they grow); an overwrite or a delete (which moves rows) drops it, and
    the next search rebuilds it from the rows."""

    def __init__(self) -> None:
        self.items: list[SparseVector | None] = []
        self.present = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self._index: SparseIndex | None = None
        self._lock = threading.Lock()

    def reserve(self, rows: int) -> None:
        if rows > self.present.shape[0]:
            self.present = _grown(self.present, max(rows, 2 * self.present.shape[0]))
        if rows > len(self.items):
            self.items.extend([None] * (rows - len(self.items)))

    def write(self, rows: np.ndarray, batch: SparseRows, present: np.ndarray) -> None:
        """Store ``batch`` (absent rows empty) at ``rows``."""
        for i, row in enumerate(rows.tolist()):
            self.items[row] = batch.item(i) if present[i] else None
        self.present[rows] = present
        index = self._index
        appended = index is not None and len(rows) and int(rows[0]) == len(index)
        if index is not None and appended and bool((np.diff(rows) == 1).all()):
            index.add(batch)
        else:
            self._index = None

    def move(self, src: int, dst: int) -> None:
        self.items[dst], self.present[dst] = self.items[src], self.present[src]
        self.clear(src)

    def clear(self, row: int) -> None:
        self.items[row] = None
        self.present[row] = False
        self._index = None

    def index(self, count: int) -> SparseIndex:
        """The exact index over rows ``0 .. count-1`` (cached until the next write).
        Searches run under the collection's read lock, so two may build it at once."""
        with self._lock:
            if self._index is None or len(self._index) != count:
                index = SparseIndex()
                index.add(SparseRows.of(self.items[:count]))
                self._index = index
            return self._index


class AppendableSegment(SegmentRows):
    """New points land here and are searched exactly until the segment is sealed."""

    def __init__(
        self,
        vector_params: dict[str, tuple[int, Distance]],
        schema: PayloadSchema | None = None,
        multi_params: dict[str, tuple[int, Distance]] | None = None,
        sparse_names: Sequence[str] = (),
        payload_reader: PayloadReader | None = None,
        datatypes: Mapping[str, Datatype] | None = None,
        mapped: Mapping[str, Path] | None = None,
    ) -> None:
        """``mapped``: per ``on_disk`` dense or multi-vector, the folder its rows or
        tokens are mapped in."""
        super().__init__(schema, payload_reader)
        types, folders = datatypes or {}, mapped or {}
        self.columns = {
            name: VectorColumn(d, dist, types.get(name, "float32"), folders.get(name))
            for name, (d, dist) in vector_params.items()
        }
        self.token_columns = {
            name: TokenColumn(d, dist, types.get(name, "float32"), folders.get(name))
            for name, (d, dist) in (multi_params or {}).items()
        }
        self.sparse_columns = {name: SparseColumn() for name in sparse_names}

    def __len__(self) -> int:
        return len(self._ids)

    def live_mask(self) -> np.ndarray:
        return np.ones(len(self._ids), dtype=bool)

    def has_graph(self, name: str) -> bool:
        return False

    def _all_columns(self) -> list[VectorColumn | TokenColumn | SparseColumn]:
        return [*self.columns.values(), *self.token_columns.values(), *self.sparse_columns.values()]

    def _column(self, name: str) -> VectorColumn | TokenColumn | SparseColumn | None:
        return (
            self.columns.get(name) or self.token_columns.get(name) or self.sparse_columns.get(name)
        )

    def vector_present(self, name: str) -> np.ndarray:
        column = self._column(name)
        if column is None:
            return np.zeros(len(self._ids), dtype=bool)
        return column.present[: len(self._ids)].copy()

    def vectors(self, row: int) -> dict[str, np.ndarray]:
        out = {
            name: col.data[row].astype(np.float32)
            for name, col in self.columns.items()
            if col.present[row]
        }
        for name, tokens in self.token_columns.items():
            if tokens.present[row]:
                out[name] = tokens.row(row)
        return out

    def sparse_vectors(self, row: int) -> dict[str, SparseVector]:
        return {
            name: item
            for name, column in self.sparse_columns.items()
            if column.present[row] and (item := column.items[row]) is not None
        }

    def sparse_index(self, name: str) -> SparseIndex:
        """The exact index of a sparse name over this segment's rows (document
        frequencies for ``idf``)."""
        return self.sparse_columns[name].index(len(self._ids))

    def has_vector(self, row: int, name: str) -> bool:
        column = self._column(name)
        return column is not None and bool(column.present[row])

    def search(
        self,
        name: str,
        queries: np.ndarray | Ragged | list[SparseVector],
        k: int,
        mask: np.ndarray | None,
        params: SearchParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` rows for each query among rows where ``mask`` holds (MaxSim
        for a multi-vector name, dot product over shared terms for a sparse one)."""
        n = len(self._ids)
        column = self._column(name)
        assert column is not None
        present = column.present[:n]
        if isinstance(column, SparseColumn):
            assert isinstance(queries, list)
            allowed = present if mask is None else mask & present
            return column.index(n).search(queries, k, allowed=allowed)
        subset: np.ndarray | None = None
        if mask is not None or not present.all():
            subset = present if mask is None else mask & present
        if isinstance(column, TokenColumn):
            assert isinstance(queries, Ragged)
            rows = None if subset is None else np.flatnonzero(subset)
            return exact_maxsim(queries, column.view(n), k, rows)
        assert isinstance(queries, np.ndarray)
        return exact_search(column.floats(n), queries, k, column.distance, subset)

    def custom_search(
        self,
        name: str,
        customs: list[CustomScore],
        k: int,
        mask: np.ndarray | None,
        params: SearchParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` rows for each custom score of a dense vector (recommend,
        discover: ``index/graph_walk.py``); float64 scores, bigger is better."""
        n = len(self._ids)
        column = self.columns[name]
        present = column.present[:n]
        allowed = present if mask is None else mask & present
        return exact_custom(column.floats(n), column.distance, customs, k, allowed)

    def upsert(self, batch: PointBatch, version: int) -> None:
        """Insert or wholly replace each point of ``batch``."""
        before = len(self._ids)
        for column in self._all_columns():
            column.reserve(before + len(batch.ids))
        rows = np.empty(len(batch.ids), dtype=np.int64)
        fresh: list[int] = []
        for i, point_id in enumerate(batch.ids):
            row = self._row_of.get(point_id)
            if row is None:
                fresh.append(i)
            else:
                self.set_payload(row, batch.payloads[i], version)
                rows[i] = row
        if fresh:
            new_ids = [batch.ids[i] for i in fresh]
            if len(new_ids) == len(batch.ids):
                new_payloads = batch.payloads
            else:
                new_payloads = [batch.payloads[i] for i in fresh]
            start = len(self._ids)
            self._append_rows(new_ids, new_payloads, [version] * len(fresh))
            rows[fresh] = np.arange(start, start + len(fresh))
        for name, column in self.columns.items():
            column.data[rows] = batch.vectors[name]
            column.present[rows] = batch.present[name]
        for name, tokens in self.token_columns.items():
            tokens.write(rows, batch.tokens[name], batch.present[name], before)
        for name, sparse in self.sparse_columns.items():
            sparse.write(rows, batch.sparse[name], batch.present[name])

    def delete(self, point_id: PointId) -> bool:
        row = self._row_of.pop(point_id, None)
        if row is None:
            return False
        last = len(self._ids) - 1
        self.payload_indexes.remove(row, self._payloads.kept(row))
        if row != last:
            self.payload_indexes.move(last, row, self._payloads.kept(last))
            moved = self._ids[last]
            self._ids[row] = moved
            self._payloads.move(last, row)
            self._versions[row] = self._versions[last]
            self._row_of[moved] = row
            for array in (self._sort_kind, self._sort_hi, self._sort_lo):
                array[row] = array[last]
            for column in self._all_columns():
                column.move(last, row)
        else:
            for column in self._all_columns():
                column.clear(row)
        self._ids.pop()
        self._payloads.pop()
        self._versions.pop()
        return True

    def bookkeeping_bytes(self) -> dict[str, int]:
        """Memory of this segment's rows (``stats.collection_memory``): its vectors
        (searched exactly, no index yet) and per-row Python objects, estimated at one
        ~32-byte int object per id and per looked-up row."""
        rows = len(self._ids)
        sort_keys = self._sort_kind.nbytes + self._sort_hi.nbytes + self._sort_lo.nbytes
        lists = sys.getsizeof(self._ids) + sys.getsizeof(self._row_of) + 64 * rows
        columns = self._all_columns()
        held: list[VectorColumn | TokenColumn] = [*self.columns.values()]
        held += self.token_columns.values()
        in_heap = sum(column.data.nbytes for column in held if not column.mapped)
        mapped = sum(column.data.nbytes for column in held if column.mapped)
        mapped_part = {"vectors_mapped": mapped} if mapped else {}
        return mapped_part | {
            "vectors": in_heap,
            "ids": lists + sort_keys,
            "versions": sys.getsizeof(self._versions),
            "live_and_present": sum(column.present.nbytes for column in columns),
            "payloads": self._payloads.nbytes,
        }

    def _named_columns(self) -> list[tuple[str, VectorColumn | TokenColumn | SparseColumn]]:
        return [*self.columns.items(), *self.token_columns.items(), *self.sparse_columns.items()]

    def freeze(self) -> SealedParts:
        """Hand every row over for sealing, each named vector as an exact index."""
        n = len(self._ids)
        indexes: dict[str, AnyIndex] = {}
        for name, col in self.columns.items():
            indexes[name] = col.exact_index(n)
        for name, tokens in self.token_columns.items():
            indexes[name] = tokens.exact_index(n)
        for name, sparse in self.sparse_columns.items():
            index = create_sparse_index()
            index.add(SparseRows.of(sparse.items[:n]))
            indexes[name] = index
        present = {name: col.present[:n].copy() for name, col in self._named_columns()}
        # the payload indexes are handed over with these rows, so what they were given
        # (all of a payload in memory, its indexed keys when stored) is all they need
        return SealedParts(
            list(self._ids), self._payloads.kept_all(), list(self._versions), indexes, present
        )


@dataclass(slots=True)
class SealedParts:
    """Everything a sealed segment is made of, rows aligned across all fields."""

    ids: Sequence[PointId]
    payloads: list[dict[str, Any]]
    versions: Sequence[int] | np.ndarray
    indexes: dict[str, AnyIndex]
    present: dict[str, np.ndarray]


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros(capacity, dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown
