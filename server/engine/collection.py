"""One collection: durable point store + in-memory segments, behind one lock.

Write path: validate everything, commit one SQLite transaction (durable), then
apply the same change to the segments; when the appendable segment reaches
``indexing_threshold`` it is sealed and the build worker indexes it in the
background. Reads fan out over all segments. A crash between commit and apply
is harmless because the segments are rebuilt from the store on start (reusing
index files whose points are unchanged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from index.flat import FlatIndex
from index.multivector import MaxSimIndex, Ragged
from index.registry import MULTI_INDEX_TYPES, AnyIndex, index_from_bytes
from index.two_stage import TwoStageIndex
from server.engine.config import CollectionConfig
from server.engine.filters import Filter
from server.engine.index_spec import read_spec
from server.engine.optimizer import RebuildInput, Task, build, due_tasks, snapshot
from server.engine.payload import PayloadSelector, delete_payload_keys, set_payload
from server.engine.planner import PlannerConfig
from server.engine.point_ids import PointId, point_id_from_text, point_id_to_text
from server.engine.protocols import CollectionHandle, JobBoard, JobWire
from server.engine.query import run_queries
from server.engine.requests import PointsSelection, Query, SearchSpec, VectorSelector
from server.engine.results import (
    CollectionInfo,
    PayloadFieldInfo,
    QueryResult,
    Record,
    ScoredPoint,
    ScrollPage,
    SegmentInfo,
    VectorMemory,
    VectorOutput,
)
from server.engine.rwlock import ReadWriteLock
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment, PointBatch, SealedParts
from server.engine.segment_set import AnySegment, Ranked, SegmentSearch, SegmentSet
from server.engine.training_queries import QuerySamples
from server.engine.vectors import (
    PointVectors,
    point_vectors,
    prepare_matrix,
    prepare_sets,
    vector_name,
)
from server.errors import BadRequest, CollectionNotFound, InvalidVector, PointNotFound
from server.storage.point_store import LoadedPoint, PointRows, PointStore, WriteBatch
from server.storage.segment_store import SegmentManifest, SegmentStore
from server.storage.snapshots import SnapshotDescription, write_snapshot

__all__ = ["Collection", "PointsSelection", "SearchSpec", "VectorSelector"]

log = logging.getLogger(__name__)

TOKENS_FOR_PLANNING = 64
"""Vectors per multi-vector point the planner assumes when it weighs an exact scan
(ColBERT-style documents hold tens to hundreds of tokens)."""

StatusProvider = Callable[[], tuple[str, Any]]


class Collection:
    """A named collection; all public methods are thread-safe."""

    def __init__(self, name: str, path: Path, store: PointStore, config: CollectionConfig) -> None:
        self.name = name
        self.path = path
        self._store = store
        self._config = config
        self._lock = ReadWriteLock()
        self._segments = SegmentSet(self._new_appendable())
        self._segment_store = SegmentStore(path / "segments")
        self._next_segment_id = self._segment_store.max_segment_id() + 1
        self._id_lock = threading.Lock()
        self.query_samples = QuerySamples(store, {n: p.size for n, p in config.vectors.items()})
        self._closed = False
        self._bulk_loads = 0
        self._last_write = time.monotonic()
        self.on_change: Callable[[Collection], None] = lambda _c: None
        """Called after writes that may make background work due (set by the engine)."""
        self.status: StatusProvider = lambda: ("green", "ok")
        self.planner = PlannerConfig()
        self._jobs: JobBoard | None = None

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
            if not self._closed:
                self._closed = True
                self.query_samples.flush()
                self._store.close()

    @property
    def config(self) -> CollectionConfig:
        return self._config

    @property
    def store(self) -> PointStore:
        return self._store

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
        prepared = point_vectors([vectors[i] for i in keep], self._config)
        payload_list = [payloads[i] or {} for i in keep]
        return self._upsert_prepared(ids, prepared, payload_list, update_mode, update_filter)

    def bulk_upsert(
        self,
        ids: Sequence[PointId],
        matrices: dict[str, np.ndarray],
        payloads: Sequence[dict[str, Any]],
    ) -> int:
        """Upsert dense vectors given as whole matrices (one per vector name, every row
        present): validated and prepared in one numpy pass, no per-point parsing. Rows
        must already be finite; a bulk loader rejects the others first."""
        keep = _last_occurrences(ids)
        rows = np.asarray(keep, dtype=np.int64)
        dense: dict[str, np.ndarray] = {}
        for name, matrix in matrices.items():
            params = self._config.vectors[vector_name(self._config, name)]
            if params.is_multi:
                raise InvalidVector(f"Wrong input: bulk matrices are for dense vectors ({name!r})")
            dense[name] = prepare_matrix(
                matrix[rows] if len(keep) < len(ids) else matrix,
                params,
                f"vector {name!r}" if name else "vector",
            )
        count = len(keep)
        present = {n: np.full(count, n in dense) for n in self._config.vectors}
        for name, params in self._config.vectors.items():
            if name not in dense and not params.is_multi:
                dense[name] = np.zeros((count, params.size), dtype=np.float32)
        tokens = {
            n: Ragged.from_arrays([np.zeros((0, p.size), np.float32)] * count, p.size)
            for n, p in self._config.vectors.items()
            if p.is_multi
        }
        prepared = PointVectors(dense, tokens, present)
        return self._upsert_prepared(
            [ids[i] for i in keep], prepared, [payloads[i] for i in keep], "upsert", None
        )

    @contextmanager
    def bulk_loading(self) -> Iterator[None]:
        """While a bulk load runs, the appendable segment is sealed only once it holds
        as many points as all sealed segments together (and ``indexing_threshold``), so
        the collection doubles with each seal: the build worker indexes the first and
        folds each next one into the growing graph while loading goes on, and the number
        of merges (each copies and rewrites the graph) grows with log n instead of n. Measured
        (bench/bench_bulk.py): deferring all indexing to the end cost MiniLM-384 1.48x an
        in-process build and sealing every 20,000 points GloVe-50 1.39x. At the end,
        the tail is sealed if it reaches ``indexing_threshold``."""
        with self._id_lock:
            self._bulk_loads += 1
        try:
            yield
        finally:
            with self._id_lock:
                self._bulk_loads -= 1
                last = self._bulk_loads == 0
            if last and not self._closed:
                with suppress(CollectionNotFound), self._writing():
                    threshold = self._config.optimizers_config.indexing_threshold
                    if threshold > 0 and len(self._segments.appendable) >= threshold:
                        self._seal_appendable()
                self.on_change(self)

    def _upsert_prepared(
        self,
        ids: list[PointId],
        prepared: PointVectors,
        payload_list: list[dict[str, Any]],
        update_mode: str,
        update_filter: Filter | None,
    ) -> int:
        with self._writing():
            chosen = self._select_for_update(ids, update_mode, update_filter)
            if len(chosen) < len(ids):
                ids = [ids[i] for i in chosen]
                prepared = prepared.take(np.array(chosen, dtype=np.int64))
                payload_list = [payload_list[i] for i in chosen]
            batch = PointBatch(ids, prepared.dense, prepared.present, payload_list, prepared.tokens)
            located = [self._segments.locate(point_id) for point_id in ids]
            known = [found is not None for found in located]
            op_id = self._store.commit(WriteBatch(put_points=_stored(batch, known)))
            for point_id, found in zip(ids, located, strict=True):
                if found is not None and found[0] is not self._segments.appendable:
                    found[0].delete(point_id)
            self._segments.appendable.upsert(batch, op_id)
            self._maybe_seal()
        self.on_change(self)
        return op_id

    def delete(self, selection: PointsSelection) -> int:
        with self._writing():
            ids = self._resolve(selection, must_exist=False)
            op_id = self._store.commit(WriteBatch(delete_pids=[point_id_to_text(i) for i in ids]))
            for point_id in ids:
                self._segments.delete(point_id)
        self.on_change(self)
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
        with self._writing():
            op_id = self._store.write_config(config.model_dump(mode="json"))
            if config.payload_schema != self._config.payload_schema:
                self._segments.set_schema(config.payload_schema)
            self._config = config
            self._maybe_seal()
        self.on_change(self)
        return op_id

    # -- reads -----------------------------------------------------------

    def count(self, flt: Filter | None) -> int:
        with self._lock.read():
            return self._segments.count(flt)

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        with self._lock.read():
            found = [self._segments.locate(i) for i in ids]
            return [
                self._record(s, row, with_payload, with_vector) for s, row in filter(None, found)
            ]

    def get_point(self, point_id: PointId) -> Record:
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
    ) -> ScrollPage:
        with self._lock.read():
            picked = self._segments.scroll(flt, limit, offset)
            records = [self._record(s, r, with_payload, with_vector) for s, r in picked[:limit]]
            next_offset = picked[limit][0].ids[picked[limit][1]] if len(picked) > limit else None
        return ScrollPage(records, next_offset)

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray:
        """The stored vector of a point, for queries that name a point instead of a vector."""
        name = vector_name(self._config, using)
        with self._lock.read():
            found = self._segments.locate(point_id)
            if found is None:
                raise PointNotFound(point_id)
            segment, row = found
            if not segment.has_vector(row, name):
                raise InvalidVector(f"Wrong input: point {point_id} has no vector {name!r}")
            return self._exact_vectors(segment, row)[name]

    def prepare_query(self, raw: Any, using: str | None) -> tuple[str, np.ndarray]:
        name = vector_name(self._config, using)
        return name, self.prepare_queries(name, [raw])[0]

    def vector_name(self, using: str | None) -> str:
        return vector_name(self._config, using)

    def check_vectors(self, raws: list[Any]) -> None:
        """Validate points' ``vector`` fields as an upsert would, writing nothing."""
        point_vectors(raws, self._config)

    def prepare_queries(self, name: str, raws: list[Any]) -> np.ndarray | list[np.ndarray]:
        """Validate and prepare many query vectors for ``name`` in one numpy pass (a
        list of ``(n_vectors, dim)`` arrays for a multi-vector name)."""
        params = self._config.vectors[name]
        if params.is_multi:
            return prepare_sets(raws, params, self._config.multivector, "query multi-vector")
        return prepare_matrix(raws, params, "query vector")

    def query(self, queries: Sequence[Query]) -> list[QueryResult]:
        return run_queries(self, queries)

    def search(self, specs: Sequence[SearchSpec]) -> list[list[ScoredPoint]]:
        """Answer a batch of searches. Searches that share a vector name, params and
        filter are answered together: the filter is compiled once and each segment gets
        one native call for the whole group (BLAS for exact, OpenMP for graphs)."""
        results: list[list[ScoredPoint]] = [[] for _ in specs]
        with self._lock.read():
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i, spec in enumerate(specs):
                if spec.exclude_ids or spec.explain is not None:
                    masks, estimates = self._masks_for(spec)
                    results[i] = self._search_group([spec], masks, estimates)[0]
                    continue
                key = (spec.using, spec.params, spec.filter, spec.force)
                groups.setdefault(key, []).append(i)
            for members in groups.values():
                group = [specs[i] for i in members]
                if group[0].filter is None:
                    answers = self._search_group(group, None)
                else:
                    answers = self._search_group(group, *self._masks_for(group[0]))
                for i, answer in zip(members, answers, strict=True):
                    results[i] = answer
        if self._learns_from_queries():
            for spec in specs:
                if not self._config.vectors[spec.using].is_multi:
                    self.query_samples.offer(spec.using, spec.vector[None, :])
        return results

    def _learns_from_queries(self) -> bool:
        index = self._config.index
        return index.type == "leanvec" and index.variant == "ood"

    def add_training_queries(
        self, using: str | None, raw: list[Any], replace: bool, retrain: bool
    ) -> dict[str, Any]:
        """Store a sample of queries for LeanVec OOD training; with ``retrain``, start a
        background retrain of every segment by bumping the training generation."""
        name = vector_name(self._config, using)
        if self._config.vectors[name].is_multi:
            raise BadRequest(
                f"Wrong input: vector {name!r} is a multi-vector; LeanVec training queries "
                "are for dense vectors"
            )
        queries = prepare_matrix(raw, self._config.vectors[name], "training query")
        kept = self.query_samples.add_given(name, queries, replace)
        retraining = retrain and self._learns_from_queries()
        if retraining:
            index = self._config.index
            bumped = index.model_copy(update={"training_generation": index.training_generation + 1})
            self.update_config(self._config.with_updates(index=bumped.model_dump()))
        return {"vector": name, "training_queries": kept, "retraining": retraining}

    def training_query_counts(self, names: list[str]) -> dict[str, Any]:
        """How many uploaded ("given") and served ("seen") queries each vector has."""
        return {name: self.query_samples.counts(name) for name in names}

    def info(self) -> CollectionInfo:
        status, optimizer_status = self.status()
        with self._lock.read():
            config = self._config
            count = len(self._segments)
            indexed = sum(len(s) for s in self._segments.sealed.values() if s.spec is not None)
            segments = len(self._segments.sealed) + 1
            schema_counts = {
                key: self._segments.count(_has_value(key)) for key in config.payload_schema
            }
            memory = self._memory_by_vector()
        return CollectionInfo(
            status=status,
            optimizer_status=optimizer_status,
            indexed_vectors_count=indexed * len(config.vectors),
            points_count=count,
            segments_count=segments,
            config=config,
            payload_schema={
                name: PayloadFieldInfo(
                    schema.get("type", "keyword"),
                    schema_counts[name],
                    schema if len(schema) > 1 else None,
                )
                for name, schema in config.payload_schema.items()
            },
            vectors_memory=memory,
        )

    def _memory_by_vector(self) -> dict[str, VectorMemory]:
        """Quiver extension: RAM of the sealed segments' indexes per vector name, split
        into parts (graph links, searched vectors or codes, originals kept for
        re-ranking), in total and per indexed vector."""
        out: dict[str, VectorMemory] = {}
        for name in self._config.vectors:
            totals: dict[str, int] = {}
            points = 0
            for segment in self._segments.sealed.values():
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

    def segments_info(self) -> list[SegmentInfo]:
        with self._lock.read():
            out = [
                SegmentInfo(
                    segment_id=sid,
                    kind="sealed",
                    points=len(s),
                    rows=s.row_count(),
                    index=None if s.spec is None else s.spec.type,
                    memory_bytes=sum(i.stats().memory_bytes for i in s.indexes.values()),
                )
                for sid, s in self._segments.sealed.items()
            ]
            out.append(SegmentInfo(None, "appendable", len(self._segments.appendable)))
        return out

    # -- lifecycle and jobs (the engine's build worker runs them) ---------------

    def scheduled_by(self, jobs: JobBoard) -> None:
        """Called by the engine once the build worker runs this collection's jobs."""
        self._jobs = jobs

    def config_changed(self) -> None:
        if self._jobs is not None:
            self._jobs.config_changed()

    def jobs(self) -> list[JobWire]:
        return [] if self._jobs is None else self._jobs.jobs()

    def job(self, job_id: str, cancel: bool = False) -> JobWire | None:
        return None if self._jobs is None else self._jobs.job(job_id, cancel)

    @property
    def supports_snapshots(self) -> bool:
        return True

    def drop(self) -> None:
        """Deleted: close; the engine removes the folder, which holds all the data."""
        self.close()

    # -- background work (called by the build worker) -----------------------

    def due_tasks(self, busy: set[int], held: set[int] | None = None) -> list[Task]:
        with self._lock.read():
            if self._closed:
                return []
            return due_tasks(self._config, self._segments.sealed, busy, held or set())

    def run_task(
        self,
        task: Task,
        progress: Callable[[int, int], None],
        cancelled: Callable[[], bool],
    ) -> int | None:
        """Rebuild the task's segments into one new indexed segment and swap it in.

        Returns the new segment id, or None when the segments are gone (deleted
        collection, or already replaced). The build runs without the lock; only the
        final swap takes the write lock, briefly."""
        with self._lock.read():
            if self._closed or not all(s in self._segments.sealed for s in task.segment_ids):
                return None
            job = snapshot(task, self._config, self._segments.sealed)
            self._exact_job_vectors(job, task)
            if self._learns_from_queries():
                for name in self._config.vectors:
                    sample = self.query_samples.for_training(name)
                    if sample is not None:
                        job.training_queries[name] = sample
        indexes = build(job, progress, cancelled)
        segment_id = self._allocate_segment_id()
        manifest = SegmentManifest(
            segment_id=segment_id,
            point_ids=[point_id_to_text(i) for i in job.ids],
            indexes={name: None for name in indexes},
            spec=job.spec.to_manifest(),
            replaces=list(task.segment_ids),
        )
        self._segment_store.write(manifest, {n: i.to_bytes() for n, i in indexes.items()})
        indexes = self._mapped(manifest, indexes)
        with self._lock.write():
            if self._closed or not all(s in self._segments.sealed for s in task.segment_ids):
                self._segment_store.remove([segment_id])
                return None
            self._swap_in(segment_id, job, indexes)
        self._segment_store.remove(list(task.segment_ids))
        log.info(
            "segment built",
            extra={"collection": self.name, "task": task.kind, "segment": segment_id,
                   "replaces": list(task.segment_ids), "points": len(job.ids)},
        )  # fmt: skip
        return segment_id

    # -- internals -------------------------------------------------------

    def _writing(self) -> Any:
        """The write lock, refusing writes to a collection that was deleted meanwhile."""
        return _WriteGuard(self)

    def _allocate_segment_id(self) -> int:
        with self._id_lock:
            segment_id = self._next_segment_id
            self._next_segment_id += 1
            return segment_id

    def seal_if_idle(self, idle_s: float) -> bool:
        """Seal the exact-search tail of a collection that is already indexed when no
        write came for ``idle_s`` seconds and the tail holds at least a quarter of
        ``indexing_threshold`` points. Every query scans that tail in full (10k GloVe
        vectors cost ~20% of an HNSW batch over 390k); once sealed, the index and merge
        jobs fold it into the graph. Smaller collections stay exact, as in Qdrant."""
        threshold = self._config.optimizers_config.indexing_threshold
        if threshold <= 0 or self._bulk_loads or time.monotonic() - self._last_write < idle_s:
            return False
        with self._lock.write():
            tail = len(self._segments.appendable)
            if self._closed or not self._segments.sealed or tail < max(1, threshold // 4):
                return False
            self._seal_appendable()
        log.info("idle tail sealed", extra={"collection": self.name, "points": tail})
        return True

    def _maybe_seal(self) -> None:
        """Seal the appendable segment once it holds ``indexing_threshold`` points
        (0 disables indexing, as in Qdrant). Called under the write lock."""
        threshold = self._config.optimizers_config.indexing_threshold
        if threshold <= 0:
            return
        if self._bulk_loads:  # see bulk_loading
            threshold = max(threshold, sum(s.row_count() for s in self._segments.sealed.values()))
        if len(self._segments.appendable) < threshold:
            return
        self._seal_appendable()

    def _seal_appendable(self) -> None:
        appendable = self._segments.appendable
        parts = appendable.freeze()
        segment_id = self._allocate_segment_id()
        manifest = SegmentManifest(
            segment_id=segment_id,
            point_ids=[point_id_to_text(i) for i in parts.ids],
            indexes={name: None for name in parts.indexes},
        )
        self._segment_store.write(manifest, {})
        self._segments.sealed[segment_id] = SealedSegment(
            segment_id, parts, payload_indexes=appendable.payload_indexes
        )
        self._segments.appendable = self._new_appendable()

    def _exact_job_vectors(self, job: RebuildInput, task: Task) -> None:
        """A rebuild from compressed secondaries would compound their rounding (and
        keep it after switching to a float index): take the stored vectors instead."""
        for name in [*job.vectors, *job.tokens]:
            if not any(self._segments.sealed[s].lossy(name) for s in task.segment_ids):
                continue
            pids = [point_id_to_text(i) for i in job.ids]
            stored = self._store.vectors_of(pids, name)
            if name in job.tokens:
                sets = job.tokens[name]
                dim = self._config.vectors[name].size
                exact = [
                    sets.item(row) if pid not in stored else _decoded(stored[pid], dim)
                    for row, pid in enumerate(pids)
                ]
                job.tokens[name] = Ragged.from_arrays(exact, dim)
                continue
            matrix = job.vectors[name].copy()
            for row, pid in enumerate(pids):
                data = stored.get(pid)
                if data is not None:
                    matrix[row] = np.frombuffer(data, dtype=np.float32)
            job.vectors[name] = matrix

    def _mapped(
        self, manifest: SegmentManifest, indexes: dict[str, AnyIndex]
    ) -> dict[str, AnyIndex]:
        """Two-stage indexes reopened from the file just written, so their full vectors
        are read from the memory-mapped file instead of held in process memory."""
        out = dict(indexes)
        for name, index in indexes.items():
            if isinstance(index, TwoStageIndex):
                view = self._segment_store.read_index(manifest, name)
                if view is not None:
                    out[name] = index_from_bytes(view)
        return out

    def _swap_in(self, segment_id: int, job: RebuildInput, indexes: dict[str, AnyIndex]) -> None:
        """Replace the job's source segments with the new one, carrying over every change
        made while it was built: deletes become tombstones, payloads are taken now."""
        payloads: list[dict[str, Any]] = []
        versions: list[int] = []
        live: list[np.ndarray] = []
        for source_id, rows in job.sources:
            source = self._segments.sealed.pop(source_id)
            live.append(source.live_mask()[rows])
            payloads.extend(source.payload(r) for r in rows.tolist())
            versions.extend(source.version(r) for r in rows.tolist())
        alive = np.concatenate(live) if live else np.zeros(0, dtype=bool)
        if job.permutation is not None:
            order = job.permutation.tolist()
            alive = alive[job.permutation]
            payloads = [payloads[i] for i in order]
            versions = [versions[i] for i in order]
        parts = SealedParts(job.ids, payloads, versions, indexes, job.present)
        self._segments.sealed[segment_id] = SealedSegment(
            segment_id, parts, alive, job.spec, schema=self._config.payload_schema
        )

    def _search_group(
        self,
        specs: Sequence[SearchSpec],
        masks: dict[int, np.ndarray] | None,
        estimates: dict[int, int] | None = None,
    ) -> list[list[ScoredPoint]]:
        first = specs[0]
        params = self._config.vectors[first.using]
        queries: np.ndarray | Ragged
        if params.is_multi:
            queries = Ragged.from_arrays([s.vector for s in specs], params.size)
        else:
            queries = np.stack([s.vector for s in specs])
        request = SegmentSearch(
            name=first.using,
            queries=queries,
            k=max(s.limit + s.offset for s in specs),
            distance=params.distance,
            dim=params.size * (TOKENS_FOR_PLANNING if params.is_multi else 1),
            params=first.params,
            default_ef=self._config.default_ef(),
            full_scan_kb=self._config.hnsw_config.full_scan_threshold,
            planner=self.planner,
            masks=masks,
            estimates=estimates,
            force=first.force,
            explain=first.explain,
        )
        ranked = self._segments.search(request)
        keep = _page_mask(ranked, specs, params.distance.higher_is_better)
        queries, ranks = np.nonzero(keep)
        owner, rows = ranked.owner[queries, ranks], ranked.rows[queries, ranks]
        ids, versions = _gather_rows(ranked.segments, owner, rows)
        scores = ranked.scores[queries, ranks].tolist()
        bounds = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).tolist()
        out: list[list[ScoredPoint]] = []
        for q, spec in enumerate(specs):
            page = slice(bounds[q], bounds[q + 1])
            if spec.with_payload.mode == "none" and spec.with_vector is False:
                out.append(list(map(_bare_hit, ids[page], versions[page], scores[page])))
                continue
            out.append(
                [
                    ScoredPoint.of_record(
                        self._record(ranked.segments[owner[i]], int(rows[i]), spec.with_payload,
                                     spec.with_vector),
                        versions[i], scores[i],
                    )
                    for i in range(page.start, page.stop)
                ]
            )  # fmt: skip
        return out

    def _masks_for(self, spec: SearchSpec) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        """Per segment: the live rows passing the filter (and not excluded), and the
        candidate count the payload indexes estimated before the exact re-check."""
        masks: dict[int, np.ndarray] = {}
        estimates: dict[int, int] = {}
        for segment in self._segments:
            live = segment.live_mask()
            if spec.filter is None:
                masks[id(segment)] = live.copy()
                continue
            mask, estimated = segment.filter_mask(spec.filter, live)
            masks[id(segment)] = mask
            if estimated is not None:
                estimates[id(segment)] = estimated
        for point_id in spec.exclude_ids:
            found = self._segments.locate(point_id)
            if found is not None:
                masks[id(found[0])][found[1]] = False
        return masks, estimates

    def _record(
        self,
        segment: AnySegment,
        row: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> Record:
        return Record(
            segment.ids[row],
            with_payload.apply(segment.payload(row)),
            self._vector_output(segment, row, with_vector),
        )

    def _vector_output(
        self, segment: AnySegment, row: int, with_vector: VectorSelector
    ) -> VectorOutput:
        if with_vector is False:
            return None
        vectors = self._exact_vectors(segment, row)
        if not self._config.named_vectors:
            vector = next(iter(vectors.values()), None)
            return None if vector is None else vector.tolist()
        names = vectors.keys() if with_vector is True else with_vector
        return {name: vectors[name].tolist() for name in names if name in vectors}

    def _exact_vectors(self, segment: AnySegment, row: int) -> dict[str, np.ndarray]:
        """A row's vectors as written: compressed secondaries (float16 / int8 LeanVec)
        are replaced by the exact copy in the point store."""
        vectors = segment.vectors(row)
        if isinstance(segment, SealedSegment):
            pid = point_id_to_text(segment.ids[row])
            for name in [n for n in vectors if segment.lossy(n)]:
                stored = self._store.vectors_of([pid], name).get(pid)
                if stored is not None:
                    vectors[name] = _decoded(stored, self._config.vectors[name].size)
                    if not self._config.vectors[name].is_multi:
                        vectors[name] = vectors[name][0]
        return vectors

    def _resolve(self, selection: PointsSelection, *, must_exist: bool) -> list[PointId]:
        if selection.ids is None:
            return [
                segment.ids[int(row)]
                for segment in self._segments
                for row in self._segments.matching_rows(segment, selection.filter)
            ]
        ids = list(dict.fromkeys(selection.ids))
        if must_exist:
            for point_id in ids:
                if self._segments.locate(point_id) is None:
                    raise PointNotFound(point_id)
            return ids
        return [i for i in ids if self._segments.locate(i) is not None]

    def _rewrite_payloads(
        self, selection: PointsSelection, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> int:
        with self._writing():
            ids = self._resolve(selection, must_exist=selection.ids is not None)
            located = [self._segments.locate(i) for i in ids]
            new = [change(seg.payload(row)) for seg, row in filter(None, located)]
            encoded = [
                (point_id_to_text(i), _encode_payload(p)) for i, p in zip(ids, new, strict=True)
            ]
            op_id = self._store.commit(WriteBatch(put_payloads=encoded))
            for (segment, row), payload in zip(filter(None, located), new, strict=True):
                segment.set_payload(row, payload, op_id)
        return op_id

    def _select_for_update(
        self, ids: Sequence[PointId], update_mode: str, update_filter: Filter | None
    ) -> list[int]:
        """Indices of ``ids`` this upsert writes, per ``update_mode`` / ``update_filter``."""
        if update_mode == "upsert" and update_filter is None:
            return list(range(len(ids)))
        chosen = []
        for i, point_id in enumerate(ids):
            found = self._segments.locate(point_id)
            if found is None:
                if update_mode != "update_only":
                    chosen.append(i)
                continue
            if update_mode == "insert_only":
                continue
            segment, row = found
            if update_filter is not None and not update_filter.matches(
                point_id, segment.payload(row), partial(segment.has_vector, row)
            ):
                continue
            chosen.append(i)
        return chosen

    def _reload(self) -> None:
        """Rebuild the segments from the point store, reusing saved segments whose
        points are unchanged (same vectors) and putting every other point in the
        appendable segment."""
        points = {p.pid: p for p in self._store.load_all()}
        claimed: set[str] = set()
        for loaded in self._segment_store.load_all():
            segment = self._restore_segment(loaded.manifest, loaded.blobs, points, claimed)
            self._segments.sealed[segment.segment_id] = segment
        rest = [p for pid, p in points.items() if pid not in claimed]
        if rest:
            batch = _batch_from_loaded([p.pid for p in rest], rest, self._config)
            self._segments.appendable.upsert(batch, 0)
            for i, point in enumerate(rest):
                self._segments.appendable.set_payload(i, batch.payloads[i], point.version)
        self._maybe_seal()
        log.info(
            "collection loaded",
            extra={"collection": self.name, "points": len(points),
                   "segments": len(self._segments.sealed)},
        )  # fmt: skip

    def _restore_segment(
        self,
        manifest: SegmentManifest,
        blobs: dict[str, memoryview | None],
        points: dict[str, LoadedPoint],
        claimed: set[str],
    ) -> SealedSegment:
        stored = [points.get(pid) for pid in manifest.point_ids]
        batch = _batch_from_loaded(manifest.point_ids, stored, self._config)
        indexes: dict[str, AnyIndex] = {}
        spec = read_spec(manifest.spec)
        alive = np.array([p is not None and p.pid not in claimed for p in stored], dtype=bool)
        for name, params in self._config.vectors.items():
            blob = blobs.get(name)
            index: AnyIndex
            if blob is not None:
                index = index_from_bytes(blob)
            elif params.is_multi:
                index = MaxSimIndex(params.size, params.distance)
                index.add(batch.tokens[name])
                spec = None
            else:
                index = FlatIndex(params.size, params.distance)
                index.add(batch.vectors[name])
                spec = None
            same = _holds(index, batch, name)
            alive &= same | ~batch.present[name]
            indexes[name] = index
        claimed.update(p.pid for p, ok in zip(stored, alive, strict=True) if p is not None and ok)
        versions = [0 if p is None else p.version for p in stored]
        parts = SealedParts(batch.ids, batch.payloads, versions, indexes, batch.present)
        schema = self._config.payload_schema
        return SealedSegment(manifest.segment_id, parts, alive, spec, schema=schema)

    def _new_appendable(self) -> AppendableSegment:
        vectors = self._config.vectors
        return AppendableSegment(
            {name: (p.size, p.distance) for name, p in vectors.items() if not p.is_multi},
            self._config.payload_schema,
            {name: (p.size, p.distance) for name, p in vectors.items() if p.is_multi},
        )

    # -- snapshots -------------------------------------------------------

    def write_snapshot(self, folder: Path) -> SnapshotDescription:
        """Archive this collection into ``folder`` while reads and writes go on: no lock
        is held (``storage/snapshots.py``: the point store is copied in one read
        transaction, segment files are immutable)."""
        if self._closed:
            raise CollectionNotFound(self.name)
        return write_snapshot(folder, self.name, self._store, self._segment_store)


class _WriteGuard:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._lock = collection._lock.write()

    def __enter__(self) -> None:
        self._lock.__enter__()
        if self._collection._closed:
            self._lock.__exit__(None, None, None)
            raise CollectionNotFound(self._collection.name)

    def __exit__(self, *exc: object) -> None:
        self._collection._last_write = time.monotonic()
        self._lock.__exit__(None, None, None)


def _bare_hit(point_id: PointId, version: int, score: float) -> ScoredPoint:
    return ScoredPoint(point_id, version, score, None, None)


def _has_value(key: str) -> Filter:
    from server.engine.filters import parse_filter

    flt = parse_filter({"must_not": [{"is_empty": {"key": key}}]})
    assert flt is not None
    return flt


def _page_mask(ranked: Ranked, specs: Sequence[SearchSpec], higher_is_better: bool) -> np.ndarray:
    """Which ranked hits each search returns: found, within its offset/limit page, and
    past its score threshold."""
    k = ranked.rows.shape[1]
    rank = np.arange(k)
    offsets = np.array([s.offset for s in specs])[:, None]
    limits = np.array([s.limit for s in specs])[:, None]
    keep: np.ndarray = (ranked.rows >= 0) & (rank >= offsets) & (rank < offsets + limits)
    thresholds = [s.score_threshold for s in specs]
    if any(t is not None for t in thresholds):
        bound = np.array([np.nan if t is None else t for t in thresholds])[:, None]
        with np.errstate(invalid="ignore"):
            passes = ranked.scores >= bound if higher_is_better else ranked.scores <= bound
        keep &= passes | np.isnan(bound)
    return keep


def _gather_rows(
    segments: list[AnySegment], owner: np.ndarray, rows: np.ndarray
) -> tuple[list[PointId], list[int]]:
    """Point ids and versions of hits, gathered per segment in C (``itemgetter``)."""
    ids = np.empty(len(rows), dtype=object)
    versions = np.zeros(len(rows), dtype=np.int64)
    for position, segment in enumerate(segments):
        where = np.flatnonzero(owner == position)
        if len(where) == 0:
            continue
        picked = rows[where].tolist()
        if len(picked) == 1:
            ids[where[0]] = segment.ids[picked[0]]
            versions[where[0]] = segment.versions[picked[0]]
            continue
        fetch = itemgetter(*picked)
        ids[where] = fetch(segment.ids)
        versions[where] = fetch(segment.versions)
    return ids.tolist(), versions.tolist()


def _holds(index: AnyIndex, batch: PointBatch, name: str) -> np.ndarray:
    """Per row: does the index still hold exactly this stored vector? Compressed
    secondaries (float16, int8) compare encodings, not lossy decoded floats."""
    if isinstance(index, MULTI_INDEX_TYPES):
        return index.same_rows(batch.tokens[name])
    if isinstance(index, TwoStageIndex):
        return index.same_rows(batch.vectors[name])
    same: np.ndarray = (index.vectors() == batch.vectors[name]).all(axis=1)
    return same


def _decoded(data: bytes, dim: int) -> np.ndarray:
    """Stored float32 bytes as ``(n, dim)`` rows (one row for a dense vector)."""
    return np.frombuffer(data, dtype=np.float32).reshape(-1, dim).copy()


def _batch_from_loaded(
    pids: Sequence[str], stored: Sequence[LoadedPoint | None], config: CollectionConfig
) -> PointBatch:
    """Stored points -> a batch (missing points, None, become empty zero rows)."""
    count = len(stored)
    dense = {n: p for n, p in config.vectors.items() if not p.is_multi}
    vectors = {n: np.zeros((count, p.size), dtype=np.float32) for n, p in dense.items()}
    sets: dict[str, list[np.ndarray]] = {
        n: [np.zeros((0, p.size), dtype=np.float32)] * count
        for n, p in config.vectors.items()
        if p.is_multi
    }
    present = {n: np.zeros(count, dtype=bool) for n in config.vectors}
    for i, point in enumerate(stored):
        if point is None:
            continue
        for name, data in point.vectors.items():
            if name in vectors:
                vectors[name][i] = np.frombuffer(data, dtype=np.float32)
                present[name][i] = True
            elif name in sets:
                sets[name][i] = np.frombuffer(data, dtype=np.float32).reshape(
                    -1, config.vectors[name].size
                )
                present[name][i] = True
    ids = [point_id_from_text(pid) for pid in pids]
    payloads = [orjson.loads(p.payload) if p is not None else {} for p in stored]
    tokens = {n: Ragged.from_arrays(s, config.vectors[n].size) for n, s in sets.items()}
    return PointBatch(ids, vectors, present, payloads, tokens)


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


def _stored(batch: PointBatch, known: Sequence[bool]) -> PointRows:
    """The rows to write; ``known[i]``: the point exists already (its old vectors go)."""
    pids = [point_id_to_text(i) for i in batch.ids]
    rows = PointRows(pids, [_encode_payload(p) for p in batch.payloads])
    rows.replaced = [pid for pid, old in zip(pids, known, strict=True) if old]
    for name, matrix in batch.vectors.items():
        present = batch.present[name]
        picked = range(len(pids)) if present.all() else np.flatnonzero(present).tolist()
        rows.vectors.extend((pids[i], name, matrix[i].tobytes()) for i in picked)
    for name, sets in batch.tokens.items():
        for i in np.flatnonzero(batch.present[name]).tolist():
            rows.vectors.append((pids[i], name, sets.item(i).tobytes()))
    return rows


def _check_collection_handle(collection: Collection) -> CollectionHandle:
    return collection  # mypy checks Collection against the collection interface here
