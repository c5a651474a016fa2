"""What the engine answers: typed values, rendered to Qdrant JSON by ``server/api/render.py``.

The engine (single-node or sharded) returns these and the cluster merges them; only the
API layer knows the wire shapes. Hits and records are ``NamedTuple``s, not frozen
dataclasses: a search batch makes thousands of them, and a frozen dataclass's ``__init__``
measured five times the cost of building the dict it replaces (a tuple costs the same);
they are just as immutable and pickle smaller for the shard transports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from server.engine.config import CollectionConfig
from server.engine.point_ids import PointId

VectorOutput = list[Any] | dict[str, list[Any]] | None
"""A point's vectors as asked for (``with_vector``): None, the one unnamed vector (a list
of floats, or of token rows for a multi-vector), or a list per vector name."""


class Record(NamedTuple):
    """A point as retrieve / scroll / get return it."""

    id: PointId
    payload: dict[str, Any] | None
    vector: VectorOutput


class ScoredPoint(NamedTuple):
    """One search hit: the point, its version (the operation that last wrote it) and its
    score (higher is better, except for Euclid and Manhattan distances)."""

    id: PointId
    version: int
    score: float
    payload: dict[str, Any] | None
    vector: VectorOutput
    order_value: int | float | None = None
    """The ``order_by`` key's value, for points of an ``order_by`` query."""

    @classmethod
    def of_record(cls, record: Record, version: int, score: float) -> ScoredPoint:
        return cls(record.id, version, score, record.payload, record.vector)


@dataclass(frozen=True, slots=True)
class ScrollPage:
    """Points in id order and the id the next page starts at (None: this was the last);
    for ``order_by`` pages, each record's ``order_value`` and no next offset."""

    records: list[Record]
    next_offset: PointId | None
    order_values: list[int | float] | None = None


@dataclass(frozen=True, slots=True)
class HitColumns:
    """The hits of a batch of searches answered together that carry neither payload nor
    vector, as columns: point ids, versions and scores (float32, as the index gave them)."""

    ids: list[PointId]
    versions: list[int]
    scores: np.ndarray


class HitPage(Sequence[ScoredPoint]):
    """One search's hits, rows ``start:stop`` of its batch's ``HitColumns``. A batch of
    100 searches makes ~1,000 hits; a hit object each, then a dict each to render it,
    cost more Python than the rest of the batch around faiss, so the renderer reads the
    columns (``render.py``) and a ``ScoredPoint`` is made only for a caller reading one."""

    __slots__ = ("columns", "start", "stop")

    def __init__(self, columns: HitColumns, start: int, stop: int) -> None:
        self.columns, self.start, self.stop = columns, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, i: int) -> ScoredPoint: ...

    @overload
    def __getitem__(self, i: slice) -> list[ScoredPoint]: ...

    def __getitem__(self, i: int | slice) -> ScoredPoint | list[ScoredPoint]:
        rows = range(self.start, self.stop)[i]
        if isinstance(rows, range):
            return [self._hit(row) for row in rows]
        return self._hit(rows)

    def __iter__(self) -> Iterator[ScoredPoint]:
        return map(self._hit, range(self.start, self.stop))

    def _hit(self, row: int) -> ScoredPoint:
        c = self.columns
        return ScoredPoint(c.ids[row], c.versions[row], float(c.scores[row]), None, None)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One query's answer; ``explain`` holds the per-segment plans when they were asked for."""

    points: Sequence[ScoredPoint]
    explain: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class PayloadFieldInfo:
    """An indexed payload field: its type, how many points hold a value, and the full
    schema when it has options beyond the type."""

    data_type: str
    points: int
    params: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VectorMemory:
    """Quiver extension: index memory for one vector name, in parts (graph links, codes,
    originals kept for re-ranking), in total and per indexed vector."""

    points: int
    bytes: dict[str, int]
    bytes_per_vector: dict[str, float]


@dataclass(frozen=True, slots=True)
class CollectionMemory:
    """Quiver extension: all of one collection's memory that grows with its points: the
    indexes (``vectors_memory`` summed) and the bookkeeping around them (ids, versions,
    masks, kept payload keys, the appendable segment's rows), in parts and per point."""

    points: int
    bytes: dict[str, int]

    @property
    def total_bytes(self) -> int:
        """Process memory: ``*_mapped`` parts are memory-mapped files, not counted."""
        return sum(v for k, v in self.bytes.items() if not k.endswith("_mapped"))

    @property
    def bytes_per_point(self) -> float:
        return round(self.total_bytes / self.points, 1) if self.points else 0.0


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """Quiver extension: one shard's own status and point count."""

    shard: int
    status: str
    points_count: int


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """Qdrant's collection info, plus Quiver's memory figures (and shards when sharded)."""

    status: str
    optimizer_status: Any
    """``"ok"``, or ``{"error": message}`` after a failed background job."""
    indexed_vectors_count: int
    points_count: int
    segments_count: int
    config: CollectionConfig
    payload_schema: dict[str, PayloadFieldInfo]
    vectors_memory: dict[str, VectorMemory]
    shards: list[ShardStatus] | None = None
    memory: CollectionMemory | None = None
    """The whole per-collection memory (None where not measured: a sharded collection)."""


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """Quiver extension: one segment of a collection. Sealed segments report their rows
    (tombstones included), index type and index memory; the appendable one only points."""

    segment_id: int | None
    kind: Literal["sealed", "appendable"]
    points: int
    rows: int | None = None
    index: str | None = None
    memory_bytes: int | None = None
    shard: int | None = field(default=None)
