"""Search of one collection: batch grouping, filter masks, paging, hits (Qdrant's
``segments_searcher`` beside its ``search_result_aggregator``).

Called with the collection's read lock held (``facade.Collection.search``). Searches
that share a vector name, params and filter are answered together: the filter is
compiled once and each segment gets one native call for the whole group (BLAS for
exact, OpenMP for graphs); ``SegmentSet.search`` merges the segments' top-k.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

import numpy as np

from index.graph_walk import CustomScore
from index.metrics import Distance
from index.multivector import Ragged
from server.engine.collection.group_fill import fill_groups
from server.engine.collection.records import RecordReader
from server.engine.config import CollectionConfig
from server.engine.id_column import IdColumn
from server.engine.payload_index import pinned_tenant
from server.engine.planner import PlannerConfig
from server.engine.point_ids import PointId
from server.engine.requests import SearchSpec
from server.engine.results import HitColumns, HitPage, ScoredPoint
from server.engine.score_threshold import passing, strictly_past
from server.engine.segment_set import AnySegment, Ranked, SegmentSearch, SegmentSet
from server.engine.sparse_vector import SparseVector
from server.engine.tenant_layout import pinned_values

TOKENS_FOR_PLANNING = 64
"""Vectors per multi-vector point the planner assumes when it weighs an exact scan
(ColBERT-style documents hold tens to hundreds of tokens)."""

SPARSE_TERMS_FOR_PLANNING = 128
"""Terms per sparse point the planner assumes (SPLADE documents hold about a hundred);
sparse segments have no graph, so it only sizes the plan."""

Masks = dict[int, np.ndarray]
"""``id(segment)`` -> the live rows a search may return."""


@dataclass(frozen=True, slots=True)
class Searcher:
    """Answers a batch of ``SearchSpec``s over a collection's segments."""

    segments: SegmentSet
    config: CollectionConfig
    planner: PlannerConfig
    records: RecordReader

    def search(self, specs: Sequence[SearchSpec]) -> list[list[ScoredPoint]]:
        """One answer per spec; specs with excluded ids or ``explain`` run alone."""
        results: list[list[ScoredPoint]] = [[] for _ in specs]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, spec in enumerate(specs):
            if spec.group_fill is not None:
                results[i] = self._fill_groups(spec)
                continue
            if spec.exclude_ids or spec.explain is not None:
                results[i] = self._search_group([spec], *self._masks_for(spec))[0]
                continue
            key = (spec.using, spec.params, spec.filter, spec.force, spec.custom is None)
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            group = [specs[i] for i in members]
            if group[0].filter is None:
                answers = self._search_group(group, None)
            else:
                answers = self._search_group(group, *self._masks_for(group[0]))
            for i, answer in zip(members, answers, strict=True):
                results[i] = answer
        return results

    def search_alike(
        self, spec: SearchSpec, vectors: np.ndarray | list[np.ndarray]
    ) -> list[Sequence[ScoredPoint]]:
        """``spec`` searched with each of ``vectors`` as its vector. Plain dense searches
        whose hits carry nothing but score run as one group on the vectors' matrix as it
        is, their hits pages of one batch's columns (``HitPage``); others go through
        ``search``, one spec per vector."""
        if not (isinstance(vectors, np.ndarray) and _plain(spec)):
            return list(self.search([spec.for_vector(vector) for vector in vectors]))
        specs = [spec] * len(vectors)
        masks, estimates = (None, None) if spec.filter is None else self._masks_for(spec)
        request = self._request(specs, masks, estimates, vectors)
        ranked = self.segments.search(request)
        keep = _page_mask(ranked, specs, request.distance.higher_is_better)
        owner, rows, scores = _kept(ranked, keep)
        columns = HitColumns(*_gather_rows(ranked.segments, owner, rows), scores)
        return [HitPage(columns, start, stop) for start, stop in _pages(keep)]

    def _fill_groups(self, spec: SearchSpec) -> list[ScoredPoint]:
        """A grouped search's fill from the postings (``group_fill.py``), or else the
        ordinary filtered search."""
        params = self.config.vectors.get(spec.using)
        ranked = None
        if params is not None and not params.is_multi:
            full_scan_kb = self.config.hnsw_config.full_scan_threshold
            ranked = fill_groups(self.segments, spec, params.distance, full_scan_kb)
        if params is None or ranked is None:
            return self._search_group([spec], *self._masks_for(spec))[0]
        keep = _page_mask(ranked, [spec], params.distance.higher_is_better)
        return self._hits(ranked, [spec], keep)[0]

    def _search_group(
        self,
        specs: Sequence[SearchSpec],
        masks: Masks | None,
        estimates: dict[int, int] | None = None,
    ) -> list[list[ScoredPoint]]:
        request = self._request(specs, masks, estimates)
        ranked = self.segments.search(request)
        higher_is_better = request.distance.higher_is_better
        return self._hits(ranked, specs, _page_mask(ranked, specs, higher_is_better))

    def _request(
        self,
        specs: Sequence[SearchSpec],
        masks: Masks | None,
        estimates: dict[int, int] | None,
        matrix: np.ndarray | None = None,
    ) -> SegmentSearch:
        """The group as one segment call (its dense query vectors already stacked in
        ``matrix`` when given); k is capped at the collection's point count, so no
        buffer outgrows what can be found."""
        first = specs[0]
        if matrix is None:
            queries, distance, dim = self._queries(specs)
        else:
            params = self.config.vectors[first.using]
            queries, distance, dim = matrix, params.distance, params.size
        return SegmentSearch(
            name=first.using,
            queries=queries,
            k=min(max(s.limit + s.offset for s in specs), len(self.segments)),
            distance=distance,
            dim=dim,
            params=first.params,
            default_ef=self.config.default_ef(),
            full_scan_kb=self.config.hnsw_config.full_scan_threshold,
            planner=self.planner,
            masks=masks,
            estimates=estimates,
            force=first.force,
            explain=first.explain,
            custom=_customs(specs),
            tenant=pinned_tenant(first.filter, self.config.payload_schema),
            pinned=pinned_values(first.filter),
        )

    def _queries(
        self, specs: Sequence[SearchSpec]
    ) -> tuple[np.ndarray | Ragged | list[SparseVector], Distance, int]:
        """The group's query vectors in the form their segments search, the metric, and
        the cost per candidate the planner weighs (floats compared)."""
        name = specs[0].using
        if name in self.config.sparse_vectors:
            sparse = [s.vector for s in specs if isinstance(s.vector, SparseVector)]
            return sparse, Distance.DOT, SPARSE_TERMS_FOR_PLANNING
        params = self.config.vectors[name]
        dense = [s.vector for s in specs if isinstance(s.vector, np.ndarray)]
        if params.is_multi:
            ragged = Ragged.from_arrays(dense, params.size)
            return ragged, params.distance, params.size * TOKENS_FOR_PLANNING
        return np.stack(dense), params.distance, params.size

    def _hits(
        self, ranked: Ranked, specs: Sequence[SearchSpec], keep: np.ndarray
    ) -> list[list[ScoredPoint]]:
        """The kept hits of each search, with payload and vectors where asked."""
        owner, rows, kept_scores = _kept(ranked, keep)
        ids, versions = _gather_rows(ranked.segments, owner, rows)
        scores = kept_scores.tolist()
        pages = _pages(keep)
        if all(_bare(spec) for spec in specs):  # a batch of plain searches: one pass
            hits = _bare_hits(ids, versions, scores)
            return [hits[start:stop] for start, stop in pages]
        out: list[list[ScoredPoint]] = []
        for (start, stop), spec in zip(pages, specs, strict=True):
            page = slice(start, stop)
            if _bare(spec):
                out.append(_bare_hits(ids[page], versions[page], scores[page]))
                continue
            record = self.records.record
            out.append(
                [
                    ScoredPoint.of_record(
                        record(ranked.segments[owner[i]], int(rows[i]), spec.with_payload,
                               spec.with_vector),
                        versions[i], scores[i],
                    )
                    for i in range(page.start, page.stop)
                ]
            )  # fmt: skip
        return out

    def _masks_for(self, spec: SearchSpec) -> tuple[Masks, dict[int, int]]:
        """Per segment: the live rows passing the filter (and not excluded), and the
        candidate count the payload indexes estimated before the exact re-check."""
        masks: Masks = {}
        estimates: dict[int, int] = {}
        for segment in self.segments:
            live = segment.live_mask()
            if spec.filter is None:
                masks[id(segment)] = live.copy()
                continue
            mask, estimated = segment.filter_mask(spec.filter, live)
            masks[id(segment)] = mask
            if estimated is not None:
                estimates[id(segment)] = estimated
        for point_id in spec.exclude_ids:
            found = self.segments.locate(point_id)
            if found is not None:
                masks[id(found[0])][found[1]] = False
        return masks, estimates


def _customs(specs: Sequence[SearchSpec]) -> list[CustomScore] | None:
    """A group's custom scores (a group is all custom or none: the grouping key)."""
    customs = [spec.custom for spec in specs if spec.custom is not None]
    return customs or None


_new_hit = partial(tuple.__new__, ScoredPoint)


def _bare(spec: SearchSpec) -> bool:
    """Whether the search's hits carry neither payload nor vector."""
    return spec.with_payload.mode == "none" and spec.with_vector is False


def _plain(spec: SearchSpec) -> bool:
    """Whether the search may run with others alike on their stacked vectors, its hits
    mere columns: bare (``_bare``), no excluded ids, plan report, group fill or custom
    score, each of which ``search`` handles per spec."""
    return (
        _bare(spec)
        and not spec.exclude_ids
        and spec.explain is None
        and spec.group_fill is None
        and spec.custom is None
    )


def _kept(ranked: Ranked, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Owning segment, row and score of each kept hit, search by search, best first."""
    queries, ranks = np.nonzero(keep)
    return ranked.owner[queries, ranks], ranked.rows[queries, ranks], ranked.scores[queries, ranks]


def _pages(keep: np.ndarray) -> list[tuple[int, int]]:
    """Each search's ``(start, stop)`` among the kept hits, in row order."""
    bounds = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).tolist()
    return list(itertools.pairwise(bounds))


def _bare_hits(ids: list[PointId], versions: list[int], scores: list[float]) -> list[ScoredPoint]:
    """Hits without payload or vector, made in C (``tuple.__new__`` over a zip): a
    Python call per hit cost about as much as the rest of a hit's handling."""
    nothing = [None] * len(ids)
    return list(map(_new_hit, zip(ids, versions, scores, nothing, nothing, nothing, strict=True)))


def _page_mask(ranked: Ranked, specs: Sequence[SearchSpec], higher_is_better: bool) -> np.ndarray:
    """Which ranked hits each search returns: found, within its offset/limit page, and
    strictly past its score threshold (``score_threshold.py``)."""
    k = ranked.rows.shape[1]
    rank = np.arange(k)
    offsets = np.array([s.offset for s in specs])[:, None]
    limits = np.array([s.limit for s in specs])[:, None]
    keep: np.ndarray = (ranked.rows >= 0) & (rank >= offsets) & (rank < offsets + limits)
    thresholds = [s.score_threshold for s in specs]
    if any(t is not None for t in thresholds):
        bound = np.array([np.nan if t is None else t for t in thresholds])[:, None]
        keep &= passing(ranked.scores, bound, strictly_past(higher_is_better)) | np.isnan(bound)
    return keep


def _gather_rows(
    segments: list[AnySegment], owner: np.ndarray, rows: np.ndarray
) -> tuple[list[PointId], list[int]]:
    """Point ids and versions of hits, gathered per segment without a Python step per
    hit: a numpy gather from a sealed segment's arrays, ``itemgetter`` from an
    appendable segment's lists."""
    ids = np.empty(len(rows), dtype=object)
    versions = np.zeros(len(rows), dtype=np.int64)
    for position, segment in enumerate(segments):
        where = np.flatnonzero(owner == position)
        if len(where) == 0:
            continue
        picked = rows[where]
        ids[where] = _take(segment.ids, picked)
        versions[where] = _take(segment.versions, picked)
    return ids.tolist(), versions.tolist()


def _take(column: Sequence[Any] | np.ndarray, rows: np.ndarray) -> list[Any] | np.ndarray:
    """``column``'s values at ``rows`` (an ``IdColumn`` or array in one gather)."""
    if isinstance(column, IdColumn):
        return column.take(rows)
    if isinstance(column, np.ndarray):
        taken: np.ndarray = column[rows]
        return taken
    picked = rows.tolist()
    if len(picked) == 1:  # itemgetter of one item returns it, not a tuple
        return [column[picked[0]]]
    return list(itemgetter(*picked)(column))
