"""A grouped search's fill, answered from the keyword index's postings.

``groups.py`` fills the chosen groups that are short of ``group_size`` with a search
filtered to those groups' values. Through the ordinary path that search builds a filter
mask over every row of every segment, then scores the few thousand rows that pass and
keeps the best ``limit`` of them all, which may leave a group short and cost another
round. Here each segment's rows of each group come straight from the postings of the
``group_by`` key's keyword index and are scored exactly in one native pass that keeps
each group's own best ``size`` (Dot and Cosine: a numba kernel, ``index/group_top.py``,
reading the rows in place; other metrics: faiss's exact kernel once per group): one
search fills every group, or shows it has no more points.

It answers only where the ordinary path would scan exactly (same hits; scores equal up
to float32 rounding, as local mode's own sums differ from faiss's): a
dense single-vector query, no custom score, every segment holding the vectors as given
(an HNSW or flat index, or the appendable segment's column) and a keyword index on the
key, and few enough rows that the planner itself would scan them (under
``full_scan_threshold``). Anything else returns None and takes the ordinary path.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from index.datatypes import is_compact
from index.flat import FlatIndex, exact_search
from index.hnsw_faiss import HnswIndex
from index.metrics import Distance
from server.engine.filters import Filter
from server.engine.payload_index import KeywordIndex
from server.engine.requests import GroupFill, SearchSpec
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment
from server.engine.segment_set import AnySegment, Ranked, SegmentSet


class _Found(NamedTuple):
    """Hits of one segment: group number, row, score (each group's best, best first)."""

    labels: np.ndarray
    rows: np.ndarray
    scores: np.ndarray


def fill_groups(
    segments: SegmentSet, spec: SearchSpec, distance: Distance, full_scan_kb: int
) -> Ranked | None:
    """Each group's best ``size`` hits, in score order, as one ranked answer (None:
    the ordinary filtered search must answer; see the module docstring)."""
    fill = spec.group_fill
    query = spec.vector
    if fill is None or spec.custom is not None or not isinstance(query, np.ndarray):
        return None
    if query.ndim != 1 or spec.explain is not None or spec.offset:
        return None
    members = list(segments)
    postings = [_postings(segment, fill) for segment in members]
    if any(found is None for found in postings):
        return None
    if sum(len(rows) for found in postings if found for rows in found) * query.size * 4 >= (
        full_scan_kb * 1024
    ):
        return None  # the planner would walk the graph: so does the ordinary path
    parts: list[_Found] = []
    for segment, found in zip(members, postings, strict=True):
        assert found is not None
        part = _score_segment(segment, spec, fill, found, distance)
        if part is None:
            return None
        parts.append(part)
    return _best_per_group(members, parts, spec, fill.size, distance)


def _postings(segment: AnySegment, fill: GroupFill) -> list[np.ndarray] | None:
    index = segment.payload_indexes.at_path(fill.path)
    if not isinstance(index, KeywordIndex):
        return None
    return index.rows_per_value(fill.values)


def _score_segment(
    segment: AnySegment,
    spec: SearchSpec,
    fill: GroupFill,
    postings: list[np.ndarray],
    distance: Distance,
) -> _Found | None:
    """Each group's best ``size`` rows in the segment among those live, holding the
    vector, passing the query's own filter and not excluded (a query by point id leaves
    that point out), scored exactly over the group's rows (the planner's exact plan)."""
    present = _present(segment, spec.using)
    if present is None:
        return None
    lengths = [len(rows) for rows in postings]
    rows = np.concatenate(postings) if postings else np.empty(0, dtype=np.int64)
    allowed = _allowed(segment, spec, fill)
    assert isinstance(spec.vector, np.ndarray)
    if distance in (Distance.DOT, Distance.COSINE):
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        return _by_dot(segment, spec.using, rows, bounds, (allowed, present), spec.vector,
                       fill.size)  # fmt: skip
    keep = allowed[rows] & present[rows]
    labels = np.repeat(np.arange(len(postings)), lengths)[keep]
    rows = rows[keep]
    bounds = np.searchsorted(labels, np.arange(len(postings) + 1))
    return _by_kernel(segment, spec.using, rows, bounds.tolist(), spec.vector, fill.size, distance)


def _allowed(segment: AnySegment, spec: SearchSpec, fill: GroupFill) -> np.ndarray:
    """The rows a hit may come from: live, passing the query's own filter and not
    excluded (a query by point id leaves that point out)."""
    allowed = segment.live_mask() if fill.filter is None else _passing(segment, fill.filter)
    excluded = [row for row in map(segment.row_of, spec.exclude_ids) if row is not None]
    if excluded:
        allowed = allowed.copy()  # the segment's own mask is shared
        allowed[excluded] = False
    return allowed


def _by_dot(
    segment: AnySegment, name: str, rows: np.ndarray, bounds: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray], query: np.ndarray, size: int,
) -> _Found | None:  # fmt: skip
    """Dot and Cosine (stored normalised, as the query is): one native pass reads each
    group's rows in place, skipping those ``masks`` (allowed, present) leave out, and
    keeps its best ``size``."""
    matrix = _float_matrix(segment, name)
    positions = rows
    if matrix is None:  # a narrower type: the group rows decoded, then read in order
        matrix = _row_vectors(segment, name, rows)
        positions = np.arange(len(rows))
    if matrix is None:
        return None
    query = np.ascontiguousarray(query, dtype=np.float32)
    from index.group_top import top_per_group  # numba loads at the first grouped fill

    best, scores = top_per_group(matrix, positions, rows, bounds, masks, query, size)
    found = best >= 0
    labels = np.nonzero(found)[0]
    return _Found(labels, rows[best[found]], scores[found])


def _by_kernel(
    segment: AnySegment, name: str, rows: np.ndarray, bounds: list[int], query: np.ndarray,
    size: int, distance: Distance,
) -> _Found | None:  # fmt: skip
    """Other metrics: the exact search's own kernel, one top-``size`` call per group."""
    vectors = _row_vectors(segment, name, rows)
    if vectors is None:
        return None
    labels, picked, scores = [], [], []
    for label, (start, stop) in enumerate(itertools.pairwise(bounds)):
        found, best = exact_search(vectors[start:stop], query[None, :], size, distance)
        hits = found[0][found[0] >= 0]
        labels.append(np.full(len(hits), label))
        picked.append(rows[start + hits])
        scores.append(best[0][: len(hits)])
    return _Found(*(np.concatenate(parts) for parts in (labels, picked, scores)))


def _passing(segment: AnySegment, flt: Filter) -> np.ndarray:
    mask: np.ndarray = segment.filter_mask(flt, segment.live_mask())[0]
    return mask


def _present(segment: AnySegment, name: str) -> np.ndarray | None:
    if isinstance(segment, SealedSegment):
        present = segment.present.get(name)
        return None if present is None else present[: len(segment)]
    column = segment.columns.get(name)
    return None if column is None else column.present[: len(segment)]


def _float_matrix(segment: AnySegment, name: str) -> np.ndarray | None:
    """The segment's float32 vectors of ``name`` in place, where it keeps them so."""
    if isinstance(segment, AppendableSegment):
        column = segment.columns.get(name)
        if column is None or column.data.dtype != np.float32:
            return None
        return column.data
    index = segment.indexes.get(name)
    if isinstance(index, FlatIndex) or (
        isinstance(index, HnswIndex) and not is_compact(index.params.storage)
    ):
        return index.vectors()
    return None


def _row_vectors(segment: AnySegment, name: str, rows: np.ndarray) -> np.ndarray | None:
    """Float32 vectors of ``rows`` exactly as the segment's exact search reads them."""
    if isinstance(segment, AppendableSegment):
        column = segment.columns.get(name)
        return None if column is None else column.data[rows].astype(np.float32, copy=False)
    index = segment.indexes.get(name)
    if not isinstance(index, HnswIndex | FlatIndex):
        return None
    return index.row_vectors(rows)


def _best_per_group(
    segments: list[AnySegment], parts: list[_Found], spec: SearchSpec, size: int,
    distance: Distance,
) -> Ranked:  # fmt: skip
    """Each group's first ``size`` candidates by score (ties: segment order, then each
    segment's own order, as the ordinary merge), then those hits in score order, each
    point once. The score threshold is left to the page mask: it keeps a prefix of
    each group's order, so cutting before or after choosing keeps the same hits."""
    labels = np.concatenate([part.labels for part in parts])
    rows = np.concatenate([part.rows for part in parts])
    scores = np.concatenate([part.scores for part in parts])
    owner = np.repeat(np.arange(len(parts)), [len(part.rows) for part in parts])
    key = -scores if distance.higher_is_better else scores
    order = np.lexsort((key, labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    chosen = order[np.arange(len(order)) - starts < size]
    chosen = chosen[np.argsort(key[chosen], kind="stable")]
    _, first = np.unique(owner[chosen] * (1 << 40) + rows[chosen], return_index=True)
    chosen = chosen[np.sort(first)]
    return Ranked(segments, owner[chosen][None, :], rows[chosen][None, :], scores[chosen][None, :])
