"""Answering queries by example (``examples.py``): recommend, discover, context and
relevance feedback, on any collection (one node or sharded) through its ``search``.

``average_vector`` is one plain nearest query with the combined vector.

``best_score``, ``sum_scores``, discover and context on a dense vector rank by their
custom score inside the segments, as Qdrant does: each query is one ``SearchSpec``
carrying an ``index.graph_walk.CustomScore``; a sealed HNSW segment walks its graph
with that score (``index/graph_walk.py``), other segments score every allowed row
exactly, and the segments' and shards' top-k merge as plain searches do. The whole
batch is one collection call, so filters go through the planner, shards fan out and
``explain`` shows each segment's plan.

The rest (sparse and multi-vector examples, relevance feedback) is answered in two
steps, both ordinary batched searches:

1. *Candidates.* Each *seed* (the examples whose neighbourhoods hold the best points:
   positives, the target, the positive side of each context pair) fetches its
   ``max(64, 4 x (limit + offset))`` nearest points (times ``1 + pairs`` for
   discover), all seeds in one batch. With ``params.exact``, or when there is no seed,
   every point matching the filter is a candidate: an exact scan (its results must
   fit the request's result budget).
2. *Scores.* For dense vectors the candidates' stored vectors are read once and the
   ``examples x candidates`` similarity matrix is one numpy product; for sparse and
   multi-vectors (and the exact scan) each example is searched exactly over the
   candidates only (its filter narrowed by ``has_id``). The custom score is computed
   from that matrix in numpy (``examples.score``).

As in Qdrant, example ids of this collection are left out of the answer (fetched beyond
the page, then dropped: a ``must_not: has_id`` filter would be a per-row scan).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from index.graph_walk import KINDS, CustomScore
from index.metrics import Distance
from server.engine.examples import (
    Discover,
    Feedback,
    Recommend,
    average_dense,
    average_multi,
    average_sparse,
    examples_of,
    generators,
    internal,
    score,
)
from server.engine.filters import Filter, HasId
from server.engine.multistage import attach_output, merge_filters
from server.engine.payload import PayloadSelector
from server.engine.point_ids import PointId
from server.engine.requests import Query, SearchSpec
from server.engine.results import QueryResult, ScoredPoint
from server.engine.score_threshold import leading_passing, strictly_past
from server.engine.sparse_vector import SparseVector
from server.errors import BadRequest, InvalidVector

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

_NO_PAYLOAD = PayloadSelector.of("none")
Search = Callable[[Sequence[Query]], list[QueryResult]]
"""Runs plain nearest queries as one batch (``query.py``)."""
Operand = list[Any] | SparseVector

MIN_POOL = 64
"""Fewest candidates each generating example fetches from the graph."""
OVERSAMPLE = 4
"""Candidates each generating example fetches per result asked for."""


def run_example_queries(
    collection: CollectionHandle, queries: Sequence[Query], search: Search
) -> list[QueryResult]:
    """Answer queries whose ``examples`` are set, in order; those a segment can rank by
    their custom score go to the collection as one batch."""
    answers: list[QueryResult | None] = [None] * len(queries)
    walked: list[tuple[int, Query, list[Operand], frozenset[PointId]]] = []
    resolved = _resolve(collection, queries)
    for i, (query, (vectors, mentioned)) in enumerate(zip(queries, resolved, strict=True)):
        if _walkable(collection, query, vectors):
            walked.append((i, query, vectors, mentioned))
        else:
            answers[i] = _answer(collection, query, vectors, mentioned, search)
    if walked:
        for (i, *_), answer in zip(walked, _walk(collection, walked), strict=True):
            answers[i] = answer
    return [answer for answer in answers if answer is not None]


def _walkable(collection: CollectionHandle, query: Query, vectors: list[Operand]) -> bool:
    """Whether the segments rank this query by its custom score: dense examples on a
    dense (not multi-vector) name, a score the walk knows (not ``average_vector``, not
    relevance feedback)."""
    examples = query.examples
    if isinstance(examples, Recommend):
        known = examples.strategy != "average_vector"
    else:
        known = isinstance(examples, Discover)
    if not (known and vectors and all(_is_dense(vector) for vector in vectors)):
        return False
    name = collection.vector_name(query.using)  # a 400 for a sparse or unknown name
    return not collection.config.vectors[name].is_multi


def _walk(
    collection: CollectionHandle,
    walked: list[tuple[int, Query, list[Operand], frozenset[PointId]]],
) -> list[QueryResult]:
    """One collection search for the batch, each spec ranked by its custom score; the
    examples are fetched beyond the page, then dropped, the threshold cut after."""
    prepared = _prepared(collection, [(query, vectors) for _, query, vectors, _ in walked])
    specs = [
        _custom_spec(collection, query, examples, len(mentioned))
        for (_, query, _, mentioned), examples in zip(walked, prepared, strict=True)
    ]
    collection.check_result_budget(specs)
    answers: list[QueryResult] = []
    found = collection.search(specs)
    for (_, query, vectors, mentioned), spec, hits in zip(walked, specs, found, strict=True):
        points = [point for point in hits if point.id not in mentioned]
        if query.score_threshold is not None:
            points = _past(points, query.score_threshold, _distance(collection, query, vectors))
        page = points[query.offset : query.offset + query.limit]
        output = attach_output(collection, page, query)
        answers.append(QueryResult(output, _walk_trace(query, spec)))
    return answers


def _prepared(
    collection: CollectionHandle, walked: list[tuple[Query, list[Operand]]]
) -> list[np.ndarray]:
    """Each query's examples prepared as query vectors of its name (validated,
    normalised for Cosine), the batch's examples of one name in one call."""
    names = [collection.vector_name(query.using) for query, _ in walked]
    out = [np.empty(0, dtype=np.float32)] * len(walked)
    for name in dict.fromkeys(names):
        mine = [i for i, other in enumerate(names) if other == name]
        rows = [vector for i in mine for vector in walked[i][1]]
        try:
            matrix = np.asarray(collection.prepare_queries(name, rows), dtype=np.float32)
        except InvalidVector:
            for i in mine:  # the error as one query's examples name it
                collection.prepare_queries(name, walked[i][1])
            raise
        bounds = np.cumsum([0] + [len(walked[i][1]) for i in mine]).tolist()
        for i, start, stop in zip(mine, bounds, bounds[1:], strict=False):
            out[i] = matrix[start:stop]
    return out


def _custom_spec(
    collection: CollectionHandle, query: Query, prepared: np.ndarray, mentioned: int
) -> SearchSpec:
    """The query as a search ranked by its custom score over the prepared examples."""
    examples = query.examples
    assert isinstance(examples, Recommend | Discover)
    name = collection.vector_name(query.using)
    if isinstance(examples, Recommend):
        kind, split = examples.strategy, len(examples.positive)
    else:
        has_target = examples.target is not None
        kind, split = ("discover", 1) if has_target else ("context", 0)
    assert kind in KINDS
    custom = CustomScore(kind, prepared, split, tuple(generators(examples)))
    return SearchSpec(
        using=name,
        vector=prepared[0],
        limit=query.offset + query.limit + mentioned,
        filter=query.filter,
        params=query.params,
        force=query.force,
        explain=[] if query.explain else None,
        custom=custom,
    )


def _walk_trace(query: Query, spec: SearchSpec) -> list[dict[str, Any]] | None:
    if spec.explain is None:
        return None
    assert spec.custom is not None
    how = "exact scan" if query.params.exact else "graph walk with the custom score"
    entry = {"stage": kind(query), "candidates": how, "examples": len(spec.custom.examples)}
    return [entry | ({"plans": spec.explain} if spec.explain else {})]


def _answer(
    collection: CollectionHandle,
    query: Query,
    vectors: list[Operand],
    mentioned: frozenset[PointId],
    search: Search,
) -> QueryResult:
    """One query the segments cannot rank: candidates, then scores (module docstring)."""
    assert query.examples is not None
    examples = query.examples
    if isinstance(examples, Recommend) and examples.strategy == "average_vector":
        return _nearest_to_average(query, examples, vectors, mentioned, search)
    if isinstance(examples, Feedback) and not all(_is_dense(v) for v in vectors):
        raise BadRequest("Wrong input: relevance_feedback works on dense vectors only")
    trace: list[dict[str, Any]] | None = [] if query.explain else None
    distance = _distance(collection, query, vectors)
    ids, versions, sims = _similarities(collection, query, vectors, search, trace)
    keep = [i for i, point_id in enumerate(ids) if point_id not in mentioned]
    if not keep:
        return QueryResult([], trace)
    values = score(examples, sims[:, keep])
    order = np.argsort(-values, kind="stable")
    points = [
        ScoredPoint(ids[keep[i]], versions[keep[i]], float(values[i]), None, None) for i in order
    ]
    if query.score_threshold is not None:
        points = _past(points, query.score_threshold, distance)
    page = points[query.offset : query.offset + query.limit]
    return QueryResult(attach_output(collection, page, query), trace)


def _nearest_to_average(
    query: Query,
    examples: Recommend,
    vectors: list[Operand],
    mentioned: frozenset[PointId],
    search: Search,
) -> QueryResult:
    """One nearest query; the examples are fetched beyond the page, then dropped."""
    wanted = query.limit + query.offset
    plain = replace(
        query,
        vector=_average(examples, vectors),
        point_id=None,
        examples=None,
        lookup=None,
        limit=wanted + len(mentioned),
        offset=0,
    )
    answer = search([plain])[0]
    points = [point for point in answer.points if point.id not in mentioned]
    return QueryResult(points[query.offset : wanted], answer.explain)


def _past(points: list[ScoredPoint], threshold: float, distance: Distance) -> list[ScoredPoint]:
    """The best points up to the first one not strictly past ``score_threshold``, the
    metric saying which side is past even for a custom score (``score_threshold.py``)."""
    rule = strictly_past(distance.higher_is_better)
    return points[: leading_passing([point.score for point in points], threshold, rule)]


def _resolve(
    collection: CollectionHandle, queries: Sequence[Query]
) -> list[tuple[list[Operand], frozenset[PointId]]]:
    """Each query's examples as vectors (ids read where ``lookup_from`` says), and the
    ids of this collection's points it names (left out of its answer). The ids the
    whole batch names are read in one call per collection and vector name."""
    wanted: dict[tuple[int, str], tuple[CollectionHandle, list[PointId]]] = {}
    keys = []
    for query in queries:
        source, name = _source(collection, query)
        keys.append((id(source), name))
        ids = wanted.setdefault(keys[-1], (source, []))[1]
        ids.extend(_ids(query))
    stored = {
        key: iter(source.query_vectors_of(ids, key[1]) if ids else [])
        for key, (source, ids) in wanted.items()
    }
    return [
        _vectors(collection, query, stored[key], wanted[key][0] is collection)
        for query, key in zip(queries, keys, strict=True)
    ]


def _source(collection: CollectionHandle, query: Query) -> tuple[CollectionHandle, str]:
    """The collection a query's example ids name, and their vector name there."""
    lookup = query.lookup
    source = collection if lookup is None else lookup.collection
    name = query.using if lookup is None or lookup.vector is None else lookup.vector
    return source, name or ""


def _ids(query: Query) -> list[PointId]:
    assert query.examples is not None
    examples = examples_of(query.examples)
    return [example for example in examples if not isinstance(example, list | SparseVector)]


def _vectors(
    collection: CollectionHandle,
    query: Query,
    stored: Iterator[np.ndarray | SparseVector],
    own: bool,
) -> tuple[list[Operand], frozenset[PointId]]:
    """One query's examples with the stored vectors of its ids (taken from ``stored``
    in order), and the ids to leave out of its answer (``own``: they are this
    collection's points)."""
    assert query.examples is not None
    multi = _names_multi(collection, query.using)
    vectors: list[Operand] = []
    for example in examples_of(query.examples):
        if isinstance(example, list | SparseVector):
            # one plain vector for a multi-vector name is a multi-vector of one row, as
            # for a nearest query (``vectors.prepare_sets``) and in Qdrant
            vectors.append([example] if multi and _flat(example) else example)
            continue
        vector = next(stored)
        vectors.append(vector if isinstance(vector, SparseVector) else vector.tolist())
    return vectors, frozenset(_ids(query) if own else ())


def _names_multi(collection: CollectionHandle, using: str | None) -> bool:
    """Whether the query's vector name is a multi-vector one (a sparse or unknown name
    is for the query's own checks to refuse)."""
    params = collection.config.vectors.get(using or "")
    return params is not None and params.is_multi


def _flat(example: list[Any] | SparseVector) -> bool:
    return isinstance(example, list) and bool(example) and isinstance(example[0], int | float)


def _average(examples: Recommend, vectors: list[Operand]) -> Operand:
    """The one query vector of ``average_vector``."""
    split = len(examples.positive)
    if all(isinstance(v, SparseVector) for v in vectors):
        sparse = [v for v in vectors if isinstance(v, SparseVector)]
        return average_sparse(sparse[:split], sparse[split:])
    if any(isinstance(v, SparseVector) for v in vectors):
        raise BadRequest("Wrong input: examples mix sparse and dense vectors")
    try:
        arrays = [np.asarray(v, dtype=np.float64) for v in vectors]
    except (TypeError, ValueError):
        raise BadRequest("Wrong input: examples must be vectors of numbers") from None
    if len({a.shape[1:] if a.ndim == 2 else a.shape for a in arrays}) != 1:
        raise BadRequest("Wrong input: examples have different dimensions")
    combine = average_multi if arrays[0].ndim == 2 else average_dense
    result: list[Any] = combine(arrays[:split], arrays[split:]).tolist()
    return result


def _similarities(
    collection: CollectionHandle,
    query: Query,
    vectors: list[Operand],
    search: Search,
    trace: list[dict[str, Any]] | None,
) -> tuple[list[PointId], list[int], np.ndarray]:
    """Candidate ids, their versions, and the ``examples x candidates`` internal
    similarities (example ids among the candidates are the caller's to drop)."""
    assert query.examples is not None
    flt = query.filter
    seeds = [] if query.params.exact else _seeds(collection, query, vectors)
    if seeds:
        wanted = _pool(query) + len(vectors)
        found = search([_leaf(query, seed, flt, wanted, query.params) for seed in seeds])
        hits = {point.id: point.version for answer in found for point in answer.points}
        if hits and all(_is_dense(vector) for vector in vectors):
            _note(trace, query, False, len(vectors), len(hits), found)
            return _dense_matrix(collection, query, vectors, hits)
        limit, narrowed = len(hits), _only(list(hits), flt) if hits else flt
    else:
        limit, narrowed = collection.count(flt), flt
    if limit == 0:
        _note(trace, query, not seeds, len(vectors), 0, [])
        return [], [], np.empty((len(vectors), 0))
    scoring = replace(query.params, exact=True)
    answers = search([_leaf(query, vector, narrowed, limit, scoring) for vector in vectors])
    if not any(isinstance(vector, SparseVector) for vector in vectors):
        ids, versions, sims = _matrix(answers)
    else:
        every = _every_id(collection, flt, limit) if not seeds else None
        ids, versions, sims = _sparse_matrix(answers, every)
    _note(trace, query, not seeds, len(vectors), len(ids), answers)
    return ids, versions, internal(sims, _distance(collection, query, vectors))


def _dense_matrix(
    collection: CollectionHandle,
    query: Query,
    vectors: list[Operand],
    hits: dict[PointId, int],
) -> tuple[list[PointId], list[int], np.ndarray]:
    """Internal similarities of dense candidates to every example, in one numpy product:
    the candidates' stored vectors read once, the examples prepared as queries."""
    name = collection.vector_name(query.using)
    records = collection.retrieve(list(hits), _NO_PAYLOAD, [name])
    stored = [(r.id, _named(r.vector, name)) for r in records]
    stored = [(point_id, vector) for point_id, vector in stored if vector is not None]
    ids = [point_id for point_id, _ in stored]
    if not ids:
        return [], [], np.empty((len(vectors), 0))
    points = np.asarray([vector for _, vector in stored], dtype=np.float64)
    examples = np.asarray(collection.prepare_queries(name, list(vectors)), dtype=np.float64)
    distance = collection.config.distance_of(name)
    if distance.higher_is_better:
        sims = examples @ points.T
    elif distance == Distance.EUCLID:
        sims = -np.square(examples[:, None, :] - points[None, :, :]).sum(axis=2)
    else:
        sims = -np.abs(examples[:, None, :] - points[None, :, :]).sum(axis=2)
    return ids, [hits[i] for i in ids], sims


def _named(output: Any, name: str) -> Any:
    """Vector ``name`` of a record's vector output (the unnamed one is bare)."""
    return output.get(name) if isinstance(output, dict) else output


def _seeds(collection: CollectionHandle, query: Query, vectors: list[Operand]) -> list[Operand]:
    """The vectors whose graph neighbours are the candidates (none: scan instead)."""
    assert query.examples is not None
    return [vectors[i] for i in generators(query.examples)]


def _pool(query: Query) -> int:
    """Candidates per seed: a discover query's best points must also sit inside every
    pair's zone, so it fetches more per pair."""
    wanted = max(MIN_POOL, OVERSAMPLE * (query.limit + query.offset))
    if isinstance(query.examples, Discover):
        return wanted * (1 + len(query.examples.context))
    return wanted


def _leaf(query: Query, vector: Operand, flt: Filter | None, limit: int, params: Any) -> Query:
    return Query(
        vector=vector,
        using=query.using,
        limit=limit,
        filter=flt,
        params=params,
        force=query.force,
        explain=query.explain,
    )


def _only(ids: list[PointId], flt: Filter | None) -> Filter:
    narrowed = merge_filters(flt, Filter(must=(HasId(frozenset(ids)),)))
    assert narrowed is not None
    return narrowed


def _matrix(answers: list[QueryResult]) -> tuple[list[PointId], list[int], np.ndarray]:
    """The points every example scored (a point without the vector scores for none)."""
    scored = [{point.id: point for point in answer.points} for answer in answers]
    first = scored[0]
    ids = [i for i in first if all(i in other for other in scored[1:])]
    sims = np.array([[found[i].score for i in ids] for found in scored], dtype=np.float64)
    return ids, [first[i].version for i in ids], sims.reshape(len(scored), len(ids))


def _sparse_matrix(
    answers: list[QueryResult], every: list[PointId] | None
) -> tuple[list[PointId], list[int], np.ndarray]:
    """As Qdrant scores sparse examples: a point sharing no term with an example is 0
    to it, and on an exact scan every point matching the filter is a candidate."""
    found: dict[PointId, int] = {}
    for answer in answers:
        for point in answer.points:
            found.setdefault(point.id, point.version)
    ids = list(found) if every is None else every
    column = {point_id: i for i, point_id in enumerate(ids)}
    sims = np.zeros((len(answers), len(ids)))
    for row, answer in enumerate(answers):
        for point in answer.points:
            if point.id in column:
                sims[row, column[point.id]] = point.score
    return ids, [found.get(i, 0) for i in ids], sims


def _every_id(collection: CollectionHandle, flt: Filter | None, limit: int) -> list[PointId]:
    page = collection.scroll(flt, limit, None, _NO_PAYLOAD, False)
    return [record.id for record in page.records]


def _is_dense(vector: Operand) -> bool:
    return isinstance(vector, list) and not (vector and isinstance(vector[0], list))


def _distance(collection: CollectionHandle, query: Query, vectors: list[Operand]) -> Distance:
    if any(isinstance(v, SparseVector) for v in vectors):
        return Distance.DOT
    return collection.config.distance_of(collection.vector_name(query.using))


def _note(
    trace: list[dict[str, Any]] | None,
    query: Query,
    exact: bool,
    examples: int,
    candidates: int,
    answers: list[QueryResult],
) -> None:
    if trace is None:
        return
    entry: dict[str, Any] = {
        "stage": kind(query),
        "candidates": "exact scan" if exact else "graph neighbours of the examples",
        "examples": examples,
        "candidates_scored": candidates,
    }
    plans = [plan for answer in answers for plan in answer.explain or []]
    if plans:
        entry["plans"] = plans
    trace.append(entry)


def kind(query: Query) -> str:
    """How ``explain`` names an example query."""
    examples = query.examples
    if isinstance(examples, Recommend):
        return f"recommend ({examples.strategy})"
    if isinstance(examples, Discover):
        return "discover" if examples.target is not None else "context"
    return "relevance_feedback"
