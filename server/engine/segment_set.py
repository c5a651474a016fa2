"""All segments of one collection: lookup, fan-out search and merge, scroll order.

A collection has one appendable segment and any number of sealed ones; every
live point is in exactly one of them. Reads fan out over all segments and merge;
writes find the segment holding a point. Not thread-safe: the collection lock
guards it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from index.base import SearchParams
from index.metrics import Distance
from server.engine.filters import Filter
from server.engine.point_ids import PointId
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment, sort_key

AnySegment = AppendableSegment | SealedSegment


@dataclass(frozen=True, slots=True)
class Hit:
    segment: AnySegment
    row: int
    score: float


class SegmentSet:
    def __init__(self, appendable: AppendableSegment) -> None:
        self.appendable = appendable
        self.sealed: dict[int, SealedSegment] = {}

    def __iter__(self) -> Iterator[AnySegment]:
        yield from self.sealed.values()
        yield self.appendable

    def __len__(self) -> int:
        return sum(len(segment) for segment in self)

    def locate(self, point_id: PointId) -> tuple[AnySegment, int] | None:
        for segment in self:
            row = segment.row_of(point_id)
            if row is not None:
                return segment, row
        return None

    def delete(self, point_id: PointId) -> bool:
        found = self.locate(point_id)
        return found is not None and found[0].delete(point_id)

    def matching_rows(self, segment: AnySegment, flt: Filter | None) -> np.ndarray:
        live = segment.live_mask()
        if flt is None:
            return np.flatnonzero(live)
        return np.flatnonzero(flt.mask(segment) & live)

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

    def search(
        self,
        name: str,
        queries: np.ndarray,
        k: int,
        distance: Distance,
        params: SearchParams,
        masks: dict[int, np.ndarray] | None = None,
        full_scan_kb: int = 0,
    ) -> list[list[Hit]]:
        """Top-``k`` over every segment for each query, merged by score.

        ``masks`` maps ``id(segment)`` to an allowed-rows mask (a filter); segments
        without one search all their live rows.
        """
        segments = list(self)
        all_rows, all_scores, owners = [], [], []
        for position, segment in enumerate(segments):
            if len(segment) == 0:
                continue
            mask = None if masks is None else masks.get(id(segment))
            if masks is not None and mask is not None and not mask.any():
                continue
            rows, scores = segment.search(name, queries, k, mask, params, full_scan_kb)
            all_rows.append(rows)
            all_scores.append(scores)
            owners.append(np.full(rows.shape, position))
        if not all_rows:
            return [[] for _ in range(len(queries))]
        rows = np.concatenate(all_rows, axis=1)
        scores = np.concatenate(all_scores, axis=1)
        owner = np.concatenate(owners, axis=1)
        key = -scores if distance.higher_is_better else scores
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        hits: list[list[Hit]] = []
        for q in range(len(queries)):
            chosen = order[q]
            hits.append(
                [
                    Hit(segments[int(owner[q, i])], int(rows[q, i]), float(scores[q, i]))
                    for i in chosen
                    if rows[q, i] >= 0
                ]
            )
        return hits


def _at_or_after(kind: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: PointId) -> np.ndarray:
    k0, h0, l0 = sort_key(start)
    after: np.ndarray = (kind > k0) | ((kind == k0) & ((hi > h0) | ((hi == h0) & (lo >= l0))))
    return after
