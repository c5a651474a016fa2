"""Typed engine results -> Qdrant's JSON shapes (``/work/shared/qdrant-api.md``).

The one place that knows the wire format of what the engine answers: the engine and
the cluster return ``server/engine/results.py`` values, the routes pass them here.

Scores and vector values are float32 in the engine and in Qdrant, and Qdrant writes them
as the shortest decimal that reads back as the same float32 (``0.15``). The engine hands
them over as Python floats (float64), whose shortest form is ``0.15000000596046448``;
they are turned back into numpy float32 here, which orjson writes the way Qdrant does
(a whole vector as one array, which it also writes faster than a list of floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from server.engine.config import DEFAULT_VECTOR, CollectionConfig
from server.engine.matrix import Matrix
from server.engine.results import (
    CollectionInfo,
    HitColumns,
    HitPage,
    PayloadFieldInfo,
    QueryResult,
    Record,
    ScoredPoint,
    ScrollPage,
    SegmentInfo,
    VectorMemory,
    VectorOutput,
)
from server.storage.snapshots import SnapshotDescription

Json = dict[str, Any]


def records(found: Sequence[Record]) -> list[Json]:
    """Qdrant's ``Record`` list (retrieve)."""
    return [{"id": i, "payload": p, "vector": vector_output(v)} for i, p, v in found]


def record(found: Record) -> Json:
    return {"id": found.id, "payload": found.payload, "vector": vector_output(found.vector)}


def vector_output(vector: VectorOutput) -> Any:
    """A point's vectors with float32 values: one dense vector (a list), a multi-vector
    (a list of rows), or a dict of those and sparse vectors by name."""
    if vector is None:
        return None
    if isinstance(vector, dict):
        return {name: _one_vector(value) for name, value in vector.items()}
    return _one_vector(vector)


def _one_vector(vector: Any) -> Any:
    if isinstance(vector, dict):  # sparse: {"indices": [...], "values": [...]}
        return vector | {"values": np.asarray(vector["values"], dtype=np.float32)}
    return np.asarray(vector, dtype=np.float32)  # a multi-vector's rows share one size


def scored_points(hits: Sequence[ScoredPoint]) -> list[Json]:
    """Qdrant's ``ScoredPoint`` list (search, query); ``order_value`` for order_by."""
    if isinstance(hits, HitPage):
        return _column_points(hits.columns, hits.start, hits.stop)
    out = [
        {
            "id": i,
            "version": version,
            "score": np.float32(score),
            "payload": p,
            "vector": vector_output(v),
        }
        for i, version, score, p, v, _ in hits
    ]
    if hits and hits[0].order_value is not None:
        for point, hit in zip(out, hits, strict=True):
            point["order_value"] = hit.order_value
    return out


def scored_point_lists(answers: Sequence[Sequence[ScoredPoint]]) -> list[list[Json]]:
    """``scored_points`` of each answer of a batch. Pages of one batch's columns
    (``HitPage``) are rendered in one pass and cut: per page, the slicing and calls
    cost ~4 µs, more than its ten hits' dicts."""
    pages = [answer for answer in answers if isinstance(answer, HitPage)]
    if answers and len(pages) == len(answers) and len({id(p.columns) for p in pages}) == 1:
        points = _column_points(pages[0].columns, 0, len(pages[0].columns.ids))
        return [points[page.start : page.stop] for page in pages]
    return [scored_points(answer) for answer in answers]


def _column_points(columns: HitColumns, start: int, stop: int) -> list[Json]:
    """Hits ``start:stop`` of a batch's columns (no payload, no vector)."""
    rows = slice(start, stop)
    scores = columns.scores[rows].astype(np.float32, copy=False)
    return [
        {"id": i, "version": version, "score": score, "payload": None, "vector": None}
        for i, version, score in zip(columns.ids[rows], columns.versions[rows], scores, strict=True)
    ]


def query_response(result: QueryResult) -> Json:
    """Qdrant's ``QueryResponse``, plus ``explain`` (Quiver) when it was asked for."""
    return _query_response(result, scored_points(result.points))


def query_responses(results: Sequence[QueryResult]) -> list[Json]:
    """``query_response`` of each result of a batch (their hits rendered together)."""
    points = scored_point_lists([result.points for result in results])
    return [_query_response(r, p) for r, p in zip(results, points, strict=True)]


def _query_response(result: QueryResult, points: list[Json]) -> Json:
    out: Json = {"points": points}
    if result.explain is not None:
        out["explain"] = result.explain
    return out


def scroll_page(page: ScrollPage) -> Json:
    """Qdrant's ``ScrollResult`` (records carry ``order_value`` on order_by pages)."""
    points = records(page.records)
    if page.order_values is not None:
        for point, value in zip(points, page.order_values, strict=True):
            point["order_value"] = value
    return {"points": points, "next_page_offset": page.next_offset}


def collection_info(info: CollectionInfo) -> Json:
    """Qdrant's ``CollectionInfo``; ``vectors_memory`` and ``shards`` are Quiver's."""
    out: Json = {
        "status": info.status,
        "optimizer_status": info.optimizer_status,
        "indexed_vectors_count": info.indexed_vectors_count,
        "points_count": info.points_count,
        "segments_count": info.segments_count,
        "config": collection_config(info.config),
        "payload_schema": {name: _field(f) for name, f in info.payload_schema.items()},
        "vectors_memory": {name: _memory(m) for name, m in info.vectors_memory.items()},
    }
    if info.memory is not None:
        out["memory"] = {
            "points": info.memory.points,
            "bytes": info.memory.bytes,
            "total_bytes": info.memory.total_bytes,
            "bytes_per_point": info.memory.bytes_per_point,
        }
    if info.shards is not None:
        out["shards"] = [
            {"shard": s.shard, "status": s.status, "points_count": s.points_count}
            for s in info.shards
        ]
    return out


def segments(found: Sequence[SegmentInfo]) -> list[Json]:
    """Quiver's segment listing: sealed segments with rows, index and memory."""
    return [_segment(segment) for segment in found]


def _segment(segment: SegmentInfo) -> Json:
    out: Json = {"segment_id": segment.segment_id, "kind": segment.kind, "points": segment.points}
    if segment.kind == "sealed":
        out |= {"rows": segment.rows, "index": segment.index, "memory_bytes": segment.memory_bytes}
    if segment.shard is not None:
        out["shard"] = segment.shard
    return out


def _field(field: PayloadFieldInfo) -> Json:
    out: Json = {"data_type": field.data_type, "points": field.points}
    if field.params is not None:
        out["params"] = field.params
    return out


def _memory(memory: VectorMemory) -> Json:
    return {
        "points": memory.points,
        "bytes": memory.bytes,
        "bytes_per_vector": memory.bytes_per_vector,
    }


QDRANT_QUANTIZATIONS = frozenset({"scalar", "product", "binary", "turbo"})
"""The ``quantization_config`` kinds Qdrant's models know; Quiver's own (``rabitq``) is
reported under ``quiver_quantization_config``, since qdrant-client refuses to parse a
collection info holding a kind it does not know."""


def collection_config(config: CollectionConfig) -> Json:
    """The ``config`` object of Qdrant's ``CollectionInfo`` (Quiver's ``index`` and
    ``multivector`` extensions beside Qdrant's sections)."""
    dump = config.model_dump(mode="json")
    quantization = dump["quantization_config"]
    own = quantization is not None and not quantization.keys() & QDRANT_QUANTIZATIONS
    vectors = {name: _without_nones(v) for name, v in dump["vectors"].items()}
    params: Json = {
        "vectors": vectors if config.named_vectors else vectors[DEFAULT_VECTOR],
        "shard_number": config.shard_number,
        "replication_factor": config.replication_factor,
        "write_consistency_factor": config.write_consistency_factor,
        "on_disk_payload": config.on_disk_payload,
    }
    if config.sparse_vectors:
        params["sparse_vectors"] = {
            name: config.sparse_vectors[name].model_dump(mode="json", exclude_none=True)
            for name in config.sparse_vectors
        }
    return {
        "params": params,
        "hnsw_config": _hnsw_config(dump["hnsw_config"]),
        "optimizer_config": dump["optimizers_config"],
        "wal_config": dump["wal_config"],
        "quantization_config": None if own else quantization,
        "strict_mode_config": config.strict_mode_config or {"enabled": False},
        "metadata": config.metadata,
        "index": dump["index"],
        "multivector": dump["multivector"],
    } | ({"quiver_quantization_config": quantization} if own else {})


def _hnsw_config(values: Json) -> Json:
    """Qdrant's ``HnswConfig``: ``memory`` only when it was set."""
    return {k: v for k, v in values.items() if k != "memory" or v is not None}


def _without_nones(values: Json) -> Json:
    return {k: v for k, v in values.items() if v is not None}


def snapshot_description(description: SnapshotDescription) -> Json:
    """Qdrant's ``SnapshotDescription``."""
    return {
        "name": description.name,
        "creation_time": description.creation_time.isoformat(timespec="seconds"),
        "size": description.size,
        "checksum": description.checksum,
    }


def matrix_pairs(matrix: Matrix) -> Json:
    """Qdrant's ``SearchMatrixPairsResponse``: one pair per (sample, neighbour)."""
    return {
        "pairs": [
            {"a": a, "b": hit.id, "score": np.float32(hit.score)}
            for a, hits in zip(matrix.ids, matrix.neighbours, strict=True)
            for hit in hits
        ]
    }


def matrix_offsets(matrix: Matrix) -> Json:
    """Qdrant's ``SearchMatrixOffsetsResponse``: a sparse matrix over ``ids``."""
    column = {point_id: i for i, point_id in enumerate(matrix.ids)}
    rows, cols, scores = [], [], []
    for row, hits in enumerate(matrix.neighbours):
        for hit in hits:
            rows.append(row)
            cols.append(column[hit.id])
            scores.append(hit.score)
    return {
        "offsets_row": rows,
        "offsets_col": cols,
        "scores": np.asarray(scores, dtype=np.float32),
        "ids": matrix.ids,
    }
