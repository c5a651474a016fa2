"""Multi-vector (late-interaction) storage and exact MaxSim search.

A multi-vector point holds a *set* of token vectors (ColBERT and its successors); two sets
are compared by MaxSim / Chamfer similarity: for each query token the best inner product
with any document token, summed over the query tokens. Tokens arrive prepared for the
metric (normalised for Cosine), so MaxSim is computed with inner products for Cosine and
Dot alike; Euclid and Manhattan are not offered for multi-vectors.

Sets are ragged, so every batch here is a :class:`Ragged`: ``tokens (total, dim)`` plus
``offsets (n + 1,)``. A row may hold no tokens (a point without this named vector); such
rows are never returned.

:class:`MaxSimIndex` is the exact backend: it stores the sets contiguously (float32,
float16 to halve memory, uint8 for a ``uint8`` datatype's integer values, or each
token's TurboQuant 4-bit code and norm for a ``turbo4`` datatype, decoded a scan chunk
at a time) and answers
a batch of queries with one GEMM per chunk of documents for *all* query tokens at once,
a per-document maximum (``maximum.reduceat``) and a per-query sum (``add.reduceat``),
keeping a running top-k. ``muvera_index.py`` puts a Fixed Dimensional Encoding index in
front of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal, Protocol, Self

import numpy as np

from index.base import IndexBackend, IndexStats, SearchParams
from index.metrics import Distance
from index.serialization import Buffer, IndexFormatError, pack, unpack
from index.turbo import decode_storage, encode_storage, storage_width

TokenStorage = Literal["float32", "float16", "uint8", "turbo4"]
Decoder = Callable[[np.ndarray], np.ndarray]
"""Stored token rows -> float32 tokens (a scan decodes one chunk at a time)."""
_SCAN_SCORES = 1 << 23
"""Scores per GEMM in an exact scan (32 MB of float32): a chunk holds about
``_SCAN_SCORES / query tokens`` document tokens, so one query scans in a few large
GEMMs and a batch of 1,000 queries does not build gigabytes of scores."""
_MIN_SCAN_TOKENS = 1 << 12
_QUERY_TOKENS_PER_PASS = 1 << 11
_INITIAL_TOKENS = 4096
_INITIAL_ROWS = 256


@dataclass(frozen=True, slots=True)
class Ragged:
    """A batch of token sets: item ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_arrays(cls, items: Sequence[np.ndarray], dim: int) -> Ragged:
        lengths = [len(item) for item in items]
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        nonempty = [item for item in items if len(item)]
        tokens = (
            np.concatenate(nonempty).astype(np.float32, copy=False)
            if nonempty
            else np.zeros((0, dim), dtype=np.float32)
        )
        return cls(np.ascontiguousarray(tokens), offsets)

    @classmethod
    def concat(cls, parts: Sequence[Ragged], dim: int) -> Ragged:
        return cls.from_arrays([item for part in parts for item in part.items()], dim)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        lengths: np.ndarray = np.diff(self.offsets)
        return lengths

    def item(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def items(self) -> list[np.ndarray]:
        return [self.item(i) for i in range(len(self))]

    def take(self, rows: np.ndarray) -> Ragged:
        """The items ``rows`` (integer indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Ragged(self.tokens[token_rows(self.offsets[rows], lengths)], offsets)

    def __getitem__(self, rows: np.ndarray) -> Ragged:
        return self.take(rows)


def token_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices of every token of items starting at ``starts`` with ``lengths``, in order."""
    total = int(lengths.sum())
    firsts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=firsts[1:])
    return np.repeat(starts - firsts, lengths) + np.arange(total, dtype=np.int64)


def exact_maxsim(
    queries: Ragged,
    docs: Ragged,
    k: int,
    rows: np.ndarray | None = None,
    decode: Decoder | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim top-``k`` of every query over ``docs`` (or only its ``rows``, which
    must hold tokens), best first; ``ids (nq, k)`` padded with -1, scores with -inf.
    ``decode`` turns stored token rows into float32 (default: a cast)."""
    nq = len(queries)
    ids = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    candidates = np.flatnonzero(docs.lengths > 0) if rows is None else np.asarray(rows)
    if nq == 0 or k == 0 or len(candidates) == 0:
        return ids, scores
    # big batches pass over the documents in groups of about 2k query tokens
    group = queries.offsets[:-1] // _QUERY_TOKENS_PER_PASS
    cuts = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), nq]
    for lo, hi in itertools.pairwise(cuts):
        part = queries if hi - lo == nq else queries.take(np.arange(lo, hi))
        ids[lo:hi], scores[lo:hi] = _scan(part, docs, k, candidates, decode or _as_float)
    return ids, scores


def _as_float(tokens: np.ndarray) -> np.ndarray:
    cast: np.ndarray = tokens.astype(np.float32, copy=False)
    return cast


def _scan(
    queries: Ragged, docs: Ragged, k: int, candidates: np.ndarray, decode: Decoder
) -> tuple[np.ndarray, np.ndarray]:
    nq = len(queries)
    ids = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    q_tokens = queries.tokens.astype(np.float32, copy=False)
    q_starts = queries.offsets[:-1]
    lengths = docs.lengths[candidates]
    chunk_tokens = max(_MIN_SCAN_TOKENS, _SCAN_SCORES // max(1, len(q_tokens)))
    for lo, hi in _scan_chunks(lengths, chunk_tokens):
        chunk = candidates[lo:hi]
        if chunk[-1] - chunk[0] == hi - lo - 1:  # consecutive rows: a view, no gather
            tokens = docs.tokens[docs.offsets[chunk[0]] : docs.offsets[chunk[-1] + 1]]
        else:
            tokens = docs.tokens[token_rows(docs.offsets[chunk], lengths[lo:hi])]
        sims = q_tokens @ decode(tokens).T
        starts = np.zeros(hi - lo, dtype=np.int64)
        np.cumsum(lengths[lo : hi - 1], out=starts[1:])
        best = np.maximum.reduceat(sims, starts, axis=1)
        totals = np.add.reduceat(best, q_starts, axis=0)
        ids, scores = _merge_top(ids, scores, chunk, totals, k)
    return ids, scores


def maxsim_pairs(
    queries: Ragged, docs: Ragged, candidates: np.ndarray, decode: Decoder | None = None
) -> np.ndarray:
    """MaxSim of query ``q`` with each ``candidates[q, j]`` (-1 = none, scored -inf):
    one GEMM per query over its candidates' gathered (and decoded) tokens."""
    decode = decode or _as_float
    scores = np.full(candidates.shape, -np.inf, dtype=np.float32)
    for q in range(len(queries)):
        found = np.flatnonzero(candidates[q] >= 0)
        if len(found) == 0:
            continue
        chosen = candidates[q, found]
        lengths = docs.lengths[chosen]
        tokens = docs.tokens[token_rows(docs.offsets[chosen], lengths)]
        sims = queries.item(q).astype(np.float32) @ decode(tokens).T
        starts = np.zeros(len(chosen), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        scores[q, found] = np.maximum.reduceat(sims, starts, axis=1).sum(axis=0)
    return scores


def top_of(candidates: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best-scored candidates per row, padded with -1 / -inf."""
    nq = len(candidates)
    ids = np.full((nq, k), -1, dtype=np.int64)
    best = np.full((nq, k), -np.inf, dtype=np.float32)
    kk = min(k, candidates.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_ids = np.take_along_axis(candidates, order, axis=1)
    ids[:, :kk] = np.where(np.isfinite(top_scores), top_ids, -1)
    best[:, :kk] = top_scores
    return ids, best


def _scan_chunks(lengths: np.ndarray, chunk_tokens: int) -> list[tuple[int, int]]:
    """Ranges of whole documents of about ``chunk_tokens`` tokens each."""
    starts = np.cumsum(lengths) - lengths
    cuts = np.flatnonzero(np.diff(starts // chunk_tokens)) + 1
    return list(itertools.pairwise([0, *cuts.tolist(), len(lengths)]))


def _merge_top(
    ids: np.ndarray, scores: np.ndarray, chunk: np.ndarray, totals: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    all_ids = np.concatenate([ids, np.broadcast_to(chunk, totals.shape)], axis=1)
    all_scores = np.concatenate([scores, totals], axis=1)
    if all_ids.shape[1] > k:
        part = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
        all_ids = np.take_along_axis(all_ids, part, axis=1)
        all_scores = np.take_along_axis(all_scores, part, axis=1)
    order = np.lexsort((all_ids, -all_scores), axis=1)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    kk = min(k, all_ids.shape[1])
    out_ids[:, :kk] = np.take_along_axis(all_ids, order, axis=1)[:, :kk]
    out_scores[:, :kk] = np.take_along_axis(all_scores, order, axis=1)[:, :kk]
    out_ids[~np.isfinite(out_scores)] = -1
    return out_ids, out_scores


class MultiVectorIndex(IndexBackend, Protocol):
    """The multi-vector member of the backend family (:class:`index.base.IndexBackend`):
    :class:`index.base.VectorIndex` with ragged token sets in place of ``(n, dim)``
    matrices."""

    def add(self, items: Ragged) -> None: ...

    def search(
        self,
        queries: Ragged,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def items(self, rows: np.ndarray | None = None) -> Ragged:
        """Stored token sets (float32) of ``rows`` (all rows when None)."""
        ...

    def same_rows(self, items: Ragged) -> np.ndarray:
        """Per row: does the index hold exactly ``items[row]`` (as it would store it)?"""
        ...


@dataclass(frozen=True, slots=True)
class MaxSimParams:
    """storage: float32 keeps tokens exact; float16 halves their memory (MaxSim over
    unit-norm tokens moves by ~1e-3 relative, well below typical score gaps); uint8
    quarters it, for tokens already holding integers 0..255 (a ``uint8`` datatype,
    kept exactly; other values would be truncated); turbo4 keeps each token's TurboQuant
    4-bit code and float32 norm (``dim / 2 + 4`` bytes), for a ``turbo4`` datatype whose
    tokens already are decoded codes (they code back to the same codes).
    on_disk: read back from a memory-mapped file, the tokens and offsets stay in that
    file (zero-copy views) instead of the heap; a later ``add`` copies them back."""

    storage: TokenStorage = "float32"
    on_disk: bool = False


class MaxSimIndex:
    """Exact MaxSim over contiguous ragged token storage; rows are appended in order."""

    kind: ClassVar[str] = "maxsim"
    multi_vector: ClassVar[bool] = True
    approximate: ClassVar[bool] = False
    maps_originals: ClassVar[bool] = False

    def __init__(self, dim: int, distance: Distance, params: MaxSimParams | None = None) -> None:
        check_distance(distance)
        self.dim = dim
        self.distance = distance
        self.params = params or MaxSimParams()
        turbo = self.params.storage == "turbo4"
        self._dtype = np.dtype(np.uint8 if turbo else self.params.storage)
        self._width = storage_width(dim, 4) + 4 if turbo else dim
        """Stored values a token: its dimension, or code bytes and a norm's 4 bytes."""
        self._tokens = np.zeros((_INITIAL_TOKENS, self._width), dtype=self._dtype)
        self._offsets = np.zeros(_INITIAL_ROWS + 1, dtype=np.int64)
        self._deleted = np.zeros(_INITIAL_ROWS, dtype=bool)
        self._count = 0
        self._mapped = False
        """``_tokens`` and ``_offsets`` are read-only views of a memory-mapped file."""

    def __len__(self) -> int:
        return self._count

    @property
    def rows_on_disk(self) -> bool:
        return self.params.on_disk

    @property
    def file_backed(self) -> bool:
        """Whether the tokens live in a memory-mapped file, not process memory."""
        return self._mapped

    @property
    def lossless(self) -> bool:
        return self._dtype == np.float32

    def stored(self) -> Ragged:
        """The stored sets as a zero-copy view (in the storage dtype)."""
        return Ragged(self._tokens[: self._offsets[self._count]], self._offsets[: self._count + 1])

    @classmethod
    def over(
        cls, items: Ragged, distance: Distance, params: MaxSimParams, dim: int | None = None
    ) -> Self:
        """An index reading ``items`` in place (no copy) when ``on_disk``: the caller
        hands over tokens and offsets in memory-mapped files, which then count as mapped
        (tokens in the storage dtype). Otherwise a heap copy. ``dim``: the vectors'
        dimension, needed when the stored rows are wider or narrower than it (turbo4
        rows are codes plus a norm); default, the rows' width."""
        index = cls(items.tokens.shape[1] if dim is None else dim, distance, params)
        if not (params.on_disk and len(items.tokens)):
            index.add(items)
            return index
        index._tokens, index._offsets, index._count = items.tokens, items.offsets, len(items)
        index._deleted, index._mapped = np.zeros(len(items), dtype=bool), True
        return index

    def add(self, items: Ragged) -> None:
        self._append(Ragged(self._encode(items.tokens), items.offsets))

    def _append(self, items: Ragged) -> None:
        """Append sets whose token rows are already in the stored form."""
        if self._mapped:  # the views are read-only: appending needs heap arrays
            self._tokens, self._offsets = self._tokens.copy(), self._offsets.copy()
            self._mapped = False
        rows, tokens = len(items), len(items.tokens)
        used = int(self._offsets[self._count])
        if self._count + rows > len(self._deleted):
            capacity = max(self._count + rows, 2 * len(self._deleted))
            self._offsets = _grown(self._offsets, capacity + 1)
            self._deleted = _grown(self._deleted, capacity)
        if used + tokens > len(self._tokens):
            capacity = max(used + tokens, 2 * len(self._tokens))
            self._tokens = _grown(self._tokens, capacity)
        self._tokens[used : used + tokens] = items.tokens
        self._offsets[self._count + 1 : self._count + rows + 1] = items.offsets[1:] + used
        self._count += rows

    def delete(self, rows: np.ndarray) -> None:
        self._deleted[rows] = True

    def searchable(self, allowed: np.ndarray | None) -> np.ndarray:
        """Rows a search may return: allowed, not deleted, holding tokens."""
        ok = ~self._deleted[: self._count] & (np.diff(self._offsets[: self._count + 1]) > 0)
        if allowed is not None:
            ok &= allowed
        return ok

    def search(
        self,
        queries: Ragged,
        k: int,
        *,
        params: SearchParams | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        ok = self.searchable(allowed)
        rows = None if ok.all() else np.flatnonzero(ok)
        return exact_maxsim(queries, self.stored(), k, rows, self._decode)

    def rescore(
        self, queries: Ragged, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` among ``candidates (nq, c)`` (-1 padded, no repeats)."""
        scores = maxsim_pairs(queries, self.stored(), candidates, self._decode)
        return top_of(candidates, scores, k)

    def items(self, rows: np.ndarray | None = None) -> Ragged:
        stored = self.stored()
        picked = stored if rows is None else stored.take(rows)
        return Ragged(self._decode(picked.tokens).astype(np.float32), picked.offsets)

    def _encode(self, tokens: np.ndarray) -> np.ndarray:
        """float32 tokens -> stored rows (turbo4: code bytes, then the norm's bytes)."""
        if self.params.storage != "turbo4":
            return tokens
        codes, norms = encode_storage(np.asarray(tokens, dtype=np.float32), 4)
        return np.hstack([codes, norms[:, None].view(np.uint8)])

    def _decode(self, rows: np.ndarray) -> np.ndarray:
        """Stored rows -> float32 tokens (turbo4: the codes decoded, vectorised)."""
        if self.params.storage != "turbo4":
            return _as_float(rows)
        width = self._width - 4
        norms = np.ascontiguousarray(rows[:, width:]).view(np.float32)[:, 0]
        return decode_storage(rows[:, :width], norms, self.dim, 4)

    def _same_tokens(self, stored: np.ndarray, given: np.ndarray) -> np.ndarray:
        """Per token: does ``stored`` hold ``given`` as it would store it (turbo4: the
        same codes and, to float rounding, the same norm)?"""
        encoded = self._encode(given).astype(self._dtype)
        if self.params.storage != "turbo4":
            equal: np.ndarray = (stored == encoded).all(axis=1)
            return equal
        width = self._width - 4
        norms = [np.ascontiguousarray(rows[:, width:]).view(np.float32)[:, 0]
                 for rows in (stored, encoded)]  # fmt: skip
        same_codes = (stored[:, :width] == encoded[:, :width]).all(axis=1)
        close: np.ndarray = same_codes & np.isclose(norms[0], norms[1], rtol=1e-5, atol=0)
        return close

    def same_rows(self, items: Ragged) -> np.ndarray:
        if len(items) != self._count:
            return np.zeros(len(items), dtype=bool)
        stored = self.stored()
        same = np.array_equal(stored.offsets, items.offsets)
        if not same:
            equal_length: np.ndarray = stored.lengths == items.lengths
            rows_equal: np.ndarray = equal_length & np.array(
                [bool(self._same_tokens(stored.item(i), items.item(i)).all())
                 if equal_length[i] else False for i in range(self._count)],
                dtype=bool,
            )  # fmt: skip
            return rows_equal
        token_equal = self._same_tokens(stored.tokens, items.tokens)
        bad_rows = np.searchsorted(stored.offsets, np.flatnonzero(~token_equal), "right") - 1
        out = np.ones(self._count, dtype=bool)
        out[bad_rows] = False
        return out

    def _header(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "distance": self.distance.value,
            "count": self._count,
            "params": asdict(self.params),
        }

    def _blobs(self) -> list[bytes]:
        stored = self.stored()
        deleted = np.packbits(self._deleted[: self._count]).tobytes()
        return [stored.offsets.tobytes(), stored.tokens.tobytes(), deleted]

    def to_bytes(self) -> bytes:
        return pack(self._header(), self._blobs())

    @classmethod
    def from_bytes(cls, data: Buffer) -> Self:
        header, blobs = unpack(data)
        return cls._restore(header, blobs)

    @classmethod
    def _restore(cls, header: dict[str, object], blobs: list[Buffer]) -> Self:
        if len(blobs) < 3:
            raise IndexFormatError("multi-vector index data is truncated")
        dim, count = int(str(header["dim"])), int(str(header["count"]))
        params = header["params"]
        assert isinstance(params, dict)
        index = cls(dim, Distance(str(header["distance"])), MaxSimParams(**params))
        offsets = np.frombuffer(blobs[0], dtype=np.int64)
        tokens = np.frombuffer(blobs[1], dtype=index._dtype).reshape(-1, index._width)
        if len(offsets) != count + 1 or offsets[-1] != len(tokens):
            raise IndexFormatError("multi-vector index data is inconsistent")
        if index.params.on_disk and isinstance(blobs[1], memoryview):
            index = cls.over(Ragged(tokens, offsets), index.distance, index.params, dim)
        else:
            index._append(Ragged(tokens, offsets))
        bits = np.unpackbits(np.frombuffer(blobs[2], dtype=np.uint8))[:count]
        index._deleted[:count] = bits.astype(bool)
        return index

    def stats(self) -> IndexStats:
        """Bytes in process memory; mapped tokens and offsets are reported apart
        (``tokens_mapped``, ``offsets_mapped``) and not counted in ``memory_bytes``."""
        used = int(self._offsets[self._count])
        parts = {
            "tokens": used * self._width * self._dtype.itemsize,
            "offsets": (self._count + 1) * 8,
            "tombstones": self._count,
        }
        if self._mapped:
            parts |= {"tokens_mapped": parts["tokens"], "offsets_mapped": parts["offsets"]}
            parts |= {"tokens": 0, "offsets": 0}
        in_memory = sum(v for k, v in parts.items() if not k.endswith("_mapped"))
        return IndexStats(count=self._count, memory_bytes=in_memory, parts=parts)


def check_distance(distance: Distance) -> None:
    if not distance.higher_is_better:
        raise ValueError(
            f"multi-vectors support the Cosine and Dot distances (MaxSim of inner "
            f"products), not {distance.value}"
        )


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
