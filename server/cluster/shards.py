"""Sharded collections, independent of the transport that reaches the shards.

A collection created with ``shard_number: N`` is split into N shards. Each shard is
a ``ShardServer``: a plain ``Engine`` on its own data folder holding one collection
of the same name and config, so a shard that restarts reopens itself from disk.
``ShardedCollection`` is the fan-out: writes by id go to the shard that owns each
id (a stable hash), filter writes and reads go to every shard, and results are
merged here. A ``ShardGroup`` carries the calls: ``LocalShardGroup`` runs them in
this process (tests, no Ray), ``server/cluster/ray_shards.py`` runs each shard as a
Ray actor.

Shard calls are typed: ``on_collection(Collection.count, flt)`` names the method
itself, so mypy checks it and its arguments, and a renamed method fails there.

Folder layout (``key`` is a fresh id per created collection, so a collection created
again under an old name never finds the old shards' data)::

    <data_dir>/collections/<name>/sharded.json             config and key (server/catalog.py)
    <data_dir>/shards/<key>/<i>/collections/<name>/...     shard i, a plain engine folder
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import numpy as np

from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.facets import FacetValue, check_facet_key
from server.engine.filters import Filter
from server.engine.limits import EngineLimits, check_result_budget, result_bytes
from server.engine.ordering import OrderBy
from server.engine.payload import JsonPath, PayloadSelector
from server.engine.point_ids import PointId, point_id_sort_key, point_id_to_text
from server.engine.protocols import CollectionHandle, JobWire
from server.engine.query import run_queries
from server.engine.requests import PointsSelection, Query, SearchSpec, VectorSelector
from server.engine.results import (
    CollectionInfo,
    QueryResult,
    Record,
    ScoredPoint,
    ScrollPage,
    SegmentInfo,
    ShardStatus,
    VectorMemory,
)
from server.engine.sparse_vector import SparseRows, SparseVector
from server.engine.vectors import (
    check_vector_names,
    merge_vector_updates,
    point_vectors,
    prepare_matrix,
    prepare_sets,
    sparse_name,
    vector_name,
)
from server.errors import PointNotFound
from server.storage.snapshot_bundles import write_bundle
from server.storage.snapshots import SnapshotDescription

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class ShardCall(Generic[T]):
    """One call to run on one shard: a method of the shard's ``Collection`` or (with
    ``on_server``) of its ``ShardServer``. Made by ``on_collection`` / ``on_server``,
    which take the method itself (pickled by reference), so mypy checks the name, the
    arguments and the result type."""

    method: Callable[..., T]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    on_server: bool = False

    def run(self, server: ShardServer) -> T:
        target: Any = server if self.on_server else server.collection()
        return self.method(target, *self.args, **self.kwargs)


def _search_with_plans(
    collection: Collection, specs: list[SearchSpec]
) -> tuple[list[list[ScoredPoint]], list[list[dict[str, Any]]]]:
    """A shard's search and the plans it chose: a remote shard fills its own copy of
    each spec's ``explain``, so the plans travel back with the hits."""
    fresh = [dataclasses.replace(s, explain=None if s.explain is None else []) for s in specs]
    return collection.search(fresh), [spec.explain or [] for spec in fresh]


def on_collection(
    method: Callable[Concatenate[Collection, P], T], *args: P.args, **kwargs: P.kwargs
) -> ShardCall[T]:
    """``method`` of the shard's collection, e.g. ``on_collection(Collection.count, flt)``."""
    return ShardCall(method, args, kwargs)


def on_server(
    method: Callable[Concatenate[ShardServer, P], T], *args: P.args, **kwargs: P.kwargs
) -> ShardCall[T]:
    """``method`` of the shard server itself (its jobs, config, folder)."""
    return ShardCall(method, args, kwargs, on_server=True)


_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(SearchSpec) if f.name != "vector")


@dataclass(frozen=True, slots=True)
class SearchBatch:
    """A batch of dense searches in wire form: the query vectors as one matrix and each
    distinct set of the other parameters once. Pickling a hundred ``SearchSpec`` objects
    cost more than a shard's graph search of them (bench/bench_cluster.py); a batch
    from one request shares its parameters, so it packs into one spec and a matrix."""

    templates: list[SearchSpec]
    template_of: list[int]
    vectors: np.ndarray

    @classmethod
    def pack(cls, specs: Sequence[SearchSpec]) -> SearchBatch | None:
        """None when the vectors do not stack (multi-vectors, mixed dimensions)."""
        vectors = [s.vector for s in specs if isinstance(s.vector, np.ndarray)]
        if not specs or len(vectors) < len(specs) or any(v.ndim != 1 for v in vectors):
            return None  # sparse or multi-vector queries travel as specs
        if len({v.shape[0] for v in vectors}) != 1:
            return None
        templates: list[SearchSpec] = []
        template_of: list[int] = []
        for spec in specs:
            last = templates[-1] if templates else None
            if last is None or any(
                getattr(spec, f) is not getattr(last, f) and getattr(spec, f) != getattr(last, f)
                for f in _SPEC_FIELDS
            ):
                templates.append(dataclasses.replace(spec, vector=vectors[0][:0]))
            template_of.append(len(templates) - 1)
        return cls(templates, template_of, np.stack(vectors))

    def unpack(self) -> list[SearchSpec]:
        return [
            dataclasses.replace(self.templates[t], vector=self.vectors[i])
            for i, t in enumerate(self.template_of)
        ]


class ShardGroup(Protocol):
    """The N shards of one collection, reached through some transport."""

    @property
    def shard_count(self) -> int: ...

    def call(self, calls: Mapping[int, ShardCall[T]]) -> dict[int, T]:
        """Run each shard's call (in parallel where the transport can) and return
        every result by shard number; a shard's domain error is raised unchanged."""
        ...

    def close(self) -> None:
        """Close every shard's engine and let the shards go (their data stays)."""
        ...


def shard_folder(base: Path, shard: int) -> Path:
    """Shard ``shard``'s engine folder under the collection's shard folder ``base``."""
    return base / str(shard)


def shard_of(point_id: PointId, shard_count: int) -> int:
    """The shard that owns ``point_id``: stable across processes and restarts (unlike
    ``hash``) and spread evenly even when ids share a stride."""
    digest = hashlib.blake2b(point_id_to_text(point_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shard_count


def group_by_shard(ids: Sequence[PointId], shard_count: int) -> dict[int, list[int]]:
    """Positions in ``ids`` grouped by owning shard, in input order."""
    groups: dict[int, list[int]] = {}
    for position, point_id in enumerate(ids):
        groups.setdefault(shard_of(point_id, shard_count), []).append(position)
    return groups


def merge_hits(
    answers: Sequence[list[ScoredPoint]], limit: int, offset: int, higher_is_better: bool
) -> list[ScoredPoint]:
    """One query's global page from each shard's top ``offset + limit``; ties are
    broken by point id so the order does not depend on which shard answered first."""
    hits = [hit for answer in answers for hit in answer]
    sign = -1.0 if higher_is_better else 1.0
    hits.sort(key=lambda hit: (sign * hit.score, point_id_sort_key(hit.id)))
    return hits[offset : offset + limit]


def merge_scroll(pages: Sequence[list[Record]], limit: int) -> ScrollPage:
    """Merge per-shard pages of up to ``limit + 1`` records (each in id order): if any
    shard had more than ``limit`` matches, the merged list does too, so the
    ``limit + 1``-th record is the next page's offset."""
    records = sorted((r for page in pages for r in page), key=lambda r: point_id_sort_key(r.id))
    next_offset = records[limit].id if len(records) > limit else None
    return ScrollPage(records[:limit], next_offset)


def merge_ordered(pages: Sequence[ScrollPage], order: OrderBy, limit: int) -> ScrollPage:
    """Merge per-shard ``order_by`` pages (each the shard's first ``limit``) by value
    in the page's direction, ties by id ascending: the single-node order."""
    pairs = [
        (value, record)
        for page in pages
        for record, value in zip(page.records, page.order_values or [], strict=True)
    ]
    pairs.sort(key=lambda p: point_id_sort_key(p[1].id))
    pairs.sort(key=lambda p: p[0], reverse=order.descending)  # stable: ties keep id order
    kept = pairs[:limit]
    return ScrollPage([record for _, record in kept], None, [value for value, _ in kept])


class ShardServer:
    """One shard: an engine on its own folder holding one collection. Opening it
    again on the same folder (a restarted actor) finds every acknowledged write."""

    def __init__(
        self, folder: str, name: str, config: dict[str, Any], idle_seal_s: float = 0.0
    ) -> None:
        self.name = name
        self.folder = Path(folder)
        self._closed = False
        self._busy_s = 0.0
        self.engine = Engine(self.folder, idle_seal_s)
        if not self.engine.exists(name):
            self.engine.create(name, CollectionConfig.model_validate(config))

    def call(self, call: ShardCall[T]) -> T:
        started = time.thread_time()
        try:
            return call.run(self)
        finally:
            self._busy_s += time.thread_time() - started

    def search_batch(self, batch: SearchBatch) -> list[list[ScoredPoint]]:
        return self.collection().search(batch.unpack())

    def busy_seconds(self) -> float:
        """CPU time spent inside calls so far (the calling thread's; an actor's faiss runs
        on that one thread): the shard's own work, without the transport or waiting for
        a core (bench/bench_cluster.py splits the fan-out's cost with it)."""
        return self._busy_s

    def update_config(self, config: CollectionConfig) -> int:
        """A config change, and the rebuilds it needs queued, as the HTTP route does."""
        collection = self.collection()
        op_id = collection.update_config(config)
        collection.config_changed()
        return op_id

    def config(self) -> CollectionConfig:
        return self.collection().config

    def write_snapshot(self, folder: str) -> SnapshotDescription:
        return self.collection().write_snapshot(Path(folder))

    def recover_snapshot(self, archive: str, checksum: str | None) -> None:
        self.engine.recover(self.name, Path(archive), checksum)

    def collection(self) -> Collection:
        """The shard's collection: a single-node one (the shard engine has no sharding)."""
        collection = self.engine.get(self.name)
        assert isinstance(collection, Collection)  # narrows the type; see the docstring
        return collection

    def jobs(self) -> list[JobWire]:
        return self.engine.jobs_for(self.name)

    def job(self, job_id: str, cancel: bool = False) -> JobWire | None:
        return self.engine.job(job_id, cancel)

    def wait_idle(self, timeout: float) -> bool:
        return self.engine.worker.wait_idle(self.name, timeout)

    def pid(self) -> int:
        """The process serving this shard (changes when a Ray actor restarts)."""
        return os.getpid()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.close()

    def destroy(self) -> None:
        """Close the engine and remove this shard's folder (the collection was deleted)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class LocalShardGroup:
    """All shards in this process, called one after another (no Ray)."""

    def __init__(
        self, base: Path, name: str, config: CollectionConfig, idle_seal_s: float = 0.0
    ) -> None:
        dump = config.model_dump(mode="json")
        self.servers = [
            ShardServer(str(shard_folder(base, i)), name, dump, idle_seal_s)
            for i in range(config.shard_number)
        ]

    @property
    def shard_count(self) -> int:
        return len(self.servers)

    def call(self, calls: Mapping[int, ShardCall[T]]) -> dict[int, T]:
        return {i: self.servers[i].call(c) for i, c in calls.items()}

    def close(self) -> None:
        for server in self.servers:
            server.close()


DEEP_PAGE = 10_000
"""``offset + limit`` past which a sharded search asks the point count first."""


class ShardedCollection:
    """``Collection``'s public methods that the HTTP API uses, answered by fanning out
    over a ``ShardGroup`` (a snapshot is a bundle of shard snapshots). Cross-shard writes
    are not atomic: input is validated here first so a bad batch fails everywhere,
    but a shard that fails mid-write leaves the others written (as in Qdrant). The
    returned operation id is the largest of the shards' ids."""

    def __init__(self, name: str, config: CollectionConfig, group: ShardGroup) -> None:
        self.name = name
        self._config = config
        self.group = group
        self.on_config: Callable[[CollectionConfig], None] = lambda config: None
        """Persists a changed config (the catalog writes its marker file)."""
        self.on_drop: Callable[[], None] = lambda: None
        """Removes what is left of the shards on this machine (the catalog's key folder)."""
        self.result_budget = EngineLimits().max_request_result_bytes

    @property
    def config(self) -> CollectionConfig:
        return self._config

    def close(self) -> None:
        self.group.close()

    def drop(self) -> None:
        """Delete every shard's data (each shard removes its own folder, on its own
        node), then let the shards go."""
        try:
            self._everywhere(on_server(ShardServer.destroy))
        finally:
            self.group.close()
            self.on_drop()

    @property
    def supports_snapshots(self) -> bool:
        return True

    def write_snapshot(self, folder: Path) -> SnapshotDescription:
        """A bundle of every shard's snapshot (``storage/snapshots.py``) with this
        collection's config. Each shard writes its own archive into a folder beside
        ``folder``: shards must share this machine's disk (in-process or a local Ray)."""
        work = folder / f".tmp-{uuid.uuid4().hex}"
        try:
            parts = []
            for shard in self.shard_ids():
                written = self.write_shard_snapshot(shard, work / str(shard))
                parts.append((f"shards/{shard}.snapshot", work / str(shard) / written.name))
            meta = {"collection": self.name, "config": self._config.model_dump(mode="json")}
            return write_bundle(folder, self.name, "sharded", parts, meta)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def shard_ids(self) -> list[int]:
        return list(range(self.group.shard_count))

    def write_shard_snapshot(self, shard: int, folder: Path) -> SnapshotDescription:
        """Shard ``shard``'s own snapshot, written by the shard into ``folder``."""
        return self.group.call({shard: on_server(ShardServer.write_snapshot, str(folder))})[shard]

    def recover_shard(self, shard: int, archive: Path, checksum: str | None) -> None:
        """Replace shard ``shard``'s data with a single-node snapshot (verified and
        swapped in by the shard's engine, as a collection recovery is). The points in
        it should be the ones this shard owns (``shard_of``), as in Qdrant."""
        call = on_server(ShardServer.recover_snapshot, str(archive), checksum)
        self.group.call({shard: call})

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
        self.check_vectors(list(vectors))
        calls = {
            shard: on_collection(
                Collection.upsert,
                [ids[i] for i in rows],
                [vectors[i] for i in rows],
                [payloads[i] for i in rows],
                update_mode=update_mode,
                update_filter=update_filter,
            )
            for shard, rows in group_by_shard(ids, self.group.shard_count).items()
        }
        return int(max(self.group.call(calls).values(), default=0))

    def delete(self, selection: PointsSelection) -> int:
        return self._write(selection, lambda s: on_collection(Collection.delete, s))

    def set_payload(
        self, values: dict[str, Any], selection: PointsSelection, key: str | None
    ) -> int:
        return self._write_payload(
            selection, lambda s: on_collection(Collection.set_payload, values, s, key)
        )

    def overwrite_payload(self, values: dict[str, Any], selection: PointsSelection) -> int:
        return self._write_payload(
            selection, lambda s: on_collection(Collection.overwrite_payload, values, s)
        )

    def delete_payload(self, keys: list[str], selection: PointsSelection) -> int:
        return self._write_payload(
            selection, lambda s: on_collection(Collection.delete_payload, keys, s)
        )

    def clear_payload(self, selection: PointsSelection) -> int:
        return self._write_payload(selection, lambda s: on_collection(Collection.clear_payload, s))

    def update_vectors(
        self, points: Sequence[tuple[PointId, Any]], update_filter: Filter | None = None
    ) -> int:
        """Validated here, then each shard updates its own points; an id no shard
        holds is a 404 after the others are written, as on one node."""
        ids, raws = merge_vector_updates(points)
        self.check_vectors(raws)
        found = self._existing(ids)
        kept = [i for i, point_id in enumerate(ids) if point_id in found]
        calls = {
            shard: on_collection(
                Collection.update_vectors,
                [(ids[kept[j]], raws[kept[j]]) for j in rows],
                update_filter,
            )
            for shard, rows in group_by_shard(
                [ids[i] for i in kept], self.group.shard_count
            ).items()
        }
        return self._written(calls, next((i for i in ids if i not in found), None))

    def delete_vectors(self, selection: PointsSelection, names: Sequence[str]) -> int:
        check_vector_names(self._config, names)
        if selection.ids is None:
            return self._write(
                selection, lambda s: on_collection(Collection.delete_vectors, s, names)
            )
        ids = list(dict.fromkeys(selection.ids))
        found = self._existing(ids)
        kept = [i for i in ids if i in found]
        calls = {
            shard: on_collection(
                Collection.delete_vectors, PointsSelection(ids=[kept[j] for j in rows]), names
            )
            for shard, rows in group_by_shard(kept, self.group.shard_count).items()
        }
        return self._written(calls, next((i for i in ids if i not in found), None))

    def _existing(self, ids: Sequence[PointId]) -> set[PointId]:
        return {r.id for r in self.retrieve(ids, PayloadSelector.of("none"), False)}

    def _written(self, calls: Mapping[int, ShardCall[int]], missing: PointId | None) -> int:
        """Run the shard writes; then a 404 for ``missing``, else the operation id."""
        op_id = int(max(self.group.call(calls).values(), default=0))
        if missing is not None:
            raise PointNotFound(missing)
        return op_id

    def _write_payload(
        self, selection: PointsSelection, make: Callable[[PointsSelection], ShardCall[int]]
    ) -> int:
        """Payload writes by id need every id to exist (404 otherwise, as on one node);
        checked on all shards first so a missing id changes nothing anywhere."""
        if selection.ids is not None:
            unique = list(dict.fromkeys(selection.ids))
            found = {r.id for r in self.retrieve(unique, PayloadSelector.of("none"), False)}
            missing = next((i for i in unique if i not in found), None)
            if missing is not None:
                raise PointNotFound(missing)
        return self._write(selection, make)

    def bulk_upsert(
        self,
        ids: Sequence[PointId],
        matrices: dict[str, np.ndarray | SparseRows],
        payloads: Sequence[dict[str, Any]],
    ) -> int:
        """Each shard gets its rows of every matrix (one numpy take per shard)."""
        calls = {}
        for shard, rows in group_by_shard(ids, self.group.shard_count).items():
            take = np.asarray(rows, dtype=np.int64)
            calls[shard] = on_collection(
                Collection.bulk_upsert,
                [ids[i] for i in rows],
                {
                    name: m.take(take) if isinstance(m, SparseRows) else m[take]
                    for name, m in matrices.items()
                },
                [payloads[i] for i in rows],
            )
        return int(max(self.group.call(calls).values(), default=0))

    @contextmanager
    def bulk_loading(self) -> Iterator[None]:
        """Shards index at their usual threshold during a bulk load: a held-open
        context cannot span remote calls (``Collection.bulk_loading`` says why it
        helps a single node)."""
        yield

    def update_config(self, config: CollectionConfig) -> int:
        """Config changes (payload indexes included) apply to every shard, each queueing
        the rebuilds it needs in its own build worker."""
        op_id = self._everywhere(on_server(ShardServer.update_config, config))
        self._set_config(config)
        return int(max(op_id.values()))

    def config_changed(self) -> None:
        """Nothing here: each shard queued its rebuilds in ``update_config``."""

    def replace_vectors(self, config: CollectionConfig) -> int:
        """Every shard adds or removes the vector on its own points."""
        op_ids = self._everywhere(on_collection(Collection.replace_vectors, config))
        self._set_config(config)
        return int(max(op_ids.values()))

    def _set_config(self, config: CollectionConfig) -> None:
        self.on_config(config)
        self._config = config

    def add_training_queries(
        self, using: str | None, raw: list[Any], replace: bool, retrain: bool
    ) -> dict[str, Any]:
        """Every shard trains its own LeanVec on its own points, so each gets the sample."""
        answers = self._everywhere(
            on_collection(Collection.add_training_queries, using, raw, replace, retrain)
        )
        if retrain:
            self._set_config(self.group.call({0: on_server(ShardServer.config)})[0])
        return answers[0]

    def training_query_counts(self, names: list[str]) -> dict[str, Any]:
        """Shard 0's counts: given samples are the same on every shard."""
        return self.group.call({0: on_collection(Collection.training_query_counts, names)})[0]

    def _write(
        self, selection: PointsSelection, make: Callable[[PointsSelection], ShardCall[int]]
    ) -> int:
        if selection.ids is None:
            return int(max(self._everywhere(make(selection)).values()))
        ids = selection.ids
        groups = group_by_shard(ids, self.group.shard_count) or {0: []}
        calls = {
            shard: make(PointsSelection(ids=[ids[i] for i in rows], filter=selection.filter))
            for shard, rows in groups.items()
        }
        return int(max(self.group.call(calls).values()))

    def _everywhere(self, call: ShardCall[T]) -> dict[int, T]:
        return self.group.call(dict.fromkeys(range(self.group.shard_count), call))

    # -- reads -----------------------------------------------------------

    def count(self, flt: Filter | None) -> int:
        return sum(self._everywhere(on_collection(Collection.count, flt)).values())

    def facet_counts(self, key: str, flt: Filter | None) -> dict[FacetValue, int]:
        """Every shard's full counts, summed (a shard's top values alone would not be)."""
        check_facet_key(self._config, key)
        totals: Counter[FacetValue] = Counter()
        for counts in self._everywhere(on_collection(Collection.facet_counts, key, flt)).values():
            totals.update(counts)
        return dict(totals)

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        groups = group_by_shard(ids, self.group.shard_count)
        calls = {
            shard: on_collection(
                Collection.retrieve, [ids[i] for i in rows], with_payload, with_vector
            )
            for shard, rows in groups.items()
        }
        found = {r.id: r for records in self.group.call(calls).values() for r in records}
        return [found[i] for i in ids if i in found]

    def payload_values(self, ids: Sequence[PointId], path: JsonPath) -> list[list[Any]]:
        """Each shard reads the values of the points it owns, in one call."""
        groups = group_by_shard(ids, self.group.shard_count)
        calls = {
            shard: on_collection(Collection.payload_values, [ids[i] for i in rows], path)
            for shard, rows in groups.items()
        }
        answers = self.group.call(calls)
        out: list[list[Any]] = [[] for _ in ids]
        for shard, rows in groups.items():
            for row, values in zip(rows, answers[shard], strict=True):
                out[row] = values
        return out

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
        call = on_collection(Collection.scroll, flt, limit + 1, offset, with_payload, with_vector)
        pages = [page.records for page in self._everywhere(call).values()]
        return merge_scroll(pages, limit)

    def scroll_ordered(
        self,
        flt: Filter | None,
        order: OrderBy,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> ScrollPage:
        """Every shard's first ``limit`` by ``order``, merged (``merge_ordered``)."""
        call = on_collection(
            Collection.scroll_ordered, flt, order, limit, with_payload, with_vector
        )
        return merge_ordered(list(self._everywhere(call).values()), order, limit)

    def sample(
        self,
        flt: Filter | None,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> list[Record]:
        """Uniform over the whole collection: how many points each shard gives is drawn
        from the shards' matching counts (hypergeometric), then each shard samples."""
        counts = self._everywhere(on_collection(Collection.count, flt))
        shards = sorted(counts)
        sizes = np.array([counts[s] for s in shards], dtype=np.int64)
        rng = np.random.default_rng()
        wanted = rng.multivariate_hypergeometric(sizes, min(limit, int(sizes.sum())))
        calls = {
            shard: on_collection(Collection.sample, flt, int(n), with_payload, with_vector)
            for shard, n in zip(shards, wanted.tolist(), strict=True)
            if n > 0
        }
        found = [record for records in self.group.call(calls).values() for record in records]
        return [found[i] for i in rng.permutation(len(found))]

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray | SparseVector:
        """The stored vector of a point, asked of the shard that owns it."""
        shard = shard_of(point_id, self.group.shard_count)
        return self.group.call({shard: on_collection(Collection.query_vector_of, point_id, using)})[
            shard
        ]

    def query_vectors_of(
        self, point_ids: Sequence[PointId], using: str
    ) -> list[np.ndarray | SparseVector]:
        """The stored vectors of several points, one call per shard that owns some."""
        owned: dict[int, list[int]] = {}
        for i, point_id in enumerate(point_ids):
            owned.setdefault(shard_of(point_id, self.group.shard_count), []).append(i)
        calls = {
            shard: on_collection(Collection.query_vectors_of, [point_ids[i] for i in at], using)
            for shard, at in owned.items()
        }
        answers = self.group.call(calls)
        found: dict[int, np.ndarray | SparseVector] = {}
        for shard, at in owned.items():
            found.update(zip(at, answers[shard], strict=True))
        return [found[i] for i in range(len(point_ids))]

    def vector_name(self, using: str | None) -> str:
        return vector_name(self._config, using)

    def sparse_name(self, using: str | None) -> str:
        return sparse_name(self._config, using)

    def sparse_idf(self, name: str) -> bool:
        return self._config.sparse_vectors[name].idf

    def sparse_statistics(self, name: str, terms: np.ndarray) -> tuple[np.ndarray, int]:
        """Summed over the shards, so ``idf`` is the whole collection's."""
        call = on_collection(Collection.sparse_statistics, name, terms)
        df, total = np.zeros(len(terms), dtype=np.int64), 0
        for shard_df, shard_total in self._everywhere(call).values():
            df, total = df + shard_df, total + shard_total
        return df, total

    def check_vectors(self, raws: list[Any]) -> None:
        point_vectors(raws, self._config)

    def prepare_query(self, raw: Any, using: str | None) -> tuple[str, np.ndarray]:
        name = vector_name(self._config, using)
        return name, self.prepare_queries(name, [raw])[0]

    def prepare_queries(self, name: str, raws: list[Any]) -> np.ndarray | list[np.ndarray]:
        """Queries are validated and prepared here, once, not by every shard."""
        params = self._config.vectors[name]
        if params.is_multi:
            return prepare_sets(
                raws, params, self._config.multivector, "query multi-vector", query=True
            )
        return prepare_matrix(raws, params, "query vector", query=True)

    def query(self, queries: Sequence[Query]) -> list[QueryResult]:
        return run_queries(self, queries)

    def check_result_budget(self, specs: Sequence[SearchSpec]) -> None:
        """Each shard returns up to ``limit + offset`` hits per search; the shards'
        point counts are asked only when that bound alone is over budget."""
        unbounded = [sys.maxsize] * self.group.shard_count
        if result_bytes(specs, unbounded) <= self.result_budget:
            return
        counts = list(self._everywhere(on_collection(Collection.count, None)).values())
        check_result_budget(specs, counts, self.result_budget)

    def search_alike(
        self, spec: SearchSpec, vectors: np.ndarray | list[np.ndarray]
    ) -> list[Sequence[ScoredPoint]]:
        """A spec per vector, searched as any batch: every shard answers them together."""
        return list(self.search([spec.for_vector(vector) for vector in vectors]))

    def search(self, specs: Sequence[SearchSpec]) -> list[list[ScoredPoint]]:
        """Every shard answers the batch for ``offset + limit`` hits per query; the page
        is cut after merging; ``explain`` gathers each shard's plans. For deep pages
        the point count is asked first: a search whose offset is past every point is
        answered here, and none asks a shard for more hits than there are points."""
        total = self._points_if_deep(specs)
        results: list[list[ScoredPoint]] = [[] for _ in specs]
        asked = [q for q, spec in enumerate(specs) if total is None or spec.offset < total]
        if not asked:
            return results
        wide = [
            dataclasses.replace(
                specs[q], limit=min(specs[q].offset + specs[q].limit, total or sys.maxsize),
                offset=0, explain=None if specs[q].explain is None else [],
            )
            for q in asked
        ]  # fmt: skip
        if any(spec.explain is not None for spec in wide):
            return self._search_explained(specs, asked, wide, results)
        packed = SearchBatch.pack(wide)
        call = (
            on_collection(Collection.search, wide)
            if packed is None
            else on_server(ShardServer.search_batch, packed)
        )
        answers = list(self._everywhere(call).values())
        for i, q in enumerate(asked):
            spec = specs[q]
            metric = self._config.distance_of(spec.using)
            higher_is_better = spec.custom is not None or metric.higher_is_better
            hits = [answer[i] for answer in answers]
            results[q] = merge_hits(hits, spec.limit, spec.offset, higher_is_better)
        return results

    def _search_explained(
        self,
        specs: Sequence[SearchSpec],
        asked: list[int],
        wide: list[SearchSpec],
        results: list[list[ScoredPoint]],
    ) -> list[list[ScoredPoint]]:
        """``search`` of a batch with ``explain``: each shard's plans are added to the
        spec's, tagged with the shard."""
        answers = self._everywhere(on_collection(_search_with_plans, wide))
        shards = sorted(answers)
        for i, q in enumerate(asked):
            spec = specs[q]
            higher_is_better = self._config.distance_of(spec.using).higher_is_better
            hits = [answers[shard][0][i] for shard in shards]
            results[q] = merge_hits(hits, spec.limit, spec.offset, higher_is_better)
            if spec.explain is not None:
                for shard in shards:
                    spec.explain.extend({"shard": shard} | plan for plan in answers[shard][1][i])
        return results

    def _points_if_deep(self, specs: Sequence[SearchSpec]) -> int | None:
        """The collection's point count when a search pages deep (None otherwise: one
        more round trip is not worth it for ordinary pages)."""
        if all(spec.offset + spec.limit <= DEEP_PAGE for spec in specs):
            return None
        return self.count(None)

    # -- status and background work ------------------------------------------

    def info(self) -> CollectionInfo:
        """Qdrant's collection info summed over the shards; the worst shard's status is
        the collection's. Quiver extension: ``shards``, each shard's own status and count."""
        infos = self._everywhere(on_collection(Collection.info))
        ordered = [infos[i] for i in range(self.group.shard_count)]
        worst = max(ordered, key=lambda info: STATUS_RANK.get(info.status, 0))
        schema = {
            key: dataclasses.replace(
                field, points=sum(i.payload_schema[key].points for i in ordered)
            )
            for key, field in ordered[0].payload_schema.items()
        }
        return CollectionInfo(
            status=worst.status,
            optimizer_status=worst.optimizer_status,
            indexed_vectors_count=sum(i.indexed_vectors_count for i in ordered),
            points_count=sum(i.points_count for i in ordered),
            segments_count=sum(i.segments_count for i in ordered),
            config=self._config,
            payload_schema=schema,
            vectors_memory=_summed_memory([i.vectors_memory for i in ordered]),
            shards=[ShardStatus(n, i.status, i.points_count) for n, i in enumerate(ordered)],
        )

    def segments_info(self) -> list[SegmentInfo]:
        answers = self._everywhere(on_collection(Collection.segments_info))
        return [dataclasses.replace(seg, shard=n) for n in sorted(answers) for seg in answers[n]]

    def jobs(self) -> list[JobWire]:
        """Build jobs of every shard, each tagged with its ``shard`` number."""
        answers = self._everywhere(on_server(ShardServer.jobs))
        return [job | {"shard": n} for n in sorted(answers) for job in answers[n]]

    def job(self, job_id: str, cancel: bool = False) -> JobWire | None:
        """The job with this id on whichever shard runs it (ids are random, unique);
        with ``cancel``, cancelled first."""
        answers = self._everywhere(on_server(ShardServer.job, job_id, cancel))
        return next(
            (job | {"shard": n} for n in sorted(answers) if (job := answers[n]) is not None),
            None,
        )


STATUS_RANK = {"green": 0, "grey": 1, "yellow": 2, "red": 3}
"""Which shard status speaks for the collection: the worst one."""


def _summed_memory(per_shard: list[dict[str, VectorMemory]]) -> dict[str, VectorMemory]:
    """Index memory per vector name added over shards, per-vector bytes recomputed."""
    out: dict[str, VectorMemory] = {}
    for name in per_shard[0]:
        points = sum(m[name].points for m in per_shard)
        totals: dict[str, int] = {}
        for memory in per_shard:
            for part, size in memory[name].bytes.items():
                totals[part] = totals.get(part, 0) + size
        per_vector = {k: round(v / points, 1) for k, v in totals.items()} if points else {}
        out[name] = VectorMemory(points, totals, per_vector)
    return out


def _check_collection_handle(collection: ShardedCollection) -> CollectionHandle:
    return collection  # mypy checks ShardedCollection against the collection interface here
