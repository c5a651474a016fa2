"""A collection's segment lifecycle: seal the appendable tail, run optimizer tasks.

Works on the collection's segment holder (``SegmentSet``) under the collection's lock:

* **sealing** turns the appendable segment into a sealed, exactly searched one once it
  holds ``indexing_threshold`` points (or when an indexed collection's tail sits idle);
* **due** asks the optimizer conditions (``optimizer.py``) what work is due;
* **run** is the one build-and-swap operation every task kind shares: snapshot the
  rows under the read lock, build without a lock (``segment_build.py``), write the
  segment file, then swap it in under a brief write lock, carrying over every delete
  made meanwhile as a tombstone.

``Collection`` keeps thin methods that delegate here, so the build worker's calls
(``due_tasks`` / ``run_task`` / ``seal_if_idle``) do not change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.multivector import Ragged
from index.registry import AnyIndex
from server.engine.config import CollectionConfig, stored_datatypes
from server.engine.id_column import IdTexts
from server.engine.index_spec import IndexSpec
from server.engine.optimizer import Task, due_tasks
from server.engine.point_ids import point_id_to_text
from server.engine.rwlock import ReadWriteLock
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment, SealedParts
from server.engine.segment_build import RebuildInput, build, snapshot
from server.engine.segment_rows import shared_rows
from server.engine.segment_set import SegmentSet
from server.engine.shared_graphs import load_index
from server.engine.tenant_layout import VALUE_GRAPHS_BLOB
from server.engine.training_queries import QuerySamples
from server.errors import StorageError
from server.storage.point_store import PointStore
from server.storage.segment_store import SegmentManifest, SegmentStore

log = logging.getLogger(__name__)

_NO_PAYLOAD: dict[str, Any] = {}
"""Every row's payload in a rebuilt segment whose payloads stay in the store and
which indexes none: the segment only counts them."""


class SegmentOwner(Protocol):
    """What the lifecycle reads from its collection at the moment it acts (the config
    changes with PATCH, ``closed`` with a delete)."""

    name: str

    @property
    def config(self) -> CollectionConfig: ...

    @property
    def closed(self) -> bool: ...


def new_appendable(config: CollectionConfig, store: PointStore | None = None) -> AppendableSegment:
    """An empty appendable segment for ``config``'s vectors and payload schema; its
    payloads are read from ``store`` when ``on_disk_payload`` is on, and the rows of
    its ``on_disk`` dense vectors are mapped in the store's folder."""
    vectors = config.vectors
    return AppendableSegment(
        {name: (p.size, p.distance) for name, p in vectors.items() if not p.is_multi},
        config.payload_schema,
        {name: (p.size, p.distance) for name, p in vectors.items() if p.is_multi},
        list(config.sparse_vectors),
        payload_reader=store if config.on_disk_payload else None,
        datatypes=stored_datatypes(config),
        mapped=unindexed_mapped(config, store),
    )


def unindexed_mapped(config: CollectionConfig, store: PointStore | None) -> dict[str, Path]:
    """The dense and multi-vectors whose rows or tokens, while no index file holds them
    (the appendable tail, exact segments), live in memory-mapped scratch files
    (``MappedMatrix``) in the collection's folder instead of the heap: Qdrant's
    ``on_disk`` vectors. (Sparse rows of the tail stay in the heap.)"""
    if store is None:
        return {}
    return dict.fromkeys([name for name, p in config.vectors.items() if p.mapped], store.path)


def learns_from_queries(config: CollectionConfig) -> bool:
    """Whether builds train on a sample of queries (LeanVec's out-of-distribution variant)."""
    return config.index.type == "leanvec" and config.index.variant == "ood"


class SegmentLifecycle:
    """Sealing and optimisation of one collection's segments (see the module docstring)."""

    def __init__(
        self,
        owner: SegmentOwner,
        segments: SegmentSet,
        lock: ReadWriteLock,
        store: PointStore,
        segment_store: SegmentStore,
        query_samples: QuerySamples,
    ) -> None:
        self._owner = owner
        self._segments = segments
        self._lock = lock
        self._store = store
        self._segment_store = segment_store
        self._query_samples = query_samples
        self._next_segment_id = segment_store.max_segment_id() + 1
        self._id_lock = threading.Lock()
        self._spec_of: tuple[CollectionConfig, IndexSpec] | None = None

    # -- sealing (callers hold the write lock unless said otherwise) ----------

    def maybe_seal(self, *, bulk_loading: bool) -> None:
        """Seal the appendable segment once it holds ``indexing_threshold`` points
        (0 disables indexing, as in Qdrant). While a bulk load runs, only once it also
        holds as many rows as all sealed segments (``Collection.bulk_loading``)."""
        threshold = self._owner.config.optimizers_config.indexing_threshold
        if threshold <= 0:
            return
        if bulk_loading:
            threshold = max(threshold, sum(s.row_count() for s in self._segments.sealed.values()))
        if len(self._segments.appendable) < threshold:
            return
        self.seal_appendable()

    def seal_if_idle(self, idle_s: float, *, last_write: float, bulk_loading: bool) -> bool:
        """Seal the exact-search tail of a collection that is already indexed when no
        write came for ``idle_s`` seconds and the tail holds at least a quarter of
        ``indexing_threshold`` points. Every query scans that tail in full (10k GloVe
        vectors cost ~20% of an HNSW batch over 390k); once sealed, the index and merge
        jobs fold it into the graph. Smaller collections stay exact, as in Qdrant.
        Takes the write lock itself."""
        threshold = self._owner.config.optimizers_config.indexing_threshold
        if threshold <= 0 or bulk_loading or time.monotonic() - last_write < idle_s:
            return False
        with self._lock.write():
            tail = len(self._segments.appendable)
            if self._owner.closed or not self._segments.sealed or tail < max(1, threshold // 4):
                return False
            self.seal_appendable()
        log.info("idle tail sealed", extra={"collection": self._owner.name, "points": tail})
        return True

    def seal_appendable(self) -> None:
        """The appendable segment becomes a sealed one (exact indexes, its payload
        indexes handed over); an empty appendable takes its place."""
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
            segment_id,
            parts,
            payload_indexes=appendable.payload_indexes,
            payload_reader=appendable.payload_reader,
        )
        self._segments.appendable = new_appendable(self._owner.config, self._store)

    # -- optimisation ---------------------------------------------------------

    def due(self, busy: set[int], held: set[int]) -> list[Task]:
        """The work due now, read from a copy of the sealed segments without the
        collection's lock: every write asks this after it ends, and taking the read
        lock there queued each write behind the next ones. A stale view is harmless:
        ``run`` checks its segments under the lock, and the write that changed them
        asks again once it ends."""
        if self._owner.closed:
            return []
        config = self._owner.config
        sealed = dict(self._segments.sealed)
        return due_tasks(config, sealed, busy, held, self._index_spec(config))

    def _index_spec(self, config: CollectionConfig) -> IndexSpec:
        """``config.index_spec()``, computed once per config. Every write asks what is
        due, and building the spec through pydantic was ~20 of its ~32 µs; a config is
        frozen and replaced whole on every change, so its identity says when to redo it."""
        known = self._spec_of
        if known is not None and known[0] is config:
            return known[1]
        spec = config.index_spec()
        self._spec_of = (config, spec)
        return spec

    def run(
        self,
        task: Task,
        progress: Callable[[int, int], None],
        cancelled: Callable[[], bool],
    ) -> int | None:
        """Rebuild the task's segments into one new indexed segment and swap it in.

        Returns the new segment id, or None when the segments are gone (deleted
        collection, or already replaced); a collection deleted while the build ran
        ends it quietly, whether the build saw the cancel or reached the write. The
        build runs without the lock; only the final swap takes the write lock, briefly."""
        with self._lock.read():
            if not self._sources_present(task):
                return None
            job = self._snapshot(task)
        indexes = build(job, progress, cancelled)
        segment_id = self._allocate_segment_id()
        manifest = SegmentManifest(
            segment_id=segment_id,
            point_ids=IdTexts(job.ids),
            indexes={name: None for name in indexes},
            spec=job.spec.to_manifest(),
            replaces=list(task.segment_ids),
        )
        blobs = {n: i.to_bytes() for n, i in indexes.items()}
        if job.value_graphs:
            blobs[VALUE_GRAPHS_BLOB] = job.value_graphs.to_bytes()
        try:
            self._segment_store.write(manifest, blobs)
            indexes = self._mapped(manifest, indexes)
        except (StorageError, OSError):
            if self._owner.closed:  # deleted while it built: its folder is gone, and so is the work
                log.info("build ended: collection deleted", extra={"collection": self._owner.name})
                return None
            raise
        with self._lock.write():
            if not self._sources_present(task) or not self._same_vectors(indexes):
                self._segment_store.remove([segment_id])
                return None
            self._swap_in(segment_id, job, indexes)
        self._segment_store.remove(list(task.segment_ids))
        log.info(
            "segment built",
            extra={"collection": self._owner.name, "task": task.kind, "segment": segment_id,
                   "replaces": list(task.segment_ids), "points": len(job.ids)},
        )  # fmt: skip
        return segment_id

    def _same_vectors(self, indexes: dict[str, AnyIndex]) -> bool:
        """Whether a build still has the collection's vector names (one added or
        removed meanwhile reloads the segments; the build is of no use then)."""
        config = self._owner.config
        return set(indexes) == {*config.vectors, *config.sparse_vectors}

    def _sources_present(self, task: Task) -> bool:
        sealed = self._segments.sealed
        return not self._owner.closed and all(s in sealed for s in task.segment_ids)

    def _snapshot(self, task: Task) -> RebuildInput:
        """The task's rows, exact vectors and training queries (under the read lock)."""
        config = self._owner.config
        job = snapshot(task, config, self._segments.sealed)
        self._exact_job_vectors(job, task)
        if learns_from_queries(config):
            for name in config.vectors:
                sample = self._query_samples.for_training(name)
                if sample is not None:
                    job.training_queries[name] = sample
        return job

    def _allocate_segment_id(self) -> int:
        with self._id_lock:
            segment_id = self._next_segment_id
            self._next_segment_id += 1
            return segment_id

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
                dim = self._owner.config.vectors[name].size
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
        """Every built index is reopened from the file just written, as a restart would.
        Those that can read their full vectors from the memory-mapped file leave them
        there; so does the index of an ``on_disk`` vector (its rows or tokens stay in the
        file), or any HNSW graph while workers share them (``shared_graphs.py``). The
        others are copied back, sized exactly: the build added its rows in chunks, and
        faiss's arrays grew by doubling, so the built copy held up to twice its size
        (issue 24: ~80 B a point on GloVe-50 390k over what a restart holds)."""
        out = dict(indexes)
        for name in indexes:
            view = self._segment_store.read_index(manifest, name)
            if view is not None:
                out[name] = load_index(view)
        return out

    def _swap_in(self, segment_id: int, job: RebuildInput, indexes: dict[str, AnyIndex]) -> None:
        """Replace the job's source segments with the new one, carrying over every change
        made while it was built: deletes become tombstones, payloads are taken now."""
        config = self._owner.config
        alive, versions, payloads = self._take_sources(job, config)
        folder = self._segment_store.folder(segment_id)
        mapped = shared_rows(folder, job.ids, versions, owner=True)  # workers map them
        parts = SealedParts(job.ids, payloads, versions, indexes, job.present)
        self._segments.sealed[segment_id] = SealedSegment(
            segment_id, parts, alive, job.spec, schema=config.payload_schema,
            payload_reader=self._store if config.on_disk_payload else None,
            value_graphs=job.value_graphs, rows=mapped or (job.ids, versions),
        )  # fmt: skip

    def _take_sources(
        self, job: RebuildInput, config: CollectionConfig
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Pop the job's source segments; their rows' live flags, versions and payloads
        as they are now, in the new segment's row order. Versions stay an array, and
        payloads kept in the store that no payload index reads are not read: Python
        objects made per point by every build left the small-object allocator's
        arenas pinned (issue 24)."""
        unread = config.on_disk_payload and not config.payload_schema
        payloads: list[dict[str, Any]] = []
        versions, live = [], []
        for source_id, rows in job.sources:
            source = self._segments.sealed.pop(source_id)
            live.append(source.live_mask()[rows])
            versions.append(source.versions[rows])
            if not unread:
                payloads.extend(source.payloads_at(rows.tolist()))
        alive, version_array = np.concatenate(live), np.concatenate(versions).astype(np.int64)
        if unread:  # the new segment only counts them
            payloads = [_NO_PAYLOAD] * len(alive)
        if job.permutation is None:
            return alive, version_array, payloads
        if not unread:
            payloads = [payloads[i] for i in job.permutation.tolist()]
        return alive[job.permutation], version_array[job.permutation], payloads


def _decoded(data: bytes, dim: int) -> np.ndarray:
    """Stored float32 bytes as ``(n, dim)`` rows."""
    return np.frombuffer(data, dtype=np.float32).reshape(-1, dim).copy()
