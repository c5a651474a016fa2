"""Sharded collections, independent of the transport that reaches the shards.

A collection created with ``shard_number: N`` is split into N shards. Each shard is
a ``ShardServer``: a plain ``Engine`` on its own data folder holding one collection
of the same name and config, so a shard that restarts reopens itself from disk.
``ShardedCollection`` is the fan-out: writes by id go to the shard that owns each
id (a stable hash), filter writes and reads go to every shard, and results are
merged here. A ``ShardGroup`` carries the calls: ``LocalShardGroup`` runs them in
this process (tests, no Ray), ``server/cluster/ray_shards.py`` runs each shard as a
Ray actor.

Folder layout of one shard::

    <data_dir>/shards/<name>/<i>/collections/<name>/points.sqlite
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from server.engine.collection import PointsSelection, SearchSpec, VectorSelector
from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.filters import Filter
from server.engine.payload import PayloadSelector
from server.engine.point_ids import PointId, point_id_sort_key, point_id_to_text
from server.engine.vectors import point_vectors, prepare_matrix, prepare_sets, vector_name
from server.errors import PointNotFound

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ShardCall:
    """One ``Collection`` method call to run on one shard."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class ShardGroup(Protocol):
    """The N shards of one collection, reached through some transport."""

    @property
    def shard_count(self) -> int: ...

    def call(self, calls: Mapping[int, ShardCall]) -> dict[int, Any]:
        """Run each shard's call (in parallel where the transport can) and return
        every result by shard number; a shard's domain error is raised unchanged."""
        ...

    def jobs(self) -> list[list[dict[str, Any]]]:
        """Each shard's build jobs in the jobs API's wire form."""
        ...

    def close(self) -> None: ...


def shard_folder(data_dir: Path, name: str, shard: int) -> Path:
    return data_dir / "shards" / name / str(shard)


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
    answers: Sequence[list[Record]], limit: int, offset: int, higher_is_better: bool
) -> list[Record]:
    """One query's global page from each shard's top ``offset + limit``; ties are
    broken by point id so the order does not depend on which shard answered first."""
    hits = [hit for answer in answers for hit in answer]
    sign = -1.0 if higher_is_better else 1.0
    hits.sort(key=lambda hit: (sign * hit["score"], point_id_sort_key(hit["id"])))
    return hits[offset : offset + limit]


def merge_scroll(pages: Sequence[list[Record]], limit: int) -> tuple[list[Record], PointId | None]:
    """Merge per-shard pages of up to ``limit + 1`` records (each in id order): if any
    shard had more than ``limit`` matches, the merged list does too, so the
    ``limit + 1``-th record is the next page's offset."""
    records = sorted((r for page in pages for r in page), key=lambda r: point_id_sort_key(r["id"]))
    next_offset = records[limit]["id"] if len(records) > limit else None
    return records[:limit], next_offset


class ShardServer:
    """One shard: an engine on its own folder holding one collection. Opening it
    again on the same folder (a restarted actor) finds every acknowledged write."""

    def __init__(self, folder: str, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.engine = Engine(Path(folder))
        if not self.engine.exists(name):
            self.engine.create(name, CollectionConfig.model_validate(config))

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return getattr(self.engine.get(self.name), method)(*args, **kwargs)

    def jobs(self) -> list[dict[str, Any]]:
        return [job.to_wire() for job in self.engine.worker.jobs_for(self.name)]

    def wait_idle(self, timeout: float) -> bool:
        return self.engine.worker.wait_idle(self.name, timeout)

    def pid(self) -> int:
        """The process serving this shard (changes when a Ray actor restarts)."""
        return os.getpid()

    def close(self) -> None:
        self.engine.close()


class LocalShardGroup:
    """All shards in this process, called one after another (no Ray)."""

    def __init__(self, data_dir: Path, name: str, config: CollectionConfig) -> None:
        dump = config.model_dump(mode="json")
        self.servers = [
            ShardServer(str(shard_folder(data_dir, name, i)), name, dump)
            for i in range(config.shard_number)
        ]

    @property
    def shard_count(self) -> int:
        return len(self.servers)

    def call(self, calls: Mapping[int, ShardCall]) -> dict[int, Any]:
        return {i: self.servers[i].call(c.method, c.args, c.kwargs) for i, c in calls.items()}

    def jobs(self) -> list[list[dict[str, Any]]]:
        return [server.jobs() for server in self.servers]

    def close(self) -> None:
        for server in self.servers:
            server.close()


class ShardedCollection:
    """Most of ``Collection``'s public methods (not yet: ``info``, ``segments_info``,
    snapshots, training queries), answered by fanning out over a ``ShardGroup``.
    Cross-shard writes
    are not atomic: input is validated here first so a bad batch fails everywhere,
    but a shard that fails mid-write leaves the others written (as in Qdrant). The
    returned operation id is the largest of the shards' ids."""

    def __init__(self, name: str, config: CollectionConfig, group: ShardGroup) -> None:
        self.name = name
        self._config = config
        self.group = group

    @property
    def config(self) -> CollectionConfig:
        return self._config

    def close(self) -> None:
        self.group.close()

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
        options = {"update_mode": update_mode, "update_filter": update_filter}
        calls = {
            shard: ShardCall(
                "upsert",
                ([ids[i] for i in rows], [vectors[i] for i in rows], [payloads[i] for i in rows]),
                options,
            )
            for shard, rows in group_by_shard(ids, self.group.shard_count).items()
        }
        return int(max(self.group.call(calls).values(), default=0))

    def delete(self, selection: PointsSelection) -> int:
        return self._write(selection, lambda s: ShardCall("delete", (s,)))

    def set_payload(
        self, values: dict[str, Any], selection: PointsSelection, key: str | None
    ) -> int:
        return self._write(selection, lambda s: ShardCall("set_payload", (values, s, key)))

    def overwrite_payload(self, values: dict[str, Any], selection: PointsSelection) -> int:
        return self._write(selection, lambda s: ShardCall("overwrite_payload", (values, s)))

    def delete_payload(self, keys: list[str], selection: PointsSelection) -> int:
        return self._write(selection, lambda s: ShardCall("delete_payload", (keys, s)))

    def clear_payload(self, selection: PointsSelection) -> int:
        return self._write(selection, lambda s: ShardCall("clear_payload", (s,)))

    def update_config(self, config: CollectionConfig) -> int:
        """Config changes (payload indexes included) apply to every shard."""
        op_id = self._everywhere(ShardCall("update_config", (config,)))
        self._config = config
        return int(max(op_id.values()))

    def _write(
        self, selection: PointsSelection, make: Callable[[PointsSelection], ShardCall]
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

    def _everywhere(self, call: ShardCall) -> dict[int, Any]:
        return self.group.call(dict.fromkeys(range(self.group.shard_count), call))

    # -- reads -----------------------------------------------------------

    def count(self, flt: Filter | None) -> int:
        return sum(self._everywhere(ShardCall("count", (flt,))).values())

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]:
        groups = group_by_shard(ids, self.group.shard_count)
        calls = {
            shard: ShardCall("retrieve", ([ids[i] for i in rows], with_payload, with_vector))
            for shard, rows in groups.items()
        }
        found = {r["id"]: r for records in self.group.call(calls).values() for r in records}
        return [found[i] for i in ids if i in found]

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
    ) -> tuple[list[Record], PointId | None]:
        call = ShardCall("scroll", (flt, limit + 1, offset, with_payload, with_vector))
        pages = [records for records, _next in self._everywhere(call).values()]
        return merge_scroll(pages, limit)

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray:
        """The stored vector of a point, asked of the shard that owns it."""
        shard = shard_of(point_id, self.group.shard_count)
        vector: np.ndarray = self.group.call(
            {shard: ShardCall("query_vector_of", (point_id, using))}
        )[shard]
        return vector

    def vector_name(self, using: str | None) -> str:
        return vector_name(self._config, using)

    def check_vectors(self, raws: list[Any]) -> None:
        point_vectors(raws, self._config)

    def prepare_query(self, raw: Any, using: str | None) -> tuple[str, np.ndarray]:
        name = vector_name(self._config, using)
        return name, self.prepare_queries(name, [raw])[0]

    def prepare_queries(self, name: str, raws: list[Any]) -> np.ndarray | list[np.ndarray]:
        """Queries are validated and prepared here, once, not by every shard."""
        params = self._config.vectors[name]
        if params.is_multi:
            return prepare_sets(raws, params, self._config.multivector, "query multi-vector")
        return prepare_matrix(raws, params, "query vector")

    def search(self, specs: Sequence[SearchSpec]) -> list[list[Record]]:
        """Every shard answers the whole batch for ``offset + limit`` hits per query;
        the page is cut after merging. ``explain`` is not collected from shards."""
        wide = [
            dataclasses.replace(s, limit=s.offset + s.limit, offset=0, explain=None) for s in specs
        ]
        answers = list(self._everywhere(ShardCall("search", (wide,))).values())
        return [
            merge_hits(
                [answer[q] for answer in answers],
                spec.limit,
                spec.offset,
                self._config.vectors[spec.using].distance.higher_is_better,
            )
            for q, spec in enumerate(specs)
        ]

    def jobs(self) -> list[dict[str, Any]]:
        """Build jobs of every shard, each tagged with its ``shard`` number."""
        return [
            job | {"shard": shard} for shard, jobs in enumerate(self.group.jobs()) for job in jobs
        ]


def open_sharded_collection(
    data_dir: Path, name: str, config: CollectionConfig, ray_address: str | None
) -> ShardedCollection:
    """The factory the engine uses for ``shard_number > 1``: shards in this process
    when ``ray_address`` is None, else Ray actors (``"local"``: a loopback Ray on
    this machine). Ray is imported only here, so the single-node path never needs it.
    Created on first open, reopened from the shard folders afterwards."""
    if ray_address is None:
        return ShardedCollection(name, config, LocalShardGroup(data_dir, name, config))
    from server.cluster.ray_shards import RayShardGroup, connect

    connect(ray_address)
    return ShardedCollection(name, config, RayShardGroup(data_dir, name, config))
