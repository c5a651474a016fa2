"""What one collection reports about itself: ``info`` (counts, payload schema, index
memory per vector) and ``segments_info``. Called with the read lock held."""

from __future__ import annotations

from typing import Any

from server.engine.config import CollectionConfig
from server.engine.filters import Filter, parse_filter
from server.engine.results import (
    CollectionInfo,
    CollectionMemory,
    PayloadFieldInfo,
    SegmentInfo,
    VectorMemory,
)
from server.engine.segment_set import SegmentSet


def collection_info(
    segments: SegmentSet, config: CollectionConfig, status: tuple[str, Any]
) -> CollectionInfo:
    """Counts and schema as ``GET /collections/{name}`` shows them (typed)."""
    indexed = sum(len(s) for s in segments.sealed.values() if s.spec is not None)
    return CollectionInfo(
        status=status[0],
        optimizer_status=status[1],
        indexed_vectors_count=indexed * (len(config.vectors) + len(config.sparse_vectors)),
        points_count=len(segments),
        segments_count=len(segments.sealed) + 1,
        config=config,
        payload_schema={
            name: PayloadFieldInfo(
                schema.get("type", "keyword"),
                segments.count(_has_value(name)),
                schema if len(schema) > 1 else None,
            )
            for name, schema in config.payload_schema.items()
        },
        vectors_memory=memory_by_vector(segments, config),
        memory=collection_memory(segments),
    )


def collection_memory(segments: SegmentSet) -> CollectionMemory:
    """Quiver extension: every index's bytes (``index``) plus each kind of per-row
    bookkeeping summed over the segments, so a user sees what a point costs."""
    parts: dict[str, int] = {"index": 0}
    for segment in segments.sealed.values():
        parts["index"] += sum(index.stats().memory_bytes for index in segment.indexes.values())
        _add(parts, segment.bookkeeping_bytes())
    _add(parts, {f"appendable_{k}": v for k, v in segments.appendable.bookkeeping_bytes().items()})
    return CollectionMemory(len(segments), parts)


def _add(totals: dict[str, int], parts: dict[str, int]) -> None:
    for part, size in parts.items():
        totals[part] = totals.get(part, 0) + size


def memory_by_vector(segments: SegmentSet, config: CollectionConfig) -> dict[str, VectorMemory]:
    """Quiver extension: RAM of the sealed segments' indexes per vector name, split
    into parts (graph links, searched vectors or codes, originals kept for
    re-ranking), in total and per indexed vector."""
    out: dict[str, VectorMemory] = {}
    for name in [*config.vectors, *config.sparse_vectors]:
        totals: dict[str, int] = {}
        points = 0
        for segment in segments.sealed.values():
            index = segment.indexes.get(name)
            if index is None:
                continue
            stats = index.stats()
            points += stats.count
            for part, size in (stats.parts or {"index": stats.memory_bytes}).items():
                totals[part] = totals.get(part, 0) + size
        per_vector = {k: round(v / points, 1) for k, v in totals.items()} if points else {}
        out[name] = VectorMemory(points, totals, per_vector)
    return out


def segments_info(segments: SegmentSet) -> list[SegmentInfo]:
    """One entry per sealed segment, then the appendable one."""
    out = [
        SegmentInfo(
            segment_id=sid,
            kind="sealed",
            points=len(s),
            rows=s.row_count(),
            index=None if s.spec is None else s.spec.type,
            memory_bytes=sum(i.stats().memory_bytes for i in s.indexes.values()),
        )
        for sid, s in segments.sealed.items()
    ]
    out.append(SegmentInfo(None, "appendable", len(segments.appendable)))
    return out


def _has_value(key: str) -> Filter:
    flt = parse_filter({"must_not": [{"is_empty": {"key": key}}]})
    assert flt is not None
    return flt
