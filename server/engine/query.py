"""A batch of ``Query`` requests answered in one engine call, for any collection.

Every request is resolved first (a point id becomes that point's stored vector), the
literal vectors of the batch are validated and prepared together (one numpy call per
vector name), the memory the results would take is checked against the request budget,
then all searches go to the collection at once, which answers unfiltered ones together
in one native kernel call. A bad request fails the whole batch before any search runs.
Multi-stage queries (prefetch, fusion, formula, MMR) go to ``multistage.py``, which
runs their leaf searches through this same path, as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from index.sparse import idf
from server.engine.multistage import run_trees
from server.engine.recommend import run_example_queries
from server.engine.requests import AlikeQueries, Query, SearchSpec
from server.engine.results import QueryResult, ScoredPoint
from server.engine.sparse_vector import SparseVector

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

_PENDING = np.empty(0, dtype=np.float32)
"""Placeholder for a query vector validated later with the rest of its batch."""


def run_queries(collection: CollectionHandle, queries: Sequence[Query]) -> list[QueryResult]:
    """Answer ``queries`` in order; searches of the batch run in one collection call."""
    if isinstance(queries, AlikeQueries) and queries.one_search:
        return _run_alike(collection, queries)
    trees = [i for i, query in enumerate(queries) if query.is_multistage]
    if not trees:
        return _run_plain(collection, queries)
    answers: list[QueryResult | None] = [None] * len(queries)
    flat = [i for i, query in enumerate(queries) if not query.is_multistage]

    def search(batch: Sequence[Query]) -> list[QueryResult]:
        return _run_plain(collection, batch)

    for i, answer in zip(
        trees, run_trees(collection, [queries[i] for i in trees], search), strict=True
    ):
        answers[i] = answer
    if flat:
        for i, answer in zip(flat, _run_plain(collection, [queries[i] for i in flat]), strict=True):
            answers[i] = answer
    return [answer for answer in answers if answer is not None]


def _run_plain(collection: CollectionHandle, queries: Sequence[Query]) -> list[QueryResult]:
    """Single-stage queries: those by example (``recommend.py``, which searches
    through ``_run_flat``), the rest in one ``_run_flat`` batch."""
    by_example = [i for i, query in enumerate(queries) if query.examples is not None]
    if not by_example:
        return _run_flat(collection, queries)
    answers: list[QueryResult | None] = [None] * len(queries)

    def search(batch: Sequence[Query]) -> list[QueryResult]:
        return _run_flat(collection, batch)

    chosen = [queries[i] for i in by_example]
    for i, answer in zip(by_example, run_example_queries(collection, chosen, search), strict=True):
        answers[i] = answer
    rest = [i for i, query in enumerate(queries) if query.examples is None]
    if rest:
        for i, answer in zip(rest, _run_flat(collection, [queries[i] for i in rest]), strict=True):
            answers[i] = answer
    return [answer for answer in answers if answer is not None]


def _run_flat(collection: CollectionHandle, queries: Sequence[Query]) -> list[QueryResult]:
    """Single-stage queries: resolved, validated together, searched in one call."""
    answers: list[QueryResult | None] = [None] * len(queries)
    specs: list[SearchSpec] = []
    positions: list[int] = []
    deferred: dict[str, list[tuple[int, list[Any]]]] = {}
    for i, query in enumerate(queries):
        spec = _resolve(collection, query, deferred, len(specs))
        if spec is None:
            answers[i] = _points_without_query(collection, query)
        else:
            specs.append(spec)
            positions.append(i)
    for name, waiting in deferred.items():
        matrix = collection.prepare_queries(name, [raw for _, raw in waiting])
        for (at, _), vector in zip(waiting, matrix, strict=True):
            specs[at].vector = vector
    weigh_sparse_queries(collection, specs)
    collection.check_result_budget(specs)
    for i, spec, points in zip(positions, specs, collection.search(specs), strict=True):
        answers[i] = QueryResult(points, spec.explain)
    return [answer for answer in answers if answer is not None]


def _run_alike(collection: CollectionHandle, batch: AlikeQueries) -> list[QueryResult]:
    """A batch alike but for its literal vectors: the first query resolved once, every
    vector prepared in one call, and one search of them all, which makes no object per
    query before its answer (``CollectionHandle.search_alike``). What it checks, and
    in what order, is what ``_run_flat`` checks for each of these queries."""
    deferred: dict[str, list[tuple[int, list[Any]]]] = {}
    spec = _resolve(collection, batch.template, deferred, 0)
    assert spec is not None  # a literal vector: ``AlikeQueries.one_search``
    vectors = collection.prepare_queries(spec.using, batch.vectors)
    collection.check_result_budget([spec] * len(batch))
    return [QueryResult(points) for points in collection.search_alike(spec, vectors)]


def _resolve(
    collection: CollectionHandle,
    query: Query,
    deferred: dict[str, list[tuple[int, list[Any]]]],
    position: int,
) -> SearchSpec | None:
    """The query as a ``SearchSpec`` (None: no query, page by id); a literal vector is
    left in ``deferred`` under the spec's ``position`` to be prepared with its batch."""
    exclude = []
    vector: np.ndarray | SparseVector
    if query.point_id is not None:
        stored = collection.query_vector_of(query.point_id, query.using or "")
        if isinstance(stored, SparseVector):
            name, vector = collection.sparse_name(query.using), stored
        else:
            name, vector = collection.prepare_query(stored.tolist(), query.using)
        exclude.append(query.point_id)
    elif isinstance(query.vector, SparseVector):
        name, vector = collection.sparse_name(query.using), query.vector
    elif query.vector is not None:
        name, vector = collection.vector_name(query.using), _PENDING
        deferred.setdefault(name, []).append((position, query.vector))
    else:
        return None
    return SearchSpec(
        using=name,
        vector=vector,
        limit=query.limit,
        offset=query.offset,
        filter=query.filter,
        score_threshold=query.score_threshold,
        with_payload=query.with_payload,
        with_vector=query.with_vector,
        exclude_ids=exclude,
        params=query.params,
        force=query.force,
        explain=[] if query.explain else None,
        group_fill=query.group_fill,
    )


def weigh_sparse_queries(collection: CollectionHandle, specs: Sequence[SearchSpec]) -> None:
    """Multiply each term of a sparse query by its ``idf`` (Qdrant's formula) where the
    name has the ``idf`` modifier; the statistics are those of the live points holding
    that vector, over every segment (and shard), asked once per name for the batch."""
    by_name: dict[str, list[SearchSpec]] = {}
    for spec in specs:
        if isinstance(spec.vector, SparseVector) and collection.sparse_idf(spec.using):
            by_name.setdefault(spec.using, []).append(spec)
    for name, group in by_name.items():
        vectors = [s.vector for s in group if isinstance(s.vector, SparseVector)]
        terms = np.unique(np.concatenate([v.indices for v in vectors]))
        df, total = collection.sparse_statistics(name, terms)
        weights = idf(df, total)
        for spec, vector in zip(group, vectors, strict=True):
            scale = weights[np.searchsorted(terms, vector.indices)]
            spec.vector = SparseVector(vector.indices, (vector.values * scale).astype(np.float32))


def _points_without_query(collection: CollectionHandle, query: Query) -> QueryResult:
    """Points in id order (or by ``order_by``, or a random ``sample``), each scored 1.0
    at version 0, as Qdrant answers a query without a vector."""
    wanted = query.limit + query.offset
    selected = (query.filter, wanted, query.with_payload, query.with_vector)
    explain = [{"stage": _kind(query), "points": 0}] if query.explain else None
    if query.order_by is not None:
        flt, _, with_payload, with_vector = selected
        page = collection.scroll_ordered(flt, query.order_by, wanted, with_payload, with_vector)
        values = page.order_values or []
        points = [
            ScoredPoint.of_record(record, 0, 1.0)._replace(order_value=value)
            for record, value in zip(page.records, values, strict=True)
        ]
    elif query.sample:
        points = [ScoredPoint.of_record(record, 0, 1.0) for record in collection.sample(*selected)]
    else:
        flt, _, with_payload, with_vector = selected
        page = collection.scroll(flt, wanted, None, with_payload, with_vector)
        points = [ScoredPoint.of_record(record, 0, 1.0) for record in page.records]
    points = points[query.offset :]
    if explain is not None:
        explain[0]["points"] = len(points)
        if query.order_by is not None:
            explain[0].update(key=query.order_by.key, descending=query.order_by.descending)
    return QueryResult(points, explain)


def _kind(query: Query) -> str:
    """The explain stage name of a query without a vector."""
    if query.order_by is not None:
        return "order_by (payload range index)"
    return "random sample" if query.sample else "scroll by id"
