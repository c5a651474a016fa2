"""One collection: the facade that owns the segment holder, the lock and the lifecycle.

Write path: validate everything, commit one SQLite transaction (durable), then
apply the same change to the segments (``writes.py``); when the appendable segment
reaches ``indexing_threshold`` it is sealed and the build worker indexes it in the
background (``segment_lifecycle.py``). Reads fan out over all segments (``search.py``,
``records.py``). A crash between commit and apply is harmless because the segments
are rebuilt from the store on start (``recovery.py``), reusing index files whose
points are unchanged. Every public method takes the lock it needs and delegates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from server.engine.collection import records, recovery, stats
from server.engine.collection.records import RecordReader
from server.engine.collection.search import Searcher
from server.engine.collection.writes import (
    PayloadChange,
    Upsert,
    VectorChange,
    Writer,
    bulk_vectors,
    last_occurrences,
    upsert_vectors,
)
from server.engine.config import CollectionConfig
from server.engine.facets import FacetValue, check_facet_key, count_values
from server.engine.filters import Filter
from server.engine.limits import EngineLimits, check_result_budget
from server.engine.optimizer import Task
from server.engine.ordering import OrderBy
from server.engine.payload import JsonPath, PayloadSelector, delete_payload_keys, set_payload
from server.engine.planner import PlannerConfig
from server.engine.point_ids import PointId
from server.engine.protocols import CollectionHandle, JobBoard, JobWire
from server.engine.query import run_queries
from server.engine.requests import PointsSelection, Query, SearchSpec, VectorSelector
from server.engine.results import (
    CollectionInfo,
    QueryResult,
    Record,
    ScoredPoint,
    ScrollPage,
    SegmentInfo,
)
from server.engine.rwlock import ReadWriteLock
from server.engine.segment_lifecycle import SegmentLifecycle, learns_from_queries, new_appendable
from server.engine.segment_set import SegmentSet
from server.engine.sparse_vector import SparseRows, SparseVector
from server.engine.training_queries import QuerySamples
from server.engine.unindexed_fields import UNINDEXED_FIELDS
from server.engine.vectors import (
    check_vector_names,
    merge_vector_updates,
    point_vectors,
    prepare_matrix,
    prepare_sets,
    sparse_name,
    vector_name,
)
from server.errors import BadRequest, CollectionNotFound, PointNotFound
from server.storage.point_store import PointStore
from server.storage.segment_store import SegmentStore
from server.storage.snapshots import SnapshotDescription, write_snapshot

log = logging.getLogger(__name__)
_T = TypeVar("_T")

StatusProvider = Callable[[], tuple[str, Any]]


class Collection:
    """A named collection; all public methods are thread-safe."""

    def __init__(
        self,
        name: str,
        path: Path,
        store: PointStore,
        config: CollectionConfig,
        *,
        read_only: bool = False,
    ) -> None:
        """``read_only``: a reader worker's copy (``server/workers/view.py``), which must
        never seal, nor clean up the owner's half-written segment folders."""
        self.name = name
        self.path = path
        self._store = store
        self._config = config
        self._lock = ReadWriteLock()
        self._segments = SegmentSet(new_appendable(config, store))
        self._read_only = read_only
        self._segment_store = SegmentStore(path / "segments", clean=not read_only)
        self._writer = Writer(self._segments, store)
        self._id_lock = threading.Lock()
        self.query_samples = QuerySamples(store, {n: p.size for n, p in config.vectors.items()})
        self._lifecycle = SegmentLifecycle(
            self, self._segments, self._lock, store, self._segment_store, self.query_samples
        )
        self._closed = False
        self._bulk_loads = 0
        self._last_write = time.monotonic()
        self.on_change: Callable[[Collection], None] = lambda _c: None
        """Called after writes that may make background work due (set by the engine)."""
        self.status: StatusProvider = lambda: ("green", "ok")
        self.planner = PlannerConfig()
        self.result_budget = EngineLimits().max_request_result_bytes
        self._jobs: JobBoard | None = None

    @classmethod
    def create(cls, name: str, path: Path, config: CollectionConfig) -> Collection:
        store = PointStore.create(path, config.model_dump(mode="json"))
        return cls(name, path, store, config)

    @classmethod
    def open(cls, name: str, path: Path, *, read_only: bool = False) -> Collection:
        store = PointStore.open(path)
        config = CollectionConfig.model_validate(store.config())
        collection = cls(name, path, store, config, read_only=read_only)
        collection._reload()
        return collection

    def close(self) -> None:
        with self._lock.write():
            if not self._closed:
                self._closed = True
                self.query_samples.flush()
                self._store.close()
                UNINDEXED_FIELDS.clear([self.name])  # issues live as long as the collection

    @contextmanager
    def moving_to(self, path: Path) -> Iterator[None]:
        """Let the block move this collection's folder to ``path``: a recovered
        snapshot, opened (and so checked) in a temporary folder, takes its place
        without being opened a second time. The database is closed while the folder
        moves and reopened there; indexes mapped from segment files keep their
        mappings across the rename. Only for a collection no one uses yet: if the
        block (or the reopen) fails, the collection is left closed."""
        with self._lock.write():
            self._store.close()
            try:
                yield
                self._store.reopen(path)
            except BaseException:
                self._closed = True  # its store is closed: close() has nothing left to do
                raise
            self.path = path
            self._segment_store.root = path / "segments"

    @property
    def config(self) -> CollectionConfig:
        return self._config

    @property
    def store(self) -> PointStore:
        return self._store

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writes (writes.py) ------------------------------------------------

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
        keep = last_occurrences(ids)
        prepared = upsert_vectors(self._config, vectors, keep)
        points = Upsert(
            [ids[i] for i in keep], prepared, [payloads[i] or {} for i in keep],
            update_mode, update_filter,
        )  # fmt: skip
        return self._upsert(points)

    def bulk_upsert(
        self,
        ids: Sequence[PointId],
        matrices: dict[str, np.ndarray | SparseRows],
        payloads: Sequence[dict[str, Any]],
    ) -> int:
        """Upsert dense vectors given as whole matrices (one per vector name, every row
        present; sparse names as checked CSR rows): validated and prepared in one numpy
        pass, no per-point parsing. Rows must already be finite; a bulk loader rejects
        the others first."""
        keep = last_occurrences(ids)
        prepared = bulk_vectors(self._config, matrices, keep, len(ids))
        return self._upsert(Upsert([ids[i] for i in keep], prepared, [payloads[i] for i in keep]))

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
                        self._lifecycle.seal_appendable()
                self.on_change(self)

    def delete(self, selection: PointsSelection) -> int:
        with self._writing():
            op_id = self._writer.delete(selection)
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

    def update_vectors(
        self, points: Sequence[tuple[PointId, Any]], update_filter: Filter | None = None
    ) -> int:
        """Set the named vectors each point gives, keeping its others and its payload;
        all are validated before anything is written. An id that names no point is a
        404 after the others are written (Qdrant's order)."""
        ids, raws = merge_vector_updates(points)
        given = point_vectors(raws, self._config)
        return self._change_vectors(lambda: VectorChange(ids, given, update_filter=update_filter))

    def delete_vectors(self, selection: PointsSelection, names: Sequence[str]) -> int:
        """Remove the named vectors from the selected points (their others stay)."""
        check_vector_names(self._config, names)

        def change() -> VectorChange:
            if selection.ids is None:
                ids = self._writer.resolve(selection, must_exist=False)
            else:
                ids = list(dict.fromkeys(selection.ids))
            return VectorChange(ids, dropped=frozenset(names))

        return self._change_vectors(change)

    def update_config(self, config: CollectionConfig) -> int:
        with self._writing():
            op_id = self._store.write_config(config.model_dump(mode="json"))
            if config.payload_schema != self._config.payload_schema:
                self._segments.set_schema(config.payload_schema)
            self._config = config
            self._maybe_seal()
        self.on_change(self)
        return op_id

    def replace_vectors(self, config: CollectionConfig) -> int:
        """Store ``config``, whose named vectors differ from the current ones (a name
        added or removed), and rebuild the segments from the point store under it: a
        removed name's stored vectors go in the same transaction; sealed segments get
        the new name empty, and are re-indexed in the background."""
        if (config.vectors, config.sparse_vectors) == (
            self._config.vectors,
            self._config.sparse_vectors,
        ):
            return self.update_config(config)  # the same names again: nothing to rebuild
        with self._writing():
            dropped = [
                name
                for name in [*self._config.vectors, *self._config.sparse_vectors]
                if name not in config.vectors and name not in config.sparse_vectors
            ]
            op_id = self._store.write_config(config.model_dump(mode="json"), dropped)
            self._config = config
            self._segments.sealed.clear()
            self._segments.appendable = new_appendable(config, self._store)
            recovery.reload(self._segments, self._store, self._segment_store, config)
            self._maybe_seal()
        self.on_change(self)
        self.config_changed()
        return op_id

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
        retraining = retrain and learns_from_queries(self._config)
        if retraining:
            index = self._config.index
            bumped = index.model_copy(update={"training_generation": index.training_generation + 1})
            self.update_config(self._config.with_updates(index=bumped.model_dump()))
        return {"vector": name, "training_queries": kept, "retraining": retraining}

    def training_query_counts(self, names: list[str]) -> dict[str, Any]:
        """How many uploaded ("given") and served ("seen") queries each vector has."""
        return {name: self.query_samples.counts(name) for name in names}

    def live_versions(self) -> dict[int, np.ndarray]:
        """Per sealed segment, each row's version where the row is live, else -1: a live
        row's indexed vectors are its point's vectors at that version. Sent beside the
        segment's files, it lets a new replica open them without reading and comparing
        every vector (``recovery.py``, ``server/cluster/shard_files.py``)."""
        with self._lock.read():
            return {
                segment_id: np.where(segment.live_mask(), segment.versions, -1)
                for segment_id, segment in self._segments.sealed.items()
            }

    # -- reads (records.py, search.py) -------------------------------------

    def count(self, flt: Filter | None) -> int:
        with self._lock.read():
            return self._segments.count(flt)

    def facet_counts(self, key: str, flt: Filter | None) -> dict[FacetValue, int]:
        check_facet_key(self._config, key)
        with self._lock.read():
            return count_values(self._segments, key, flt)

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        with self._lock.read():
            return records.retrieve(self._segments, self._reader(), ids, with_payload, with_vector)

    def payload_values(self, ids: Sequence[PointId], path: JsonPath) -> list[list[Any]]:
        with self._lock.read():
            return records.payload_values(self._segments, ids, path)

    def get_point(self, point_id: PointId) -> Record:
        found = self.retrieve([point_id], PayloadSelector.of("all"), True)
        if not found:
            raise PointNotFound(point_id)
        return found[0]

    def scroll(
        self,
        flt: Filter | None,
        limit: int,
        offset: PointId | None,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> ScrollPage:
        with self._lock.read():
            return records.scroll(
                self._segments, self._reader(), flt, (limit, offset), with_payload, with_vector
            )

    def scroll_ordered(
        self,
        flt: Filter | None,
        order: OrderBy,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> ScrollPage:
        with self._lock.read():
            return records.scroll_ordered(
                self._segments, self._reader(), flt, (order, limit), with_payload, with_vector
            )

    def sample(
        self,
        flt: Filter | None,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> list[Record]:
        with self._lock.read():
            return records.sample(
                self._segments, self._reader(), flt, limit, with_payload, with_vector
            )

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray | SparseVector:
        """The stored vector of a point, for queries that name a point instead of a vector."""
        if using in self._config.sparse_vectors:
            with self._lock.read():
                return records.stored_sparse(self._segments, point_id, using)
        name = vector_name(self._config, using)
        with self._lock.read():
            return records.stored_vector(self._segments, self._reader(), point_id, name)

    def query_vectors_of(
        self, point_ids: Sequence[PointId], using: str
    ) -> list[np.ndarray | SparseVector]:
        """The stored vectors of several points under one read lock."""
        if using in self._config.sparse_vectors:
            with self._lock.read():
                return [records.stored_sparse(self._segments, p, using) for p in point_ids]
        name = vector_name(self._config, using)
        with self._lock.read():
            return list(records.stored_vectors(self._segments, self._reader(), point_ids, name))

    def sparse_name(self, using: str | None) -> str:
        return sparse_name(self._config, using)

    def sparse_idf(self, name: str) -> bool:
        return self._config.sparse_vectors[name].idf

    def sparse_statistics(self, name: str, terms: np.ndarray) -> tuple[np.ndarray, int]:
        with self._lock.read():
            return self._segments.sparse_statistics(name, terms)

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
            return prepare_sets(
                raws, params, self._config.multivector, "query multi-vector", query=True
            )
        return prepare_matrix(raws, params, "query vector", query=True)

    def query(self, queries: Sequence[Query]) -> list[QueryResult]:
        return run_queries(self, queries)

    def check_result_budget(self, specs: Sequence[SearchSpec]) -> None:
        """Without the lock (every query asks, before its search takes it): the sizes
        only cap the estimate (``SegmentSet.sizes``)."""
        check_result_budget(specs, self._segments.sizes(), self.result_budget)

    def search(self, specs: Sequence[SearchSpec]) -> list[list[ScoredPoint]]:
        """Answer a batch of searches (``search.Searcher``); LeanVec OOD collections
        keep a sample of the dense queries they serve for training. A slow batch
        reports the keys it filtered on unindexed (``unindexed_fields``)."""
        results = self._searched(lambda s: s.search(specs), (spec.filter for spec in specs))
        if learns_from_queries(self._config):
            for spec in specs:
                params = self._config.vectors.get(spec.using)
                if params is not None and not params.is_multi:
                    assert isinstance(spec.vector, np.ndarray)
                    self.query_samples.offer(spec.using, spec.vector[None, :])
        return results

    def search_alike(
        self, spec: SearchSpec, vectors: np.ndarray | list[np.ndarray]
    ) -> list[Sequence[ScoredPoint]]:
        """``search`` of ``spec`` with each of ``vectors`` (``Searcher.search_alike``),
        sampled and reported as ``search`` does."""
        results = self._searched(lambda s: s.search_alike(spec, vectors), (spec.filter,))
        if learns_from_queries(self._config) and isinstance(vectors, np.ndarray):
            self.query_samples.offer(spec.using, vectors)
        return results

    def _searched(self, run: Callable[[Searcher], _T], filters: Iterable[Filter | None]) -> _T:
        """``run`` on a searcher of the segments under the read lock; a slow run reports
        the keys of ``filters`` it filtered on unindexed (``unindexed_fields``)."""
        started = time.perf_counter()
        with self._lock.read():
            found = run(Searcher(self._segments, self._config, self.planner, self._reader()))
        UNINDEXED_FIELDS.observe(
            self.name, self._config.payload_schema, filters, time.perf_counter() - started
        )
        return found

    # -- stats (stats.py) --------------------------------------------------

    def info(self) -> CollectionInfo:
        status = self.status()
        with self._lock.read():
            return stats.collection_info(self._segments, self._config, status)

    def segments_info(self) -> list[SegmentInfo]:
        with self._lock.read():
            return stats.segments_info(self._segments)

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

    def due_tasks(self, busy: set[int], held: set[int] | None = None) -> list[Task]:
        return self._lifecycle.due(busy, held or set())

    def run_task(
        self,
        task: Task,
        progress: Callable[[int, int], None],
        cancelled: Callable[[], bool],
    ) -> int | None:
        """Build the task's segments into one and swap it in (``SegmentLifecycle.run``)."""
        return self._lifecycle.run(task, progress, cancelled)

    def seal_if_idle(self, idle_s: float) -> bool:
        """Seal an indexed collection's idle exact tail (``SegmentLifecycle.seal_if_idle``)."""
        return self._lifecycle.seal_if_idle(
            idle_s, last_write=self._last_write, bulk_loading=bool(self._bulk_loads)
        )

    def write_snapshot(self, folder: Path) -> SnapshotDescription:
        """Archive this collection into ``folder`` while reads and writes go on: no lock
        is held (``storage/snapshots.py``: the point store is copied in one read
        transaction, segment files are immutable)."""
        if self._closed:
            raise CollectionNotFound(self.name)
        return write_snapshot(folder, self.name, self._store, self._segment_store)

    # -- internals -------------------------------------------------------

    def _upsert(self, points: Upsert) -> int:
        with self._writing():
            op_id = self._writer.upsert(points)
            self._maybe_seal()
        self.on_change(self)
        return op_id

    def _change_vectors(self, change: Callable[[], VectorChange]) -> int:
        """Apply the change ``change()`` describes (made under the write lock, so a
        filter selects the points as they are when it runs)."""
        with self._writing():
            exact = self._reader().exact_vectors
            op_id, missing = self._writer.change_vectors(change(), self._config, exact)
            self._maybe_seal()
        self.on_change(self)
        if missing is not None:
            raise PointNotFound(missing)
        return op_id

    def _rewrite_payloads(self, selection: PointsSelection, change: PayloadChange) -> int:
        with self._writing():
            return self._writer.rewrite_payloads(selection, change)

    def _reader(self) -> RecordReader:
        return RecordReader(self._store, self._config)

    def _writing(self) -> _WriteGuard:
        """The write lock, refusing writes to a collection that was deleted meanwhile."""
        return _WriteGuard(self)

    def _maybe_seal(self) -> None:
        """Seal a full appendable segment; called under the write lock."""
        self._lifecycle.maybe_seal(bulk_loading=bool(self._bulk_loads))

    def _reload(self) -> None:
        """Rebuild the segments from the point store (``recovery.reload``)."""
        points = recovery.reload(self._segments, self._store, self._segment_store, self._config)
        if not self._read_only:
            self._maybe_seal()
        log.info(
            "collection loaded",
            extra={"collection": self.name, "points": points,
                   "segments": len(self._segments.sealed)},
        )  # fmt: skip


class _WriteGuard:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._lock = collection._lock.write()

    def __enter__(self) -> None:
        self._lock.__enter__()
        if self._collection._closed:
            self._lock.__exit__(None, None, None)
            raise CollectionNotFound(self._collection.name)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._collection._last_write = time.monotonic()
        self._lock.__exit__(None, None, None)
        if exc_type is None:
            self._collection._store.sync()  # group commit: answer once the write is on disk


def _check_collection_handle(collection: Collection) -> CollectionHandle:
    return collection  # mypy checks Collection against the collection interface here
