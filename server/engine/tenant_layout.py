"""Tenant layout of a sealed segment: rows grouped by tenant, and graphs per payload value.

Qdrant's multitenancy (docs/adr/0020-tenant-layout.md):

* **co-location**: when the collection has an ``is_tenant`` keyword / uuid index, a build
  lays the segment's rows out grouped by that field's value (stable within a tenant), so
  one tenant's rows are one contiguous range; the planner's tenant exact path scores that
  range as a slice of the vector matrix instead of gathering rows;
* **per-value graphs**: with ``hnsw_config.payload_m`` > 0, every keyword / uuid / integer
  index whose ``enable_hnsw`` is not false gets one small HNSW graph (``m = payload_m``)
  per value holding more rows than the exact-scan threshold. A filter pinning that value
  walks its graph, not the main one (which ``m: 0`` leaves unbuilt).

A graph lists the segment rows it was built over. Payloads change after a build, so a
search still checks its filter mask on the graph's rows, and rows that joined the value
since (not in the graph) are scored exactly beside the walk: results never depend on
how stale the layout is, only the speed does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.base import SearchParams
from index.hnsw_faiss import HnswIndex, HnswParams
from index.metrics import Distance
from index.serialization import Buffer, pack, unpack
from server.engine.field_matchers import MatchValue
from server.engine.filters import FieldCondition, Filter

VALUE_GRAPHS_BLOB = "#value-graphs"
"""The segment file holding a segment's per-value graphs (no vector name starts with '#')."""

GRAPH_FIELD_TYPES = frozenset({"keyword", "uuid", "integer"})
TENANT_FIELD_TYPES = frozenset({"keyword", "uuid"})

ValueKey = str | int
"""An indexed value as its index keys it: a keyword, a canonical uuid, an int64."""


def value_keys(value: Any) -> list[ValueKey]:
    """The keys a ``match`` operand may be indexed under (a uuid in another spelling
    too); bools are never integer keys."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if not isinstance(value, str):
        return []
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return [value]
    return [value] if canonical == value else [value, canonical]


def pinned_values(flt: Filter | None) -> list[tuple[str, Any]]:
    """(field, value) of each ``match`` in ``flt``'s top-level ``must``: every row the
    filter passes holds that value, so that value's own graph holds them all."""
    return [
        (condition.key, condition.test.value)
        for condition in (() if flt is None else flt.must)
        if isinstance(condition, FieldCondition) and isinstance(condition.test, MatchValue)
    ]


def tenant_field(schema: Mapping[str, Any]) -> str | None:
    """The first keyword / uuid field indexed with ``is_tenant: true``."""
    for field, spec in schema.items():
        tenant = isinstance(spec, Mapping) and spec.get("is_tenant") is True
        if tenant and spec.get("type") in TENANT_FIELD_TYPES:
            return field
    return None


def graph_fields(schema: Mapping[str, Any]) -> list[str]:
    """Fields that get per-value graphs when ``payload_m`` > 0: keyword, uuid and
    integer (with ``lookup``) indexes whose ``enable_hnsw`` is not false."""
    fields = []
    for field, spec in schema.items():
        kind = spec if isinstance(spec, str) else spec.get("type")
        if kind not in GRAPH_FIELD_TYPES:
            continue
        if isinstance(spec, Mapping) and (
            spec.get("enable_hnsw") is False or spec.get("lookup") is False
        ):
            continue
        fields.append(field)
    return sorted(fields)


FieldValues = dict[str, list[tuple[ValueKey, np.ndarray]]]
"""Per field: each value and the rows (of a build job) holding it, rows ascending."""


def group_rows(pairs: Iterable[tuple[Any, int]]) -> list[tuple[ValueKey, np.ndarray]]:
    """(key, row) pairs -> each key's rows, keys in first-seen order."""
    grouped: dict[ValueKey, list[int]] = {}
    for key, row in pairs:
        if isinstance(key, str | int) and not isinstance(key, bool):
            grouped.setdefault(key, []).append(row)
    return [(key, np.sort(np.asarray(rows, dtype=np.int64))) for key, rows in grouped.items()]


def tenant_permutation(groups: Sequence[tuple[ValueKey, np.ndarray]], count: int) -> np.ndarray:
    """Rows reordered so each tenant's rows are adjacent, in their current order within
    a tenant; tenants by first appearance; rows without a tenant last. A row with several
    tenant values joins its first tenant's range."""
    code = np.full(count, len(groups), dtype=np.int64)
    for number, (_, rows) in reversed(list(enumerate(groups))):
        code[rows] = number
    first_seen = np.argsort([int(rows[0]) if len(rows) else count for _, rows in groups])
    rank = np.empty(len(groups) + 1, dtype=np.int64)
    rank[first_seen] = np.arange(len(groups))
    rank[len(groups)] = len(groups)
    permutation: np.ndarray = np.argsort(rank[code], kind="stable").astype(np.int64)
    return permutation


def renumber(values: FieldValues, permutation: np.ndarray) -> FieldValues:
    """Row numbers of ``values`` after the rows were reordered by ``permutation``
    (``permutation[new] = old``)."""
    new_of = np.empty(len(permutation), dtype=np.int64)
    new_of[permutation] = np.arange(len(permutation))
    return {f: [(k, np.sort(new_of[rows])) for k, rows in groups] for f, groups in values.items()}


@dataclass(slots=True)
class ValueGraph:
    """One value's graph: its ``rows`` (segment rows, ascending) and an HNSW over them."""

    rows: np.ndarray
    index: HnswIndex

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray, ef: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-``k`` segment rows among ``allowed`` (a mask over the segment's rows) by
        a walk of this graph, and the allowed rows it does not hold (to score exactly)."""
        local = allowed[self.rows]
        found, scores = self.index.search(queries, k, params=SearchParams(ef=ef), allowed=local)
        found = np.where(found >= 0, self.rows[np.maximum(found, 0)], -1)
        outside = allowed.copy()
        outside[self.rows] = False
        return found, scores, outside


def merge_top(
    rows: np.ndarray,
    scores: np.ndarray,
    more: np.ndarray,
    more_scores: np.ndarray,
    k: int,
    distance: Distance,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of two padded result sets of the same queries."""
    both = np.concatenate([rows, more], axis=1)
    both_scores = np.concatenate([scores, more_scores], axis=1)
    key = np.where(both >= 0, -both_scores if distance.higher_is_better else both_scores, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(both, order, 1), np.take_along_axis(both_scores, order, 1)


@dataclass(frozen=True, slots=True)
class GraphBuild:
    """What per-value graphs a build makes: for each dense vector, ``payload_m`` and the
    least rows a value needs (under it the planner scans exactly anyway)."""

    m: dict[str, int]
    ef_construct: int
    min_rows: dict[str, int]


class ValueGraphs:
    """A segment's per-value graphs, by (vector name, field, value key)."""

    def __init__(self, graphs: dict[tuple[str, str, ValueKey], ValueGraph] | None = None) -> None:
        self.graphs = graphs or {}

    def __len__(self) -> int:
        return len(self.graphs)

    def find(self, vector: str, pinned: list[tuple[str, Any]]) -> tuple[str, ValueGraph] | None:
        """The smallest graph of ``vector`` for one of the ``pinned`` (field, value)
        conditions, with its ``field=value`` label."""
        found = [
            (f"{field}={value}", graph)
            for field, value in pinned
            for key in value_keys(value)
            if (graph := self.graphs.get((vector, field, key))) is not None
        ]
        return min(found, key=lambda item: len(item[1].rows), default=None)

    def memory_bytes(self) -> int:
        return sum(g.rows.nbytes + g.index.stats().memory_bytes for g in self.graphs.values())

    def to_bytes(self) -> bytes:
        keys = list(self.graphs)
        header = {"kind": "value_graphs", "keys": [list(key) for key in keys]}
        blobs: list[bytes] = []
        for key in keys:
            graph = self.graphs[key]
            blobs += [graph.rows.astype(np.int64).tobytes(), graph.index.to_bytes()]
        return pack(header, blobs)

    @classmethod
    def from_bytes(cls, data: Buffer) -> ValueGraphs:
        header, blobs = unpack(data)
        graphs: dict[tuple[str, str, ValueKey], ValueGraph] = {}
        for position, (vector, field, key) in enumerate(header["keys"]):
            rows = np.frombuffer(blobs[2 * position], dtype=np.int64).copy()
            graphs[(vector, field, key)] = ValueGraph(
                rows, HnswIndex.from_bytes(bytes(blobs[2 * position + 1]))
            )
        return cls(graphs)


def build_value_graphs(
    plan: GraphBuild,
    values: FieldValues,
    vectors: Mapping[str, np.ndarray],
    metrics: Mapping[str, Distance],
    present: Mapping[str, np.ndarray],
) -> ValueGraphs:
    """One graph per (vector, field, value) with more than ``min_rows`` rows that hold
    the vector; graphs of one vector share its ``payload_m`` and ``ef_construct``."""
    graphs: dict[tuple[str, str, ValueKey], ValueGraph] = {}
    for vector, m in plan.m.items():
        params = HnswParams(m=m, ef_construct=plan.ef_construct)
        matrix = vectors[vector]
        for field, groups in values.items():
            for key, rows in groups:
                rows = rows[present[vector][rows]]
                if len(rows) <= plan.min_rows[vector]:
                    continue
                index = HnswIndex(matrix.shape[1], metrics[vector], params)
                index.add(matrix[rows])
                graphs[(vector, field, key)] = ValueGraph(rows, index)
    return ValueGraphs(graphs)
