"""Sparse vectors and their exact inverted index (dot product), as Qdrant scores them.

A sparse vector is a few (term index, weight) pairs out of a vocabulary of up to 2^32
terms (SPLADE, BM25). Qdrant scores a query against a point by the dot product over the
terms both hold; a point that shares no term with the query is no hit at all (not a hit
scored 0), which is why every search here tracks overlap besides the score.

:class:`SparseIndex` keeps its rows twice, both as flat numpy arrays:

* row-major (CSR: ``indptr``, ``indices``, ``values``) to read a row back and to score a
  small explicit candidate set (a selective filter): only those rows are sliced;
* term-major posting lists (CSC: sorted unique ``terms``, ``term_ptr``, posting ``rows``
  and ``weights``), built once after the last append, to score all rows: the postings
  of the query's terms are gathered and summed per row with ``np.bincount``.

Both are native numpy passes, never a Python loop per posting or per candidate. The
index also counts, per term, the live rows holding it (document frequency), kept right
under deletes, for Qdrant's ``idf`` modifier.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar, Protocol, Self

import numpy as np

from index.base import IndexBackend, IndexStats, SearchParams
from index.metrics import Distance
from index.serialization import Buffer, IndexFormatError, pack, unpack

MAX_SPARSE_INDEX = 2**32 - 1
CANDIDATE_FRACTION = 0.1
"""Allowed rows below this fraction of the index are scored row by row (CSR slices);
above it the posting lists of the query terms are cheaper."""
TAIL_ROWS = 2048
TAIL_FRACTION = 0.125
"""Rows appended after the posting lists were built (the tail) are scored row by row
until they outnumber ``max(TAIL_ROWS, TAIL_FRACTION x indexed rows)``; then the postings
are rebuilt over all rows. Appends (the appendable segment's inserts) thus cost
amortized ~1 / TAIL_FRACTION sorts of each posting, not one per search."""


@dataclass(frozen=True, slots=True)
class SparseVector:
    """One sparse vector: unique ``indices`` (uint32, ascending) and their ``values``
    (float32). The wire order is not kept: Qdrant stores and returns indices sorted."""

    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, indices: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> Self:
        """Sorted by index; the caller has validated uniqueness and ranges."""
        idx = np.asarray(indices, dtype=np.uint32)
        val = np.asarray(values, dtype=np.float32)
        order = np.argsort(idx, kind="stable")
        return cls(idx[order], val[order])

    def __len__(self) -> int:
        return len(self.indices)

    def to_bytes(self) -> bytes:
        """``n`` little-endian u32 indices then ``n`` f32 values."""
        return self.indices.astype("<u4").tobytes() + self.values.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        half = len(data) // 2
        return cls(
            np.frombuffer(data[:half], dtype="<u4").astype(np.uint32),
            np.frombuffer(data[half:], dtype="<f4").astype(np.float32),
        )


@dataclass(frozen=True, slots=True)
class SparseRows:
    """A batch of sparse vectors in CSR form: row ``i`` is
    ``indices[indptr[i]:indptr[i + 1]]`` with its ``values``; an empty row is a point
    without this vector."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, items: Sequence[SparseVector | None]) -> SparseRows:
        lengths = np.fromiter((0 if v is None else len(v) for v in items), np.int64, len(items))
        indptr = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        given = [v for v in items if v is not None and len(v)]
        if not given:
            return cls(indptr, np.zeros(0, np.uint32), np.zeros(0, np.float32))
        indices = np.concatenate([v.indices for v in given]).astype(np.uint32, copy=False)
        values = np.concatenate([v.values for v in given]).astype(np.float32, copy=False)
        return cls(indptr, indices, values)

    @classmethod
    def concat(cls, parts: Sequence[SparseRows]) -> SparseRows:
        if not parts:
            return cls.of([])
        shifts = np.cumsum([0] + [int(p.indptr[-1]) for p in parts[:-1]])
        indptr = np.concatenate(
            [np.zeros(1, np.int64)] + [p.indptr[1:] + s for p, s in zip(parts, shifts, strict=True)]
        )
        return cls(
            indptr,
            np.concatenate([p.indices for p in parts]).astype(np.uint32, copy=False),
            np.concatenate([p.values for p in parts]).astype(np.float32, copy=False),
        )

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        lengths: np.ndarray = np.diff(self.indptr)
        return lengths

    def item(self, i: int) -> SparseVector:
        start, stop = int(self.indptr[i]), int(self.indptr[i + 1])
        return SparseVector(self.indices[start:stop].copy(), self.values[start:stop].copy())

    def same_as(self, other: SparseRows) -> np.ndarray:
        """Per row: same indices and values in both batches (of equal length)."""
        lengths = self.lengths()
        same: np.ndarray = lengths == other.lengths()
        rows = np.flatnonzero(same)
        mine = _ranges(self.indptr[rows], lengths[rows])
        theirs = _ranges(other.indptr[rows], lengths[rows])
        differ = (self.indices[mine] != other.indices[theirs]) | (
            self.values[mine] != other.values[theirs]
        )
        owner = np.repeat(rows, lengths[rows])
        same[owner[differ]] = False
        return same

    def slice(self, start: int, stop: int) -> SparseRows:
        """Rows ``start .. stop-1`` as views (no copy of the entries)."""
        first, last = int(self.indptr[start]), int(self.indptr[stop])
        indptr = self.indptr[start : stop + 1] - first
        return SparseRows(indptr, self.indices[first:last], self.values[first:last])

    def take(self, rows: np.ndarray) -> SparseRows:
        """Rows ``rows`` (in that order), one gather."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.indptr[rows + 1] - self.indptr[rows]
        positions = _ranges(self.indptr[rows], lengths)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        return SparseRows(indptr, self.indices[positions], self.values[positions])


class SparseRowsIndex(IndexBackend, Protocol):
    """A searchable set of sparse rows (dot product), beside ``VectorIndex`` (dense rows)
    and ``MultiVectorIndex`` (token sets); ``kind == "sparse"`` says which one it is."""

    def add(self, rows: SparseRows) -> None: ...

    def items(self, rows: np.ndarray) -> SparseRows: ...

    def same_rows(self, rows: SparseRows) -> np.ndarray: ...

    def live_count(self) -> int: ...

    def document_frequencies(
        self, terms: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray: ...

    def search(
        self,
        queries: Sequence[SparseVector],
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class SparseParams:
    """The exact inverted index has no search knobs.

    on_disk: (Qdrant's sparse ``index.on_disk``) ``to_bytes`` also writes the posting
      lists, and read back from a memory-mapped file the rows and postings stay views
      of it instead of heap arrays; only the per-term live counts (``df``, changed by
      deletes) are copied. Appends move them back to the heap (``rows``)."""

    on_disk: bool = False


class SparseIndex:
    """Exact dot-product search over sparse rows (see the module docstring)."""

    kind: ClassVar[str] = "sparse"
    multi_vector: ClassVar[bool] = False
    approximate: ClassVar[bool] = False
    maps_originals: ClassVar[bool] = False

    def __init__(
        self, dim: int = 0, distance: Distance = Distance.DOT, params: SparseParams | None = None
    ) -> None:
        self.dim = dim
        self.distance = Distance.DOT
        self.params = params or SparseParams()
        self._parts: list[SparseRows] = []
        self._rows = SparseRows.of([])
        self._deleted = np.zeros(0, dtype=bool)
        self._postings: _Postings | None = None
        self._lazy = threading.Lock()
        """Searches run concurrently (the collection's read lock): the first ones after
        an append consolidate the rows and build the postings under this lock."""

    @property
    def lossless(self) -> bool:
        return True

    @property
    def rows_on_disk(self) -> bool:
        return self.params.on_disk

    def __len__(self) -> int:
        return len(self._deleted)

    def add(self, rows: SparseRows) -> None:
        """Append rows; builds call this in chunks (progress, cancellation). The posting
        lists built so far stay: new rows are the tail (see ``TAIL_ROWS``)."""
        self._parts.append(rows)
        self._deleted = np.concatenate([self._deleted, np.zeros(len(rows), dtype=bool)])

    def delete(self, rows: np.ndarray) -> None:
        """Tombstone rows; their terms leave the document frequencies."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        fresh = rows[~self._deleted[rows]]
        self._deleted[fresh] = True
        postings = self._postings
        if postings is not None:
            indexed = fresh[fresh < postings.count]
            if len(indexed):
                postings.forget(self.rows().take(indexed).indices)

    def rows(self) -> SparseRows:
        """Every row (tombstoned ones included) as one CSR batch."""
        with self._lazy:
            if self._parts:
                self._rows = SparseRows.concat([self._rows, *self._parts])
                self._parts = []
            return self._rows

    def items(self, rows: np.ndarray) -> SparseRows:
        return self.rows().take(rows)

    def same_rows(self, rows: SparseRows) -> np.ndarray:
        """Per row: does the index hold exactly ``rows[row]``?"""
        return self.rows().same_as(rows)

    def live_count(self) -> int:
        return int(len(self._deleted) - np.count_nonzero(self._deleted))

    def document_frequencies(
        self, terms: np.ndarray, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """Per term of ``terms``: live rows holding it (within ``allowed`` if given)."""
        if allowed is not None:
            return _frequencies_in(
                self.rows().take(np.flatnonzero(allowed & ~self._deleted)), terms
            )
        postings = self._posting_lists()
        tail = postings.count + np.flatnonzero(~self._deleted[postings.count :])
        df: np.ndarray = postings.frequencies(terms) + _frequencies_in(
            self.rows().take(tail), terms
        )
        return df

    def search(
        self,
        queries: Sequence[SparseVector],
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by dot product for each query, best first, among live rows
        where ``allowed`` holds and that share a term with the query; ``ids (nq, k)``
        padded with -1, scores with -inf."""
        n = len(self._deleted)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        live = ~self._deleted if allowed is None else allowed[:n] & ~self._deleted
        candidates = np.flatnonzero(live) if allowed is not None else None
        sliced = None
        if candidates is not None and len(candidates) <= CANDIDATE_FRACTION * n:
            sliced = self.rows().take(candidates)
        else:
            postings = self._posting_lists()
            tail = self.rows().slice(postings.count, n)
        for q, query in enumerate(queries):
            if sliced is not None and candidates is not None:
                row_scores, touched = _score_rows(sliced, query)
                rows = candidates[touched]
                found = row_scores[touched]
            else:
                all_scores, hit = postings.score(query, n)
                all_scores[postings.count :], hit[postings.count :] = _score_rows(tail, query)
                rows = np.flatnonzero(hit & live)
                found = all_scores[rows]
            best = _top_k(rows, found, k)
            ids[q, : len(best)] = rows[best]
            scores[q, : len(best)] = found[best]
        return ids, scores

    def search_rows(
        self, queries: Sequence[SparseVector], k: int, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` among an explicit candidate ``rows`` only (no full scan)."""
        allowed = np.zeros(len(self._deleted), dtype=bool)
        allowed[rows] = True
        return self.search(queries, k, allowed=allowed)

    def _posting_lists(self) -> _Postings:
        """The posting lists, rebuilt over every row once the tail has grown too long."""
        rows = self.rows()
        with self._lazy:
            postings = self._postings
            tail = len(rows) - (0 if postings is None else postings.count)
            if postings is None or tail > max(TAIL_ROWS, TAIL_FRACTION * postings.count):
                postings = self._postings = _Postings.build(rows, self._deleted)
            return postings

    def to_bytes(self) -> bytes:
        """Rows (CSR) and tombstones; with ``on_disk`` also every posting list, so a
        reader can map them (``from_bytes``) instead of building them on the heap."""
        rows = self.rows()
        header = {"kind": self.kind, "count": len(rows), "nnz": int(rows.indptr[-1])}
        header |= {"params": asdict(self.params)}
        deleted = np.packbits(self._deleted).tobytes()
        csr = [rows.indptr.astype("<i8"), rows.indices.astype("<u4"), rows.values.astype("<f4")]
        postings = _Postings.build(rows, self._deleted).arrays() if self.params.on_disk else []
        blobs = [a.tobytes() for a in csr] + [deleted] + [a.tobytes() for a in postings]
        return pack(header, blobs)

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self:
        header, blobs = unpack(data)
        if header.get("kind") != cls.kind:
            raise IndexFormatError(f"not a sparse index: {header.get('kind')!r}")
        count = header["count"]
        index = cls(params=SparseParams(**header.get("params", {})))
        indptr, indices, values, deleted = blobs[:4]
        mapped = index.params.on_disk and isinstance(data, memoryview) and len(blobs) == 9
        index._rows = SparseRows(
            _array(indptr, "<i8", mapped), _array(indices, "<u4", mapped),
            _array(values, "<f4", mapped),
        )  # fmt: skip
        if len(index._rows) != count:
            raise IndexFormatError("sparse index data is truncated")
        bits = np.unpackbits(np.frombuffer(deleted, dtype=np.uint8))[:count]
        index._deleted = bits.astype(bool)
        if mapped:
            index._postings = _Postings.mapped(blobs[4:], count)
        return index

    def stats(self) -> IndexStats:
        """Bytes in process memory; rows and postings read from a memory-mapped file
        are reported apart (``rows_mapped``, ``postings_mapped``)."""
        rows = self.rows()
        row_arrays = (rows.indptr, rows.indices, rows.values)
        parts = {
            "rows": sum(a.nbytes for a in row_arrays if not _is_mapped(a)),
            "tombstones": self._deleted.nbytes,
        }
        postings = self._postings
        if postings is not None:
            arrays = postings.arrays()
            parts["postings"] = sum(a.nbytes for a in arrays if not _is_mapped(a))
            if any(map(_is_mapped, arrays)):
                parts["postings_mapped"] = sum(a.nbytes for a in arrays if _is_mapped(a))
        if any(map(_is_mapped, row_arrays)):
            parts["rows_mapped"] = sum(a.nbytes for a in row_arrays if _is_mapped(a))
        in_memory = sum(v for k, v in parts.items() if not k.endswith("_mapped"))
        return IndexStats(count=len(rows), memory_bytes=in_memory, parts=parts)


@dataclass(slots=True)
class _Postings:
    """Term-major copy of the rows: the postings of ``terms[t]`` are
    ``rows[term_ptr[t]:term_ptr[t + 1]]`` with their ``weights``; ``df[t]`` counts the
    live ones."""

    terms: np.ndarray
    term_ptr: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    df: np.ndarray
    count: int
    """Rows ``0 .. count-1`` are in these lists; later ones are the index's tail."""

    @classmethod
    def build(cls, csr: SparseRows, deleted: np.ndarray) -> _Postings:
        """All postings ordered by term, rows ascending within a term (``_term_order``)."""
        owner = np.repeat(np.arange(len(csr), dtype=np.int32), csr.lengths())
        order = _term_order(csr.indices)
        sorted_terms = csr.indices[order]
        starts = np.flatnonzero(np.diff(sorted_terms)) + 1
        if len(sorted_terms):
            starts = np.concatenate([np.zeros(1, dtype=np.int64), starts])
        term_ptr = np.append(starts, len(sorted_terms)).astype(np.int64)
        rows = owner[order]
        term_of = np.repeat(np.arange(len(starts), dtype=np.int32), np.diff(term_ptr))
        df = np.bincount(term_of[~deleted[rows]], minlength=len(starts)).astype(np.int64)
        return cls(sorted_terms[starts], term_ptr, rows, csr.values[order], df, len(csr))

    def locate(self, query_terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``terms`` of the query terms, and which of them exist."""
        at = np.searchsorted(self.terms, query_terms)
        clipped = np.minimum(at, max(len(self.terms) - 1, 0))
        found = (at < len(self.terms)) & (self.terms[clipped] == query_terms)
        return clipped, found

    def frequencies(self, query_terms: np.ndarray) -> np.ndarray:
        if not len(self.terms):
            return np.zeros(len(query_terms), dtype=np.int64)
        at, found = self.locate(np.asarray(query_terms, dtype=np.uint32))
        df: np.ndarray = np.where(found, self.df[at], 0)
        return df

    def forget(self, terms: np.ndarray) -> None:
        """Rows holding ``terms`` (one entry per posting) were deleted."""
        at, found = self.locate(terms)
        np.subtract.at(self.df, at[found], 1)

    def score(self, query: SparseVector, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Dot product with every row (float64) and which rows share a term.

        One vectorized step per query *term*: a term's postings name each row at most
        once, so ``scores[rows] += ...`` adds every posting (no ``np.add.at`` needed)."""
        scores, hit = np.zeros(n), np.zeros(n, dtype=bool)
        if not len(self.terms) or not len(query):
            return scores, hit
        at, found = self.locate(query.indices)
        for term, weight in zip(at[found].tolist(), query.values[found].tolist(), strict=True):
            start, stop = self.term_ptr[term], self.term_ptr[term + 1]
            rows = self.rows[start:stop]
            scores[rows] += self.weights[start:stop] * weight
            hit[rows] = True
        return scores, hit

    def arrays(self) -> list[np.ndarray]:
        """What ``to_bytes`` writes, in the order ``mapped`` reads it back."""
        return [self.terms, self.term_ptr, self.rows, self.weights, self.df]

    @classmethod
    def mapped(cls, blobs: Sequence[Buffer], count: int) -> _Postings:
        """Postings over views of a memory-mapped file; ``df`` (changed by deletes) is
        copied to the heap."""
        terms, term_ptr, rows, weights, df = blobs
        return cls(
            np.frombuffer(terms, dtype=np.uint32), np.frombuffer(term_ptr, dtype=np.int64),
            np.frombuffer(rows, dtype=np.int32), np.frombuffer(weights, dtype=np.float32),
            np.frombuffer(df, dtype=np.int64).copy(), count,
        )  # fmt: skip


def _array(blob: Buffer, dtype: str, mapped: bool) -> np.ndarray:
    """A little-endian blob as an array: a view of the file when ``mapped``, else a copy."""
    view = np.frombuffer(blob, dtype=dtype)
    return view if mapped else view.astype(view.dtype.newbyteorder("="))


def _is_mapped(array: np.ndarray) -> bool:
    """A read-only view of a memory-mapped file (heap arrays here are writeable)."""
    return not array.flags.writeable and not array.flags.owndata


def _term_order(terms: np.ndarray) -> np.ndarray:
    """A stable argsort of u32 terms as one or two 16-bit passes, which numpy sorts by
    radix in linear time (its stable sort of 32-bit keys is a merge sort, several times
    slower on millions of postings). One pass when every term is below 2^16 (BERT-style
    vocabularies)."""
    order: np.ndarray = np.argsort((terms & 0xFFFF).astype(np.uint16), kind="stable")
    if len(terms) and int(terms.max()) > 0xFFFF:
        high = (terms[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for every pair, in one pass."""
    total = int(lengths.sum())
    firsts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=firsts[1:])
    ranges: np.ndarray = np.repeat(starts - firsts, lengths) + np.arange(total, dtype=np.int64)
    return ranges


def _score_rows(rows: SparseRows, query: SparseVector) -> tuple[np.ndarray, np.ndarray]:
    """Dot product of ``query`` with each of ``rows`` and which share a term."""
    n = len(rows)
    if not len(query) or not len(rows.indices):
        return np.zeros(n), np.zeros(n, dtype=bool)
    owner = np.repeat(np.arange(n, dtype=np.int64), rows.lengths())
    at = np.minimum(np.searchsorted(query.indices, rows.indices), len(query) - 1)
    match = query.indices[at] == rows.indices
    products = rows.values[match].astype(np.float64) * query.values[at[match]].astype(np.float64)
    scores = np.bincount(owner[match], weights=products, minlength=n)
    return scores, np.bincount(owner[match], minlength=n) > 0


def _frequencies_in(rows: SparseRows, terms: np.ndarray) -> np.ndarray:
    terms = np.asarray(terms, dtype=np.uint32)
    order = np.argsort(terms)
    counts = np.zeros(len(terms), dtype=np.int64)
    if not len(terms) or not len(rows.indices):
        return counts
    sorted_terms = terms[order]
    at = np.minimum(np.searchsorted(sorted_terms, rows.indices), len(terms) - 1)
    match = sorted_terms[at] == rows.indices
    counts[order] = np.bincount(at[match], minlength=len(terms))
    return counts


def _top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores, best first (ties: lower row first)."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        cut = scores[part].min()
        part = np.flatnonzero(scores >= cut)
    else:
        part = np.arange(len(scores))
    order = np.lexsort((rows[part], -scores[part]))
    best: np.ndarray = part[order][:k]
    return best


def idf(df: np.ndarray, n: int) -> np.ndarray:
    """Qdrant's inverse document frequency: ``ln((n - df + 0.5) / (df + 0.5) + 1)``."""
    df64 = df.astype(np.float64)
    weights: np.ndarray = np.log((n - df64 + 0.5) / (df64 + 0.5) + 1.0)
    return weights
