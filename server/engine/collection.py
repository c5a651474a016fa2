"""One collection: durable point store + in-memory segment, behind one lock.

Write path: validate everything, commit one SQLite transaction (durable), then
apply the same change to the in-memory segment. A crash between the two is
harmless because the segment is rebuilt from the store on start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from server.engine.config import CollectionConfig
from server.engine.filters import Filter
from server.engine.payload import PayloadSelector, delete_payload_keys, set_payload
from server.engine.point_ids import PointId, point_id_from_text, point_id_to_text
from server.engine.rwlock import ReadWriteLock
from server.engine.segment import PointBatch, Segment
from server.engine.vectors import point_vectors, prepare_matrix, vector_name
from server.errors import BadRequest, InvalidVector, PointNotFound
from server.storage.point_store import PointStore, StoredPoint, WriteBatch

log = logging.getLogger(__name__)

VectorSelector = bool | list[str]


@dataclass(slots=True)
class PointsSelection:
    """Which points a write touches: explicit ``ids``, else all matching ``filter``
    (no filter, as with Qdrant's empty filter, selects every point)."""

    ids: list[PointId] | None = None
    filter: Filter | None = None


@dataclass(slots=True)
class SearchSpec:
    """One nearest-neighbour request, validated and resolved against the config."""

    using: str
    vector: np.ndarray
    limit: int = 10
    offset: int = 0
    filter: Filter | None = None
    score_threshold: float | None = None
    with_payload: PayloadSelector = field(default_factory=lambda: PayloadSelector.of("none"))
    with_vector: VectorSelector = False
    exclude_ids: list[PointId] = field(default_factory=list)


class Collection:
    """A named collection; all public methods are thread-safe."""

    def __init__(self, name: str, path: Path, store: PointStore, config: CollectionConfig) -> None:
        self.name = name
        self.path = path
        self._store = store
        self._config = config
        self._lock = ReadWriteLock()
        self._segment = self._new_segment(config)

    @classmethod
    def create(cls, name: str, path: Path, config: CollectionConfig) -> Collection:
        store = PointStore.create(path, config.model_dump(mode="json"))
        return cls(name, path, store, config)

    @classmethod
    def open(cls, name: str, path: Path) -> Collection:
        store = PointStore.open(path)
        config = CollectionConfig.model_validate(store.config())
        collection = cls(name, path, store, config)
        collection._reload()
        return collection

    def close(self) -> None:
        with self._lock.write():
            self._store.close()

    @property
    def config(self) -> CollectionConfig:
        return self._config

    # -- writes ----------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Sequence[Any],
        payloads: Sequence[dict[str, Any] | None],
        *,
        update_mode: str = "upsert",
        update_filter: Filter | None = None,
    ) -> int:
        """Insert or replace points atomically; returns the operation id."""
        keep = _last_occurrences(ids)
        ids = [ids[i] for i in keep]
        matrices, present = point_vectors([vectors[i] for i in keep], self._config)
        payload_list = [payloads[i] or {} for i in keep]
        with self._lock.write():
            chosen = self._select_for_update(ids, update_mode, update_filter)
            if len(chosen) < len(ids):
                ids = [ids[i] for i in chosen]
                matrices = {n: m[chosen] for n, m in matrices.items()}
                present = {n: p[chosen] for n, p in present.items()}
                payload_list = [payload_list[i] for i in chosen]
            batch = PointBatch(ids, matrices, present, payload_list)
            op_id = self._store.commit(WriteBatch(put_points=_stored(batch)))
            self._segment.upsert(batch, op_id)
        return op_id

    def delete(self, selection: PointsSelection) -> int:
        with self._lock.write():
            ids = self._resolve(selection, must_exist=False)
            op_id = self._store.commit(WriteBatch(delete_pids=[point_id_to_text(i) for i in ids]))
            for point_id in ids:
                self._segment.delete(point_id)
        return op_id

    def set_payload(
        self, values: dict[str, Any], selection: PointsSelection, key: str | None
    ) -> int:
        return self._rewrite_payloads(selection, lambda old: set_payload(old, values, key))

    def overwrite_payload(self, values: dict[str, Any], selection: PointsSelection) -> int:
        return self._rewrite_payloads(selection, lambda _old: dict(values))

    def delete_payload(self, keys: list[str], selection: PointsSelection) -> int:
        return self._rewrite_payloads(selection, lambda old: delete_payload_keys(old, keys))

    def clear_payload(self, selection: PointsSelection) -> int:
        return self._rewrite_payloads(selection, lambda _old: {})

    def update_config(self, config: CollectionConfig) -> int:
        with self._lock.write():
            op_id = self._store.write_config(config.model_dump(mode="json"))
            self._config = config
        return op_id

    # -- reads -----------------------------------------------------------

    def count(self, flt: Filter | None) -> int:
        with self._lock.read():
            if flt is None:
                return len(self._segment)
            return int(flt.mask(self._segment).sum())

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[dict[str, Any]]:
        with self._lock.read():
            rows = [r for r in (self._segment.row_of(i) for i in ids) if r is not None]
            return [self._record(row, with_payload, with_vector) for row in rows]

    def get_point(self, point_id: PointId) -> dict[str, Any]:
        records = self.retrieve([point_id], PayloadSelector.of("all"), True)
        if not records:
            raise PointNotFound(point_id)
        return records[0]

    def scroll(
        self,
        flt: Filter | None,
        limit: int,
        offset: PointId | None,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> tuple[list[dict[str, Any]], PointId | None]:
        with self._lock.read():
            segment = self._segment
            rows = np.arange(len(segment)) if flt is None else np.flatnonzero(flt.mask(segment))
            if offset is not None:
                rows = segment.rows_from(rows, offset)
            rows = segment.rows_in_id_order(rows)[: limit + 1]
            records = [self._record(int(r), with_payload, with_vector) for r in rows[:limit]]
            next_offset = segment.ids[int(rows[limit])] if len(rows) > limit else None
        return records, next_offset

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray:
        """The stored vector of a point, for queries that name a point instead of a vector."""
        name = vector_name(self._config, using)
        with self._lock.read():
            row = self._segment.row_of(point_id)
            if row is None:
                raise PointNotFound(point_id)
            if not self._segment.has_vector(row, name):
                raise InvalidVector(f"Wrong input: point {point_id} has no vector {name!r}")
            return self._segment.vectors(row)[name]

    def prepare_query(self, raw: Any, using: str | None) -> tuple[str, np.ndarray]:
        name = vector_name(self._config, using)
        params = self._config.vectors[name]
        return name, prepare_matrix([raw], params, "query vector")[0]

    def search(self, specs: Sequence[SearchSpec]) -> list[list[dict[str, Any]]]:
        """Answer a batch of searches; unfiltered ones sharing a vector go in one native call."""
        results: list[list[dict[str, Any]]] = [[] for _ in specs]
        with self._lock.read():
            groups: dict[str, list[int]] = {}
            for i, spec in enumerate(specs):
                if spec.filter is None and not spec.exclude_ids:
                    groups.setdefault(spec.using, []).append(i)
                else:
                    results[i] = self._search_group([spec], self._mask_for(spec))[0]
            for members in groups.values():
                answers = self._search_group([specs[i] for i in members], None)
                for i, answer in zip(members, answers, strict=True):
                    results[i] = answer
        return results

    def info(self) -> dict[str, Any]:
        with self._lock.read():
            count = len(self._segment)
            config = self._config
        return {
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": count,
            "segments_count": 1,
            "config": config.to_wire(),
            "payload_schema": {
                name: {"data_type": schema.get("type", "keyword"), "points": count}
                | ({"params": schema} if len(schema) > 1 else {})
                for name, schema in config.payload_schema.items()
            },
        }

    # -- internals -------------------------------------------------------

    def _search_group(
        self, specs: Sequence[SearchSpec], mask: np.ndarray | None
    ) -> list[list[dict[str, Any]]]:
        k = max(spec.limit + spec.offset for spec in specs)
        queries = np.stack([spec.vector for spec in specs])
        rows, scores = self._segment.search(specs[0].using, queries, k, mask)
        distance = self._config.vectors[specs[0].using].distance
        out: list[list[dict[str, Any]]] = []
        for spec, row_ids, row_scores in zip(specs, rows, scores, strict=True):
            hits = []
            for row, score in zip(
                row_ids[spec.offset : spec.offset + spec.limit],
                row_scores[spec.offset : spec.offset + spec.limit],
                strict=True,
            ):
                if row < 0:
                    break
                if spec.score_threshold is not None and not (
                    score >= spec.score_threshold
                    if distance.higher_is_better
                    else score <= spec.score_threshold
                ):
                    break
                hits.append(self._scored(int(row), float(score), spec))
            out.append(hits)
        return out

    def _mask_for(self, spec: SearchSpec) -> np.ndarray:
        n = len(self._segment)
        mask = np.ones(n, dtype=bool) if spec.filter is None else spec.filter.mask(self._segment)
        for point_id in spec.exclude_ids:
            row = self._segment.row_of(point_id)
            if row is not None:
                mask[row] = False
        return mask

    def _scored(self, row: int, score: float, spec: SearchSpec) -> dict[str, Any]:
        record = self._record(row, spec.with_payload, spec.with_vector)
        record["version"] = self._segment.version(row)
        record["score"] = score
        return record

    def _record(
        self, row: int, with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> dict[str, Any]:
        segment = self._segment
        return {
            "id": segment.ids[row],
            "payload": with_payload.apply(segment.payload(row)),
            "vector": self._vector_output(row, with_vector),
        }

    def _vector_output(self, row: int, with_vector: VectorSelector) -> Any:
        if with_vector is False:
            return None
        vectors = self._segment.vectors(row)
        if not self._config.named_vectors:
            vector = next(iter(vectors.values()), None)
            return None if vector is None else vector.tolist()
        names = vectors.keys() if with_vector is True else with_vector
        return {name: vectors[name].tolist() for name in names if name in vectors}

    def _resolve(self, selection: PointsSelection, *, must_exist: bool) -> list[PointId]:
        segment = self._segment
        if selection.ids is None:
            if selection.filter is None:
                return list(segment.ids)
            rows = np.flatnonzero(selection.filter.mask(segment))
            return [segment.ids[int(r)] for r in rows]
        ids = list(dict.fromkeys(selection.ids))
        if must_exist:
            for point_id in ids:
                if segment.row_of(point_id) is None:
                    raise PointNotFound(point_id)
            return ids
        return [i for i in ids if segment.row_of(i) is not None]

    def _rewrite_payloads(
        self, selection: PointsSelection, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> int:
        with self._lock.write():
            ids = self._resolve(selection, must_exist=selection.ids is not None)
            rows = [self._segment.row_of(i) for i in ids]
            new = [change(self._segment.payload(r)) for r in rows if r is not None]
            encoded = [
                (point_id_to_text(i), _encode_payload(p)) for i, p in zip(ids, new, strict=True)
            ]
            op_id = self._store.commit(WriteBatch(put_payloads=encoded))
            for row, payload in zip(rows, new, strict=True):
                if row is not None:
                    self._segment.set_payload(row, payload, op_id)
        return op_id

    def _select_for_update(
        self, ids: Sequence[PointId], update_mode: str, update_filter: Filter | None
    ) -> list[int]:
        """Indices of ``ids`` this upsert writes, per ``update_mode`` / ``update_filter``."""
        segment = self._segment
        chosen = []
        for i, point_id in enumerate(ids):
            row = segment.row_of(point_id)
            if row is None:
                if update_mode != "update_only":
                    chosen.append(i)
                continue
            if update_mode == "insert_only":
                continue
            if update_filter is not None and not update_filter.matches(
                point_id, segment.payload(row), partial(segment.has_vector, row)
            ):
                continue
            chosen.append(i)
        return chosen

    def _reload(self) -> None:
        loaded = list(self._store.load_all())
        if not loaded:
            return
        ids = [point_id_from_text(p.pid) for p in loaded]
        matrices: dict[str, np.ndarray] = {}
        present: dict[str, np.ndarray] = {}
        for name, params in self._config.vectors.items():
            matrix = np.zeros((len(loaded), params.size), dtype=np.float32)
            mask = np.zeros(len(loaded), dtype=bool)
            for i, point in enumerate(loaded):
                data = point.vectors.get(name)
                if data is not None:
                    matrix[i] = np.frombuffer(data, dtype=np.float32)
                    mask[i] = True
            matrices[name], present[name] = matrix, mask
        payloads = [orjson.loads(p.payload) for p in loaded]
        self._segment.upsert(PointBatch(ids, matrices, present, payloads), 0)
        for i, point in enumerate(loaded):
            self._segment.set_payload(i, payloads[i], point.version)
        log.info("collection loaded", extra={"collection": self.name, "points": len(ids)})

    @staticmethod
    def _new_segment(config: CollectionConfig) -> Segment:
        return Segment({name: (p.size, p.distance) for name, p in config.vectors.items()})


def _last_occurrences(ids: Sequence[PointId]) -> list[int]:
    """Indices of the last occurrence of each id, in first-seen order (last write wins)."""
    last: dict[PointId, int] = {}
    for i, point_id in enumerate(ids):
        last[point_id] = i
    if len(last) == len(ids):
        return list(range(len(ids)))
    return sorted(last.values())


def _encode_payload(payload: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError as exc:
        raise BadRequest(f"Payload cannot be stored as JSON: {exc}") from exc


def _stored(batch: PointBatch) -> list[StoredPoint]:
    points = []
    for i, point_id in enumerate(batch.ids):
        vectors = {
            name: batch.vectors[name][i].tobytes()
            for name in batch.vectors
            if batch.present[name][i]
        }
        points.append(
            StoredPoint(point_id_to_text(point_id), _encode_payload(batch.payloads[i]), vectors)
        )
    return points
