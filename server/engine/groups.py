"""Grouped search (``/points/query/groups``, ``/points/search/groups``): the best
``limit`` groups of hits sharing a payload value, each with its best ``group_size`` hits.

A point joins one group per distinct value of ``group_by`` (arrays: each element;
nested keys read as filters read them); a value that cannot be a group id (not an
integer or a string) drops the point from grouping, as Qdrant does. Groups are
ordered by their best hit, so the answer is the first ``limit`` groups met walking
the whole result in score order, each with its first ``group_size`` hits: what
qdrant-client's local mode computes by scanning everything.

Here, as in Qdrant, that walk is a few searches instead: (1) a search whose
candidate limit grows until it has met ``limit`` groups (or run out of points);
those are the answer's groups, because a prefix of the score order meets groups in
order. (2) For a single-stage query by a vector, a point or examples, the chosen
groups that are not yet full are filled by a search filtered to their values
(``match any``); groups still short are searched again, alone, with a wider limit,
until each has ``group_size`` hits or runs out of points. The filter goes through the
planner, so a selective group set costs the groups' points, not the collection.
When the groups are strings under a keyword index and the planner would scan them
exactly, the fill is answered per group straight from the index's postings
(``collection/group_fill.py``): every group gets its best hits in that one search.
Multi-stage queries (prefetch) grow the outer limit only, since a filter would narrow
their prefetches and change fusion ranks. Every search asks for at most
``MAX_GROUP_CANDIDATES`` points; past that the groups found so far are answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from server.engine.filters import Filter, parse_filter
from server.engine.multistage import merge_filters
from server.engine.payload import JsonPath, PayloadSelector, parse_json_path
from server.engine.point_ids import PointId, parse_point_id
from server.engine.requests import GroupFill, Query, VectorSelector
from server.engine.results import Record, ScoredPoint
from server.errors import BadRequest

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

GroupId = int | str

MAX_GROUP_CANDIDATES = 100_000
"""Points one grouping search may ask for (and ``limit * group_size`` at most)."""
GROWTH = 4
"""How much each further search widens its candidate limit."""
FIND_FACTOR = 2
"""When the groups will be filled, the first search asks this many points per group
wanted (with many groups, most of the first ``limit`` hits already differ in group)."""
FILL_FACTOR = 2
"""The first fill search asks this many hits per hit the open groups may hold (wider
asks cost more in the search than the occasional second round saves)."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """``with_lookup``: for each group, the point whose id is the group id, from another
    collection, with these parts."""

    collection: CollectionHandle
    with_payload: PayloadSelector
    with_vector: VectorSelector


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """One grouped search; ``query.limit`` and ``query.offset`` are not used."""

    query: Query
    group_by: str
    group_size: int
    limit: int
    lookup: Lookup | None = None


@dataclass(frozen=True, slots=True)
class PointGroup:
    id: GroupId
    hits: list[ScoredPoint]
    lookup: Record | None = None


@dataclass(frozen=True, slots=True)
class GroupsResult:
    groups: list[PointGroup]
    explain: list[dict[str, Any]] | None = None


def check_group_request(request: GroupRequest) -> None:
    """Refuse (400) a request whose groups could not fit the candidate bound."""
    if request.group_size < 1 or request.limit < 1:
        raise BadRequest("Wrong input: `group_size` and `limit` must be at least 1")
    wanted = request.group_size * request.limit
    if wanted > MAX_GROUP_CANDIDATES:
        raise BadRequest(
            f"Wrong input: `limit` * `group_size` is {wanted}, more than the limit of "
            f"{MAX_GROUP_CANDIDATES}"
        )
    _group_path(request.group_by)


def run_groups(collection: CollectionHandle, request: GroupRequest) -> GroupsResult:
    """Answer one grouped search (module docstring)."""
    check_group_request(request)
    searcher = _GroupSearch(collection, request)
    groups = searcher.choose_groups()
    if searcher.can_fill:
        searcher.fill(groups)
    chosen = [PointGroup(value, hits) for value, hits in groups.items()]
    chosen = _with_output(collection, chosen, request.query)
    if request.lookup is not None:
        chosen = _with_lookup(chosen, request.lookup)
    return GroupsResult(chosen, searcher.trace)


def _group_path(group_by: str) -> JsonPath:
    if not isinstance(group_by, str) or not group_by:
        raise BadRequest("Wrong input: `group_by` must be a non-empty payload key")
    try:
        return parse_json_path(group_by)
    except ValueError as exc:
        raise BadRequest(f"Wrong input: bad `group_by` key {group_by!r}: {exc}") from None


def group_ids(values: list[Any]) -> list[GroupId] | None:
    """The distinct group ids of a point's values, in payload order; None when one value
    cannot be a group id (the point then joins no group)."""
    if len(values) == 1:  # the common case: one plain value
        return values if type(values[0]) in (int, str) else None
    if any(type(value) not in (int, str) for value in values):
        return None
    return list(dict.fromkeys(values))


class _GroupSearch:
    """The searches of one grouped request, and what they saw (for ``explain``)."""

    def __init__(self, collection: CollectionHandle, request: GroupRequest) -> None:
        self.collection = collection
        self.request = request
        self.path = _group_path(request.group_by)
        # bare hits: the group_by values of all of them are read in one call
        self.probe = replace(
            request.query, offset=0, with_payload=PayloadSelector.of("none"), with_vector=False
        )
        self.values: dict[PointId, list[GroupId] | None] = {}
        self.trace: list[dict[str, Any]] | None = [] if request.query.explain else None
        query = request.query
        # a point's score by a vector, a point or examples does not depend on the
        # filter, so a search filtered to some groups meets their points in score order
        self.can_fill = not query.is_multistage and (
            query.vector is not None or query.point_id is not None or query.examples is not None
        )

    def choose_groups(self) -> dict[GroupId, list[ScoredPoint]]:
        """The first ``limit`` groups in score order, with the hits seen so far."""
        request = self.request
        candidates = request.limit * request.group_size
        if self.can_fill:  # only the groups are needed here: the fill gives their hits
            candidates = min(candidates, FIND_FACTOR * request.limit)
        while True:
            points, exhausted = self._search(self.probe.filter, candidates, "find groups")
            groups = self._aggregate(points)
            enough = len(groups) >= request.limit and (self.can_fill or self._full(groups))
            if enough or exhausted or candidates >= MAX_GROUP_CANDIDATES:
                return dict(list(groups.items())[: request.limit])
            candidates = min(candidates * GROWTH, MAX_GROUP_CANDIDATES)

    def fill(self, groups: dict[GroupId, list[ScoredPoint]]) -> None:
        """Give each chosen group not yet full its best ``group_size`` hits: a search
        filtered to the open groups' values meets each one's points in score order, so
        its first hits per group are that group's best; groups still short (and not
        out of points) are searched again, alone, with a wider limit."""
        size = self.request.group_size
        open_groups = [value for value, hits in groups.items() if len(hits) < size]
        factor = FILL_FACTOR
        while open_groups:
            try:
                flt = merge_filters(self.probe.filter, _any_of(self.request.group_by, open_groups))
            except BadRequest:  # a value no filter can match (an integer past int64):
                return  # keep what the first search saw, as Qdrant keeps groups it cannot fill
            limit = min(factor * size * len(open_groups), MAX_GROUP_CANDIDATES)
            points, exhausted = self._search(flt, limit, "fill groups", open_groups)
            found = self._aggregate(points, open_groups)
            for value in open_groups:
                groups[value] = found.get(value, [])
            if exhausted or limit >= MAX_GROUP_CANDIDATES:
                return
            open_groups = [value for value in open_groups if len(groups[value]) < size]
            factor *= GROWTH

    def _search(
        self, flt: Filter | None, limit: int, stage: str, filling: Sequence[GroupId] = ()
    ) -> tuple[list[ScoredPoint], bool]:
        """One search of up to ``limit`` points, and whether it ran out of points. A
        fill of string groups may be answered with each group's best hits instead
        (``GroupFill``): each group then holds its best, or all it has, and a group
        short of ``group_size`` makes the answer short of ``limit``."""
        probe = replace(self.probe, filter=flt, limit=limit)
        # not by examples: recommend drops its examples after the search, which would
        # leave a group that held one short
        by_vector = self.probe.examples is None
        if filling and by_vector and all(isinstance(value, str) for value in filling):
            fill = GroupFill(self.path, tuple(map(str, filling)), self.request.group_size,
                             self.probe.filter)  # fmt: skip
            probe = replace(probe, group_fill=fill)
        result = self.collection.query([probe])[0]
        if self.trace is not None:
            entry: dict[str, Any] = {"stage": stage, "limit": limit, "points": len(result.points)}
            if result.explain:
                entry["plans"] = result.explain
            self.trace.append(entry)
        return list(result.points), len(result.points) < limit

    def _aggregate(
        self, points: Sequence[ScoredPoint], filling: Sequence[GroupId] = ()
    ) -> dict[GroupId, list[ScoredPoint]]:
        """Groups in order of their first hit, each with its first ``group_size`` hits.
        When ``filling`` groups, the hits past the point where each of them is full are
        not read (the first ``group_size`` per open group usually suffice)."""
        size = self.request.group_size
        groups: dict[GroupId, list[ScoredPoint]] = {}
        first = size * len(filling) if filling else len(points)
        for chunk in (points[:first], points[first:]):
            self._read_values(chunk)
            for point in chunk:
                for value in self.values[point.id] or ():
                    hits = groups.setdefault(value, [])
                    if len(hits) < size:
                        hits.append(point)
            if filling and all(len(groups.get(value, ())) >= size for value in filling):
                break
        return groups

    def _read_values(self, points: Sequence[ScoredPoint]) -> None:
        """The group ids of the points not seen by an earlier search, in one read."""
        unseen = list(dict.fromkeys(p.id for p in points if p.id not in self.values))
        if unseen:
            found = self.collection.payload_values(unseen, self.path)
            self.values.update(zip(unseen, map(group_ids, found), strict=True))

    def _full(self, groups: dict[GroupId, list[ScoredPoint]]) -> bool:
        size = self.request.group_size
        best = list(groups.values())[: self.request.limit]
        return all(len(hits) >= size for hits in best)


def _any_of(key: str, values: Sequence[GroupId]) -> Filter | None:
    """Points holding one of ``values`` under ``key``, as one nested filter (so merging
    it into the query's filter keeps that filter's ``should`` its own)."""
    texts = [value for value in values if isinstance(value, str)]
    numbers = [value for value in values if isinstance(value, int)]
    alternatives = [{"key": key, "match": {"any": chosen}} for chosen in (texts, numbers) if chosen]
    return parse_filter({"must": [{"should": alternatives}]})


def _with_output(
    collection: CollectionHandle, groups: list[PointGroup], query: Query
) -> list[PointGroup]:
    """Each hit with the payload and vectors the request asked for (fetched once)."""
    if query.with_payload.mode == "none" and query.with_vector is False:
        return [
            replace(group, hits=[hit._replace(payload=None) for hit in group.hits])
            for group in groups
        ]
    ids = list(dict.fromkeys(hit.id for group in groups for hit in group.hits))
    found = {r.id: r for r in collection.retrieve(ids, query.with_payload, query.with_vector)}
    return [
        replace(
            group,
            hits=[
                hit._replace(payload=found[hit.id].payload, vector=found[hit.id].vector)
                if hit.id in found
                else hit._replace(payload=None)
                for hit in group.hits
            ],
        )
        for group in groups
    ]


def _with_lookup(groups: list[PointGroup], lookup: Lookup) -> list[PointGroup]:
    """Each group's point of the same id in the lookup collection, where there is one
    (a group id that is no valid point id has none)."""
    ids: dict[GroupId, PointId] = {}
    for group in groups:
        try:
            ids[group.id] = parse_point_id(group.id)
        except BadRequest:
            continue
    records = lookup.collection.retrieve(
        list(dict.fromkeys(ids.values())), lookup.with_payload, lookup.with_vector
    )
    found = {record.id: record for record in records}
    return [
        replace(group, lookup=found.get(ids[group.id])) if group.id in ids else group
        for group in groups
    ]
