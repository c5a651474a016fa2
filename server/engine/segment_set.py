"""All segments of one collection: lookup, fan-out search and merge, scroll order.

A collection has one appendable segment and any number of sealed ones; every
live point is in exactly one of them. Reads fan out over all segments and merge;
writes find the segment holding a point. Not thread-safe: the collection lock
guards it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from index.base import SearchParams
from index.graph_walk import CustomScore
from index.metrics import Distance
from index.multivector import Ragged
from index.sparse import SparseVector
from server.engine.filters import Filter
from server.engine.ordering import OrderBy, cut, merge_order, no_range_index
from server.engine.planner import (
    PLAN_COUNTS,
    Plan,
    PlannerConfig,
    Strategy,
    choose_plan,
    force,
)
from server.engine.point_ids import PointId
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment, PayloadSchema, sort_key
from server.engine.tenant_layout import ValueGraph

AnySegment = AppendableSegment | SealedSegment


@dataclass(slots=True)
class SegmentSearch:
    """One batch of queries against one named vector, with what the planner needs."""

    name: str
    queries: np.ndarray | Ragged | list[SparseVector]
    """``(nq, dim)``, ragged token sets for a multi-vector name, or sparse vectors."""
    k: int
    distance: Distance
    dim: int
    params: SearchParams
    default_ef: int
    full_scan_kb: int
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    masks: dict[int, np.ndarray] | None = None
    """``id(segment)`` -> allowed live rows (a filter); None searches all live rows."""
    estimates: dict[int, int] | None = None
    """``id(segment)`` -> candidate count the payload index gave before the re-check."""
    force: Strategy | None = None
    explain: list[dict[str, Any]] | None = None
    custom: list[CustomScore] | None = None
    """One custom score per query (recommend, discover: ``recommend.py``) to rank by
    instead of the metric; ``queries`` then only sizes the batch."""
    tenant: str | None = None
    """The tenant the filter pins (``payload_index.pinned_tenant``), for the planner."""
    pinned: list[tuple[str, Any]] = field(default_factory=list)
    """(field, value) of each top-level ``must`` ``match``: a value's own graph may serve
    (``tenant_layout.py``)."""

    @property
    def higher_is_better(self) -> bool:
        """How scores rank: a custom score is always bigger-is-better."""
        return self.custom is not None or self.distance.higher_is_better


@dataclass(frozen=True, slots=True)
class Ranked:
    """Merged top-k of a batch, as arrays: ``rows[q, i]`` of ``segments[owner[q, i]]``
    scored ``scores[q, i]``, best first; ``rows`` is -1 past the last hit. Arrays, not an
    object per hit: building ~1,000 small objects per batch of 100 cost ~15% of an HNSW
    batch's time."""

    segments: list[AnySegment]
    owner: np.ndarray
    rows: np.ndarray
    scores: np.ndarray


class SegmentSet:
    def __init__(self, appendable: AppendableSegment) -> None:
        self.appendable = appendable
        self.sealed: dict[int, SealedSegment] = {}

    def __iter__(self) -> Iterator[AnySegment]:
        yield from self.sealed.values()
        yield self.appendable

    def __len__(self) -> int:
        return sum(len(segment) for segment in self)

    def sizes(self) -> list[int]:
        """Each segment's size, safe without the collection's lock: the segments are
        listed in one step (a C-level copy no other thread can interleave with), so a
        seal or a build's swap cannot change the set while it is read; a write landing
        meanwhile only moves the sizes by its points."""
        segments: list[AnySegment] = [*self.sealed.values(), self.appendable]
        return [len(segment) for segment in segments]

    def locate(self, point_id: PointId) -> tuple[AnySegment, int] | None:
        for segment in self:
            row = segment.row_of(point_id)
            if row is not None:
                return segment, row
        return None

    def delete(self, point_id: PointId) -> bool:
        found = self.locate(point_id)
        return found is not None and found[0].delete(point_id)

    def sparse_statistics(self, name: str, terms: np.ndarray) -> tuple[np.ndarray, int]:
        """Document frequency of each term among live rows holding sparse ``name``, and
        the number of those rows, summed over every segment."""
        df = np.zeros(len(terms), dtype=np.int64)
        total = 0
        for segment in self:
            if len(segment) == 0:
                continue
            df += segment.sparse_index(name).document_frequencies(terms)
            total += int(np.count_nonzero(segment.live_mask() & segment.vector_present(name)))
        return df, total

    def matching_rows(self, segment: AnySegment, flt: Filter | None) -> np.ndarray:
        live = segment.live_mask()
        if flt is None:
            return np.flatnonzero(live)
        return np.flatnonzero(segment.filter_mask(flt, live)[0])

    def set_schema(self, schema: PayloadSchema) -> None:
        for segment in self:
            segment.set_schema(schema)

    def count(self, flt: Filter | None) -> int:
        if flt is None:
            return len(self)
        return sum(len(self.matching_rows(segment, flt)) for segment in self)

    def scroll(
        self, flt: Filter | None, limit: int, offset: PointId | None
    ) -> list[tuple[AnySegment, int]]:
        """Up to ``limit + 1`` matching (segment, row) pairs in point-id order from ``offset``."""
        segments = list(self)
        owners, rows, kinds, highs, lows = [], [], [], [], []
        for position, segment in enumerate(segments):
            matched = self.matching_rows(segment, flt)
            kind, hi, lo = segment.sort_keys(matched)
            if offset is not None:
                keep = _at_or_after(kind, hi, lo, offset)
                matched, kind, hi, lo = matched[keep], kind[keep], hi[keep], lo[keep]
            owners.append(np.full(len(matched), position))
            rows.append(matched)
            kinds.append(kind)
            highs.append(hi)
            lows.append(lo)
        owner, row = np.concatenate(owners), np.concatenate(rows)
        order = np.lexsort((np.concatenate(lows), np.concatenate(highs), np.concatenate(kinds)))
        picked = order[: limit + 1]
        return [(segments[int(owner[i])], int(row[i])) for i in picked]

    def ordered(
        self, flt: Filter | None, order: OrderBy, limit: int
    ) -> list[tuple[AnySegment, int, Any]]:
        """The first ``limit`` matching (segment, row, value) triples by ``order``
        (``ordering.py``): each segment hands over its sorted candidates, one
        ``lexsort`` merges them. 400 without a range-capable index on the key."""
        segments = list(self)
        parts: list[tuple[int, np.ndarray, np.ndarray]] = []
        for position, segment in enumerate(segments):
            found = segment.payload_indexes.fields.get(order.key)
            pairs = None if found is None else found.ordered(order.start_from, order.descending)
            if pairs is None:
                raise no_range_index(order.key)
            values, rows = pairs
            keep = self.matching_mask(segment, flt)[rows]
            values, rows = _first_distinct(values[keep], rows[keep], limit)
            parts.append((position, values, rows))
        if not parts:
            raise no_range_index(order.key)
        owner = np.concatenate([np.full(len(rows), p) for p, _, rows in parts])
        rows = np.concatenate([rows for _, _, rows in parts])
        values = np.concatenate([values for _, values, _ in parts])
        keys = [segments[p].sort_keys(r) for p, _, r in parts]
        kinds, highs, lows = (np.concatenate([k[i] for k in keys]) for i in range(3))
        picked = merge_order(values, kinds, highs, lows, order.descending)[:limit]
        return [(segments[int(owner[i])], int(rows[i]), values[i].item()) for i in picked]

    def sample(
        self, flt: Filter | None, limit: int, rng: np.random.Generator
    ) -> list[tuple[AnySegment, int]]:
        """Up to ``limit`` matching (segment, row) pairs drawn uniformly without
        replacement, in random order."""
        segments = list(self)
        matched = [self.matching_rows(segment, flt) for segment in segments]
        sizes = np.array([len(rows) for rows in matched], dtype=np.int64)
        total = int(sizes.sum())
        picks = rng.choice(total, size=min(limit, total), replace=False)
        ends = np.cumsum(sizes)
        owners = np.searchsorted(ends, picks, side="right")
        starts = ends - sizes
        return [
            (segments[int(o)], int(matched[int(o)][int(p - starts[o])]))
            for o, p in zip(owners, picks, strict=True)
        ]

    def matching_mask(self, segment: AnySegment, flt: Filter | None) -> np.ndarray:
        live = segment.live_mask()
        return live if flt is None else segment.filter_mask(flt, live)[0]

    def search(self, request: SegmentSearch) -> Ranked:
        """Top-``k`` over every segment for each query, merged by score; each segment
        answers with the strategy the planner picks for its candidate count. No segment
        is asked for more than its live rows, nor the merge for more than all of them,
        so buffers are sized by what can be found, whatever ``k`` a request names."""
        segments = list(self)
        all_rows, all_scores, positions = [], [], []
        for position, segment in enumerate(segments):
            if len(segment) == 0:
                continue
            capped = request if request.k <= len(segment) else replace(request, k=len(segment))
            rows, scores = self._search_segment(segment, capped)
            if rows is None or scores is None:
                continue
            all_rows.append(rows)
            all_scores.append(scores)
            positions.append(position)
        nq, k = len(request.queries), min(request.k, len(self))
        if not all_rows:
            empty = np.full((nq, k), -1, dtype=np.int64)
            return Ranked(segments, empty, empty, np.zeros((nq, k), dtype=np.float32))
        if len(all_rows) == 1:
            owner = np.full(all_rows[0].shape, positions[0])
            return Ranked(segments, owner, all_rows[0], all_scores[0])
        return _merged(segments, all_rows, all_scores, positions, k, request.higher_is_better)

    def _search_segment(
        self, segment: AnySegment, request: SegmentSearch
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        started = time.perf_counter()
        mask = None if request.masks is None else request.masks.get(id(segment))
        size = len(segment)
        graph = _value_graph(segment, request)
        plan = choose_plan(
            segment_size=size,
            candidates=size if mask is None else int(np.count_nonzero(mask)),
            estimated=None if request.estimates is None else request.estimates.get(id(segment)),
            k=request.k,
            dim=request.dim,
            has_graph=segment.has_graph(request.name),
            exact=request.params.exact,
            ef=request.params.ef or request.default_ef,
            full_scan_kb=request.full_scan_kb,
            config=request.planner,
            tenant=request.tenant,
            payload_graph=None if graph is None else (graph[0], len(graph[1].rows)),
        )
        if request.force is not None and plan.strategy != "none":
            ef = request.params.ef or request.default_ef
            plan = force(plan, request.force, size, request.k, ef, request.planner)
        rows, scores = self._execute(segment, request, plan, mask, graph)
        PLAN_COUNTS.add(plan.strategy)
        plan.time_ms = (time.perf_counter() - started) * 1000
        if request.explain is not None:
            seg_id = segment.segment_id if isinstance(segment, SealedSegment) else None
            request.explain.append({"segment": seg_id} | plan.to_wire())
        return rows, scores

    @staticmethod
    def _execute(
        segment: AnySegment,
        request: SegmentSearch,
        plan: Plan,
        mask: np.ndarray | None,
        graph: tuple[str, ValueGraph] | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        name, queries, k = request.name, request.queries, request.k
        if plan.strategy == "none":
            return None, None
        if mask is not None and plan.candidates == len(segment):
            mask = None  # the filter passes every live row: skip the bitmap check entirely
        if request.custom is not None:
            return _custom(segment, request, plan, mask)
        if plan.strategy == "exact":
            ranged = _tenant_range(segment, request, plan, mask)
            if ranged is not None:
                return ranged
            return segment.search(name, queries, k, mask, replace(request.params, exact=True))
        if plan.strategy == "graph":
            if plan.payload_graph is not None and graph is not None:
                assert isinstance(segment, SealedSegment) and isinstance(queries, np.ndarray)
                assert plan.ef is not None
                rows, scores = segment.search_value_graph(name, graph[1], queries, k, mask, plan.ef)
            else:
                rows, scores = segment.search(
                    name, queries, k, mask, replace(request.params, ef=plan.ef)
                )
            return _exact_where_short(segment, request, plan, mask, rows, scores)
        if mask is None:
            return segment.search(name, queries, k, None, replace(request.params, ef=plan.ef))
        return _post_filter(segment, request, plan, mask)


def _merged(
    segments: list[AnySegment],
    all_rows: list[np.ndarray],
    all_scores: list[np.ndarray],
    positions: list[int],
    k: int,
    higher_is_better: bool,
) -> Ranked:
    """The best ``k`` of several segments' answers per query, ties in segment order.
    Picked by flat indices, the owner by column: ``np.take_along_axis`` three times and
    an owner array per segment cost twice as much for a single query."""
    rows = np.concatenate(all_rows, axis=1)
    scores = np.concatenate(all_scores, axis=1)
    key = np.where(rows >= 0, -scores if higher_is_better else scores, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    nq, width = rows.shape
    flat = order + (np.arange(nq) * width)[:, None]
    column_owner = np.repeat(positions, [part.shape[1] for part in all_rows])
    return Ranked(segments, column_owner[order], rows.ravel()[flat], scores.ravel()[flat])


def _value_graph(segment: AnySegment, request: SegmentSearch) -> tuple[str, ValueGraph] | None:
    """The pinned value's own graph in a sealed segment, for a plain dense search."""
    if not request.pinned or request.custom is not None or request.force is not None:
        return None
    if not isinstance(segment, SealedSegment) or not isinstance(request.queries, np.ndarray):
        return None
    return segment.value_graph(request.name, request.pinned)


def _tenant_range(
    segment: AnySegment, request: SegmentSearch, plan: Plan, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A tenant's exact plan over its co-located rows (``tenant_layout.py``): when the
    rows passing are exactly one range, that range is scored as a slice (no gather)."""
    queries = request.queries
    if plan.tenant is None or mask is None or not isinstance(queries, np.ndarray):
        return None
    if not isinstance(segment, SealedSegment) or not segment.row_range(request.name):
        return None
    start = int(np.argmax(mask))
    stop = start + plan.candidates
    if not (mask[start:stop].all() and segment.vector_present(request.name)[start:stop].all()):
        return None
    plan.reason += f"; rows {start}:{stop} as one slice"
    return segment.search_range(request.name, queries, request.k, start, stop)


def _custom(
    segment: AnySegment, request: SegmentSearch, plan: Plan, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Custom scores: the segment's graph walked with the score (the mask checked in
    the walk, so graph and post-filter plans are one walk), or an exact scan; a walk
    that came back short of min(k, candidates) is redone exactly, as plain searches are."""
    assert request.custom is not None
    name, customs, k = request.name, request.custom, request.k
    exact = plan.strategy == "exact"
    ef = plan.ef or request.params.ef or request.default_ef
    params = replace(request.params, exact=exact, ef=None if exact else ef)
    rows, scores = segment.custom_search(name, customs, k, mask, params)
    short = (rows >= 0).sum(axis=1) < min(k, plan.candidates)
    if not exact and short.any():
        again = [custom for custom, redo in zip(customs, short.tolist(), strict=True) if redo]
        exact_params = replace(request.params, exact=True)
        rows[short], scores[short] = segment.custom_search(name, again, k, mask, exact_params)
        plan.reason += f"; exact fallback for {int(short.sum())} queries"
    return rows, scores


def _exact_where_short(
    segment: AnySegment,
    request: SegmentSearch,
    plan: Plan,
    mask: np.ndarray | None,
    rows: np.ndarray,
    scores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A filtered graph walk can strand itself when few nodes pass; any query that came
    back with fewer than min(k, candidates) results is answered exactly instead."""
    short = (rows >= 0).sum(axis=1) < min(request.k, plan.candidates)
    if short.any():
        queries = request.queries
        if isinstance(queries, list):  # sparse queries
            queries = [query for query, again in zip(queries, short.tolist(), strict=True) if again]
        else:
            queries = queries[short]
        exact_rows, exact_scores = segment.search(
            request.name,
            queries,
            request.k,
            mask,
            replace(request.params, exact=True),
        )
        rows[short], scores[short] = exact_rows, exact_scores
        plan.reason += f"; exact fallback for {int(short.sum())} queries"
    return rows, scores


def _post_filter(
    segment: AnySegment, request: SegmentSearch, plan: Plan, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unfiltered search for more than ``k``, keep candidates, grow until ``k`` are found."""
    k, wanted, ef = request.k, plan.k, plan.ef or plan.k
    size = len(segment)
    while True:
        rows, scores = segment.search(
            request.name, request.queries, wanted, None, replace(request.params, ef=max(ef, wanted))
        )
        keep = (rows >= 0) & mask[np.maximum(rows, 0)]
        if (keep.sum(axis=1) >= k).all() or wanted >= size:
            break
        wanted, plan.rounds = min(size, wanted * 2), plan.rounds + 1
    plan.k = wanted
    out_rows = np.full((len(rows), k), -1, dtype=np.int64)
    out_scores = np.full((len(rows), k), request.distance.worst_score, dtype=np.float32)
    for q in range(len(rows)):
        kept = np.flatnonzero(keep[q])[:k]
        out_rows[q, : len(kept)] = rows[q, kept]
        out_scores[q, : len(kept)] = scores[q, kept]
    return out_rows, out_scores


def _at_or_after(kind: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: PointId) -> np.ndarray:
    k0, h0, l0 = sort_key(start)
    after: np.ndarray = (kind > k0) | ((kind == k0) & ((hi > h0) | ((hi == h0) & (lo >= l0))))
    return after


def _first_distinct(
    values: np.ndarray, rows: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs that can reach a page of ``limit`` (``ordering.cut``), each distinct
    (value, row) once: a row holding a value twice counts it once, as in Qdrant."""
    wanted = limit
    while True:
        end = cut(values, wanted)
        head_values, head_rows = values[:end], rows[:end]
        order = np.lexsort((head_rows, head_values))
        sorted_values, sorted_rows = head_values[order], head_rows[order]
        fresh = np.ones(end, dtype=bool)
        same_value = sorted_values[1:] == sorted_values[:-1]
        fresh[1:] = ~same_value | (sorted_rows[1:] != sorted_rows[:-1])
        distinct = int(np.count_nonzero(fresh))
        if distinct >= limit or end == len(values):
            keep = np.sort(order[fresh])
            return head_values[keep], head_rows[keep]
        wanted += limit - distinct
