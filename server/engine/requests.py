"""What the API asks the engine: typed requests, parsed from the wire by the routes.

``Query`` is one search as a route reads it (vector still raw, or a point id);
``SearchSpec`` is one search resolved against the config (vector validated and
prepared), which is what a collection and its shards search with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any, overload

import numpy as np

from index.base import SearchParams
from index.graph_walk import CustomScore
from server.engine.examples import ExampleQuery, Lookup
from server.engine.filters import Filter
from server.engine.formula import FormulaQuery
from server.engine.fusion import Fusion
from server.engine.ordering import OrderBy
from server.engine.payload import JsonPath, PayloadSelector
from server.engine.planner import Strategy
from server.engine.point_ids import PointId
from server.engine.sparse_vector import SparseVector

VectorSelector = bool | list[str]
"""A request's ``with_vector``: all vectors, none, or these names."""


class VectorColumns(Sequence[Any]):
    """The vectors of an upsert in Qdrant's batch form: one column per name (``None``:
    the unnamed vector), a value for every point. A collection prepares each column in
    one pass; as a sequence it also reads as the points' ``vector`` fields, one per
    point (how a sharded collection splits it)."""

    def __init__(self, columns: dict[str | None, list[Any]], count: int) -> None:
        self.columns = columns
        self.points = count

    def __len__(self) -> int:
        return self.points

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.points))]
        if None in self.columns:
            return self.columns[None][i]
        return {name: column[i] for name, column in self.columns.items()}

    def take(self, rows: Sequence[int]) -> VectorColumns:
        """The columns of points ``rows`` only."""
        if len(rows) == self.points:
            return self
        return VectorColumns(
            {name: [column[i] for i in rows] for name, column in self.columns.items()}, len(rows)
        )


@dataclass(slots=True)
class PointsSelection:
    """Which points a write touches: explicit ``ids``, else all matching ``filter``
    (no filter, as with Qdrant's empty filter, selects every point)."""

    ids: list[PointId] | None = None
    filter: Filter | None = None


def _no_payload() -> PayloadSelector:
    return PayloadSelector.of("none")


@dataclass(frozen=True, slots=True)
class Query:
    """One nearest-neighbour request as sent: by a literal ``vector`` (validated with
    the rest of its batch), by the stored vector of ``point_id`` (that point is left
    out of the answer), or neither: then points are paged in id order, as in Qdrant."""

    vector: list[Any] | SparseVector | None = None
    point_id: PointId | None = None
    using: str | None = None
    limit: int = 10
    offset: int = 0
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: PayloadSelector = field(default_factory=_no_payload)
    with_vector: VectorSelector = False
    params: SearchParams = field(default_factory=SearchParams)
    force: Strategy | None = None
    """Quiver extension: bypass the planner with one strategy (benchmarks, tests)."""
    explain: bool = False
    """Quiver extension: report the plan chosen for each segment."""
    prefetch: tuple[Query, ...] = ()
    """Stages whose candidates this query fuses, scores or re-ranks (``multistage.py``)."""
    combine: Fusion | FormulaQuery | None = None
    """Fuse (``fusion`` / ``rrf``) or score (``formula``) the prefetched candidates
    instead of searching them with ``vector`` / ``point_id``."""
    mmr: Mmr | None = None
    """Re-rank the nearest candidates for diversity (maximal marginal relevance)."""
    examples: ExampleQuery | None = None
    """Score by examples instead of one vector: recommend, discover, context or
    relevance feedback (``recommend.py``)."""
    lookup: Lookup | None = None
    """``lookup_from``: where the example ids' vectors are read."""
    order_by: OrderBy | None = None
    """No vector: the points in the order of a payload value (``ordering.py``)."""
    sample: bool = False
    """No vector: matching points drawn at random (``{"sample": "random"}``)."""
    group_fill: GroupFill | None = None
    """Grouped search only: passed on to the ``SearchSpec``."""

    @property
    def is_multistage(self) -> bool:
        return bool(self.prefetch) or self.combine is not None or self.mmr is not None

    def for_vector(self, vector: list[Any]) -> Query:
        """This query with another literal vector (``dataclasses.replace`` re-reads every
        field by name: twice the cost, paid by every item of an alike batch)."""
        values = list(_query_fields(self))
        values[_VECTOR_AT] = vector
        return Query(*values)


_QUERY_FIELD_NAMES = tuple(f.name for f in fields(Query))
_query_fields = attrgetter(*_QUERY_FIELD_NAMES)
_VECTOR_AT = _QUERY_FIELD_NAMES.index("vector")


class AlikeQueries(Sequence[Query]):
    """A batch of queries that differ only in their literal vector: the first query
    (``template``) and every query's vector, in order. The engine answers a plain one
    as one search over the vectors' matrix, with no object per query or per hit
    (``query.py``); as a sequence it reads as the queries themselves, made on demand
    (``Query.for_vector``), for every caller that handles queries one by one."""

    def __init__(self, template: Query, vectors: list[list[Any]]) -> None:
        self.template = template
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.vectors)

    @overload
    def __getitem__(self, i: int) -> Query: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Query]: ...

    def __getitem__(self, i: int | slice) -> Query | Sequence[Query]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self.vectors)))]
        return self.template.for_vector(self.vectors[i])

    @property
    def one_search(self) -> bool:
        """Whether the batch is plain nearest-vector searches by literal vector, which
        ``query.py`` answers together: no point id, stages, examples, ordering,
        sampling, plan report or group fill, which each take the per-query path."""
        t = self.template
        return (
            type(t.vector) is list
            and t.point_id is None
            and not t.is_multistage
            and t.examples is None
            and t.order_by is None
            and not t.sample
            and not t.explain
            and t.group_fill is None
        )


@dataclass(frozen=True, slots=True)
class Mmr:
    """``{"nearest": v, "mmr": {"diversity", "candidates_limit"}}``: 0 diversity is
    plain relevance order, 1 picks each next point least like those already chosen."""

    diversity: float = 0.5
    candidates_limit: int | None = None


@dataclass(frozen=True, slots=True)
class GroupFill:
    """A grouped search's fill (``groups.py``): the best ``size`` hits of each of the
    string ``values`` under ``path`` among the points passing ``filter`` (the query's
    own). The search's ``filter`` still names the same points, for a collection that
    cannot take the rows straight from the ``path``'s keyword index."""

    path: JsonPath
    values: tuple[str, ...]
    size: int
    filter: Filter | None


@dataclass(slots=True)
class SearchSpec:
    """One nearest-neighbour request, validated and resolved against the config."""

    using: str
    vector: np.ndarray | SparseVector
    """``(dim,)``, ``(n_vectors, dim)`` for a multi-vector name, or a sparse vector
    (already weighted by ``idf`` where the name asks for it)."""
    limit: int = 10
    offset: int = 0
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: PayloadSelector = field(default_factory=_no_payload)
    with_vector: VectorSelector = False
    exclude_ids: list[PointId] = field(default_factory=list)
    params: SearchParams = field(default_factory=SearchParams)
    force: Strategy | None = None
    """Quiver extension: bypass the planner with one strategy (benchmarks, tests)."""
    explain: list[dict[str, Any]] | None = None
    """Quiver extension: when a list, the plan chosen for each segment is appended."""
    custom: CustomScore | None = None
    """Rank by this custom score of a dense ``using`` (recommend, discover:
    ``recommend.py``) instead of the metric; ``vector`` is then only a placeholder."""
    group_fill: GroupFill | None = None
    """Grouped search only: the hits may be each group's best (``GroupFill``)."""

    def for_vector(self, vector: np.ndarray) -> SearchSpec:
        """This search with another prepared vector (one of an alike batch's)."""
        return replace(self, vector=vector)
