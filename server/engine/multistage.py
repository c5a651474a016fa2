"""Multi-stage queries: a tree of prefetches, answered bottom-up.

A ``Query`` with ``prefetch`` children is a stage over its children's candidates:
``combine`` fuses them (``fusion.py``) or scores them with a formula (``formula.py``);
otherwise the stage searches *only those candidates* with its own vector (the same
collection search, its filter narrowed by ``has_id``: re-scoring, e.g. a cheap first
stage then multi-vector MaxSim), maybe re-ranked for diversity (``mmr.py``).

As in Qdrant (and qdrant-client's local mode, the reference the tests compare with),
each stage's filter is merged into its children's, so a prefetch's ``limit`` counts
already filtered candidates; ``offset``, ``with_payload`` and ``with_vector`` belong
to the outermost stage only.

Every leaf search of every tree in a batch runs in one collection ``search`` call
(validated together; one kernel call for the unfiltered ones). A sharded collection
runs each leaf on every shard and merges the hits before any fusion, and answers
re-scoring searches the same way; the tree itself runs once, here, on the node that
received the request, so the answer is the single-node answer by construction (per
shard fusion would not be: RRF ranks and DBSF statistics are global).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from server.engine.filters import Filter, HasId, MinShould
from server.engine.formula import Candidates, FormulaQuery, evaluate
from server.engine.fusion import Fusion, fuse
from server.engine.mmr import mmr_order, sparse_mmr_order
from server.engine.payload import PayloadSelector
from server.engine.point_ids import PointId
from server.engine.requests import Query
from server.engine.results import QueryResult, ScoredPoint
from server.engine.score_threshold import FUSED, passing
from server.engine.sparse_vector import SparseVector
from server.errors import BadRequest

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

MAX_PREFETCH_DEPTH = 64
"""Nesting levels of ``prefetch`` one query may have."""
MAX_STAGES = 256
"""Stages (prefetches at any depth, plus the query itself) in one query."""
MAX_TREE_CANDIDATES = 1_000_000
"""Sum of the ``limit`` of every stage of one query: bounds the work it can cause."""

Search = Callable[[Sequence[Query]], list[QueryResult]]
"""Runs plain (single-stage) queries as one batch (``query.run_queries``)."""

_NO_PAYLOAD = PayloadSelector.of("none")
_ALL_PAYLOAD = PayloadSelector.of("all")


def check_tree(query: Query) -> None:
    """Refuse (400) a tree that is malformed or too big, before any search runs."""
    stages, candidates = _walk(query, 1)
    if stages > MAX_STAGES:
        raise BadRequest(f"Wrong input: {stages} prefetch stages exceed the limit of {MAX_STAGES}")
    if candidates > MAX_TREE_CANDIDATES:
        raise BadRequest(
            f"Wrong input: the stages of this query ask for {candidates} candidates in all, "
            f"more than the limit of {MAX_TREE_CANDIDATES}"
        )


def _walk(node: Query, depth: int) -> tuple[int, int]:
    if depth > MAX_PREFETCH_DEPTH:
        raise BadRequest(f"Wrong input: prefetch nested deeper than {MAX_PREFETCH_DEPTH} levels")
    if node.combine is not None and not node.prefetch:
        kind = "a formula" if isinstance(node.combine, FormulaQuery) else "fusion"
        raise BadRequest(f"Wrong input: cannot perform {kind} without prefetches")
    weights = node.combine.weights if isinstance(node.combine, Fusion) else None
    if weights is not None and len(weights) != len(node.prefetch):
        raise BadRequest(
            f"Wrong input: rrf has {len(weights)} weights for {len(node.prefetch)} prefetches"
        )
    stages, candidates = 1, node.limit + node.offset
    if node.mmr is not None and node.mmr.candidates_limit is not None:
        candidates += node.mmr.candidates_limit
    for child in node.prefetch:
        more, wanted = _walk(child, depth + 1)
        stages, candidates = stages + more, candidates + wanted
    return stages, candidates


def run_trees(
    collection: CollectionHandle, queries: Sequence[Query], search: Search
) -> list[QueryResult]:
    """Answer multi-stage ``queries`` in order; their leaves run as one batch."""
    for query in queries:
        check_tree(query)
    leaves: list[Query] = []
    for query in queries:
        for child in query.prefetch:
            _collect_leaves(child, query.filter, query.explain, leaves)
    started = time.perf_counter()
    leaf_results = search(leaves) if leaves else []
    leaf_ms = (time.perf_counter() - started) * 1000
    answers = iter(leaf_results)
    results = []
    for query in queries:
        trace: list[dict[str, Any]] | None = [] if query.explain else None
        if trace is not None and query.prefetch:
            trace.append({"stage": "leaf searches", "searches": len(leaves), "time_ms": leaf_ms})
        points = _Tree(collection, search, answers, trace).stage(query, None, 0)
        results.append(QueryResult(points, trace))
    return results


def _is_leaf(node: Query) -> bool:
    return not node.prefetch and node.mmr is None


def _collect_leaves(node: Query, inherited: Filter | None, explain: bool, out: list[Query]) -> None:
    """Leaves in the order ``_Tree`` consumes them, with their merged filters."""
    merged = merge_filters(inherited, node.filter)
    if _is_leaf(node):
        out.append(replace(node, filter=merged, explain=explain))
        return
    for child in node.prefetch:
        _collect_leaves(child, merged, explain, out)


def merge_filters(outer: Filter | None, inner: Filter | None) -> Filter | None:
    """Qdrant's ``Filter::merge_opts``: the clauses concatenated field-wise (so the two
    ``should`` lists become alternatives of each other)."""
    if outer is None or inner is None:
        return inner if outer is None else outer
    min_should = outer.min_should or inner.min_should
    if outer.min_should is not None and inner.min_should is not None:
        min_should = MinShould(
            outer.min_should.conditions + inner.min_should.conditions,
            max(outer.min_should.min_count, inner.min_should.min_count),
        )
    return Filter(
        must=outer.must + inner.must,
        should=outer.should + inner.should,
        must_not=outer.must_not + inner.must_not,
        min_should=min_should,
    )


def _only(ids: Sequence[PointId], flt: Filter | None) -> Filter:
    """``flt`` and a top-level ``must: has_id`` of the candidates (a segment bounds its
    rows through its id map, so re-scoring costs the candidates, not the segment)."""
    restricted = merge_filters(flt, Filter(must=(HasId(frozenset(ids)),)))
    assert restricted is not None
    return restricted


class _Tree:
    """One query's stages, evaluated depth-first; leaf answers come from ``answers``
    in the order ``_collect_leaves`` listed them."""

    def __init__(
        self,
        collection: CollectionHandle,
        search: Search,
        answers: Iterator[QueryResult],
        trace: list[dict[str, Any]] | None,
    ) -> None:
        self.collection = collection
        self.search = search
        self.answers = answers
        self.trace = trace

    def stage(self, node: Query, inherited: Filter | None, depth: int) -> list[ScoredPoint]:
        if depth > 0 and _is_leaf(node):
            answer = next(self.answers)
            self._note("search", node, depth, None, len(answer.points), 0.0, answer.explain)
            return list(answer.points)
        merged = merge_filters(inherited, node.filter)
        sources = [self.stage(child, merged, depth + 1) for child in node.prefetch]
        started = time.perf_counter()
        points = self._combine(node, merged, sources, depth)
        seen = sum(len(source) for source in sources) if node.prefetch else None
        kind = _kind(node)
        self._note(kind, node, depth, seen, len(points), time.perf_counter() - started, None)
        return points

    def _combine(
        self, node: Query, merged: Filter | None, sources: list[list[ScoredPoint]], depth: int
    ) -> list[ScoredPoint]:
        offset = node.offset if depth == 0 else 0
        if node.combine is None:
            return self._rescore(node, merged, sources, depth == 0)
        if isinstance(node.combine, Fusion):
            points = fuse(node.combine, sources, node.limit + offset)
        else:
            points = self._formula(node.combine, sources, node.limit + offset)
        if node.score_threshold is not None:
            scores = np.array([point.score for point in points], dtype=np.float64)
            kept = passing(scores, node.score_threshold, FUSED).tolist()
            points = [point for point, keep in zip(points, kept, strict=True) if keep]
        points = points[offset:]
        return self._output(points, node) if depth == 0 else points

    def _rescore(
        self, node: Query, merged: Filter | None, sources: list[list[ScoredPoint]], top: bool
    ) -> list[ScoredPoint]:
        """Search only the candidates (all points when there are no prefetches)."""
        flt = merged
        if node.prefetch:
            ids = list(dict.fromkeys(point.id for source in sources for point in source))
            if not ids:
                return []
            flt = _only(ids, merged)
        if node.mmr is None:
            plain = replace(node, filter=flt, prefetch=(), explain=False)
            return list(self.search([plain])[0].points)
        return self._mmr(node, flt, top)

    def _mmr(self, node: Query, flt: Filter | None, top: bool) -> list[ScoredPoint]:
        assert node.mmr is not None
        offset = node.offset if top else 0
        wanted = node.mmr.candidates_limit if node.mmr.candidates_limit is not None else node.limit
        plain = replace(
            node,
            filter=flt,
            prefetch=(),
            mmr=None,
            limit=wanted,
            offset=0,
            with_payload=_NO_PAYLOAD,
            with_vector=False,
            explain=False,
        )
        hits = self.search([plain])[0].points
        if not hits:
            return []
        name, query_vector = self._query_vector(node)
        records = self.collection.retrieve([hit.id for hit in hits], _NO_PAYLOAD, [name])
        stored = {record.id: _output_of(record.vector, name) for record in records}
        vectors = [stored[hit.id] for hit in hits]
        wanted = node.limit + offset
        if isinstance(query_vector, SparseVector):
            pairs = [(np.asarray(v["indices"]), np.asarray(v["values"])) for v in vectors]
            query_pair = (query_vector.indices, query_vector.values)
            order = sparse_mmr_order(query_pair, pairs, node.mmr.diversity, wanted)
        else:
            distance = self.collection.config.vectors[name].distance
            dense = [np.asarray(vector, dtype=np.float64) for vector in vectors]
            order = mmr_order(query_vector, dense, distance, node.mmr.diversity, wanted)
        points = [hits[i] for i in order][offset:]
        return self._output(points, node) if top else points

    def _query_vector(self, node: Query) -> tuple[str, np.ndarray | SparseVector]:
        """The MMR query as stored vectors compare with it (a point's own vector for
        a point id; dense ones prepared, e.g. normalised for Cosine)."""
        vector: Any = node.vector
        if node.point_id is not None:
            vector = self.collection.query_vector_of(node.point_id, node.using or "")
        if isinstance(vector, SparseVector):
            return self.collection.sparse_name(node.using), vector
        if node.point_id is not None:
            return self.collection.vector_name(node.using), vector
        return self.collection.prepare_query(vector, node.using)

    def _formula(
        self, formula: FormulaQuery, sources: list[list[ScoredPoint]], limit: int
    ) -> list[ScoredPoint]:
        first: dict[PointId, ScoredPoint] = {}
        for source in sources:
            for point in source:
                first.setdefault(point.id, point)
        ids = list(first)
        position = {point_id: i for i, point_id in enumerate(ids)}
        scores = []
        for source in sources:
            column = np.full(len(ids), np.nan)
            column[[position[point.id] for point in source]] = [point.score for point in source]
            scores.append(column)
        records = self.collection.retrieve(ids, _ALL_PAYLOAD, False)
        payloads = {record.id: record.payload or {} for record in records}
        candidates = Candidates(
            ids, [payloads.get(i, {}) for i in ids], scores, self._has_vector(ids)
        )
        values = evaluate(formula, candidates)
        order = np.argsort(-values, kind="stable")[:limit]
        return [first[ids[i]]._replace(score=float(values[i])) for i in order.tolist()]

    def _has_vector(self, ids: list[PointId]) -> Callable[[str], np.ndarray]:
        def present(name: str) -> np.ndarray:
            records = {r.id: r.vector for r in self.collection.retrieve(ids, _NO_PAYLOAD, True)}
            return np.array([_stores(records.get(i), name) for i in ids], dtype=bool)

        return present

    def _output(self, points: list[ScoredPoint], node: Query) -> list[ScoredPoint]:
        return attach_output(self.collection, points, node)

    def _note(
        self,
        kind: str,
        node: Query,
        depth: int,
        seen: int | None,
        kept: int,
        seconds: float,
        plans: list[dict[str, Any]] | None,
    ) -> None:
        if self.trace is None:
            return
        entry: dict[str, Any] = {
            "stage": kind,
            "depth": depth,
            "using": node.using,
            "candidates_in": seen,
            "candidates_out": kept,
            "time_ms": round(seconds * 1000, 3),
        }
        if plans:
            entry["plans"] = plans
        self.trace.append(entry)


def attach_output(
    collection: CollectionHandle, points: list[ScoredPoint], node: Query
) -> list[ScoredPoint]:
    """The payloads and vectors the request asked for, fetched for the answer only."""
    if node.with_payload.mode == "none" and node.with_vector is False:
        return points
    records = collection.retrieve([p.id for p in points], node.with_payload, node.with_vector)
    found = {record.id: record for record in records}
    return [
        point._replace(payload=found[point.id].payload, vector=found[point.id].vector)
        if point.id in found
        else point
        for point in points
    ]


def _kind(node: Query) -> str:
    if isinstance(node.combine, Fusion):
        return node.combine.method
    if isinstance(node.combine, FormulaQuery):
        return "formula"
    if node.mmr is not None:
        return "mmr"
    if node.examples is not None:
        return "examples"
    if node.order_by is not None:
        return "order_by"
    if node.sample:
        return "sample"
    return "rescore" if node.vector is not None or node.point_id is not None else "scroll"


def _output_of(output: Any, name: str) -> Any:
    """Vector ``name`` of a record's vector output (the unnamed one is bare)."""
    return output.get(name) if isinstance(output, dict) else output


def _stores(output: Any, name: str) -> bool:
    if isinstance(output, dict):
        return output.get(name) is not None
    return output is not None and name == ""
