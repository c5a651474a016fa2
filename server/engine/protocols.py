"""The collection interface: what the API and the engine ask of any collection.

``Collection`` (one node, ``engine/collection/``) and ``ShardedCollection``
(``cluster/shards.py``) both implement ``CollectionHandle``; mypy checks each against
it (``_check_*`` at the end of their modules). The API imports only this Protocol,
never the cluster; the engine opens sharded collections through ``ShardedOpener``,
which ``server/catalog.py`` provides, so ``engine/`` never imports ``cluster/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from server.engine.config import CollectionConfig
from server.engine.facets import FacetValue
from server.engine.filters import Filter
from server.engine.ordering import OrderBy
from server.engine.payload import JsonPath, PayloadSelector
from server.engine.point_ids import PointId
from server.engine.requests import PointsSelection, Query, SearchSpec, VectorSelector
from server.engine.results import (
    CollectionInfo,
    QueryResult,
    Record,
    ScoredPoint,
    ScrollPage,
    SegmentInfo,
)
from server.engine.sparse_vector import SparseRows, SparseVector
from server.storage.snapshots import SnapshotDescription

JobWire = dict[str, Any]
"""A build job as ``GET /jobs/{id}`` shows it (``build_worker.Job.to_wire``; sharded
collections add the job's ``shard``)."""


class CollectionHandle(Protocol):
    """A named collection, on one node or split into shards; every method is thread-safe."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> CollectionConfig: ...

    result_budget: int
    """Bytes of search results one request may hold (the engine sets it from
    ``QUIVER_MAX_REQUEST_RESULT_BYTES``)."""

    # -- writes (each returns the operation id) ------------------------------

    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Sequence[Any],
        payloads: Sequence[dict[str, Any] | None],
        *,
        update_mode: str = "upsert",
        update_filter: Filter | None = None,
    ) -> int: ...

    def bulk_upsert(
        self,
        ids: Sequence[PointId],
        matrices: dict[str, np.ndarray | SparseRows],
        payloads: Sequence[dict[str, Any]],
    ) -> int: ...

    def bulk_loading(self) -> AbstractContextManager[None]:
        """Held around a bulk load (a single node seals less often meanwhile)."""
        ...

    def delete(self, selection: PointsSelection) -> int: ...

    def set_payload(
        self, values: dict[str, Any], selection: PointsSelection, key: str | None
    ) -> int: ...

    def overwrite_payload(self, values: dict[str, Any], selection: PointsSelection) -> int: ...

    def delete_payload(self, keys: list[str], selection: PointsSelection) -> int: ...

    def clear_payload(self, selection: PointsSelection) -> int: ...

    def update_vectors(
        self, points: Sequence[tuple[PointId, Any]], update_filter: Filter | None = None
    ) -> int:
        """Set the named vectors each ``(id, vector field)`` gives; the points' other
        vectors and payloads stay (Qdrant's ``UpdateVectors``)."""
        ...

    def delete_vectors(self, selection: PointsSelection, names: Sequence[str]) -> int:
        """Remove the named vectors from the selected points (``DeleteVectors``)."""
        ...

    def update_config(self, config: CollectionConfig) -> int: ...

    def config_changed(self) -> None:
        """After a config update from the API: queue the rebuilds it needs."""
        ...

    def replace_vectors(self, config: CollectionConfig) -> int:
        """Store ``config``, which adds or removes a named vector; a removed name's
        stored vectors are deleted, and the segments follow the new names."""
        ...

    def add_training_queries(
        self, using: str | None, raw: list[Any], replace: bool, retrain: bool
    ) -> dict[str, Any]: ...

    def training_query_counts(self, names: list[str]) -> dict[str, Any]: ...

    # -- reads -----------------------------------------------------------

    def count(self, flt: Filter | None) -> int: ...

    def facet_counts(self, key: str, flt: Filter | None) -> dict[FacetValue, int]:
        """Per value of the indexed ``key``: the points matching ``flt`` holding it
        (``engine/facets.py``); a 400 when ``key`` has no facet-able index."""
        ...

    def retrieve(
        self, ids: Sequence[PointId], with_payload: PayloadSelector, with_vector: VectorSelector
    ) -> list[Record]: ...

    def payload_values(self, ids: Sequence[PointId], path: JsonPath) -> list[list[Any]]:
        """Per point of ``ids``: its values under ``path`` (none when it is gone), read
        in one call (grouped search's ``group_by`` key of every candidate)."""
        ...

    def get_point(self, point_id: PointId) -> Record: ...

    def scroll(
        self,
        flt: Filter | None,
        limit: int,
        offset: PointId | None,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> ScrollPage: ...

    def scroll_ordered(
        self,
        flt: Filter | None,
        order: OrderBy,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> ScrollPage:
        """The first ``limit`` matching points by a payload value (``ordering.py``)."""
        ...

    def sample(
        self,
        flt: Filter | None,
        limit: int,
        with_payload: PayloadSelector,
        with_vector: VectorSelector,
    ) -> list[Record]:
        """Up to ``limit`` matching points drawn at random."""
        ...

    def query(self, queries: Sequence[Query]) -> list[QueryResult]:
        """Answer a batch of queries (``engine/query.py``), one result per query."""
        ...

    def search(self, specs: Sequence[SearchSpec]) -> list[list[ScoredPoint]]: ...

    def search_alike(
        self, spec: SearchSpec, vectors: np.ndarray | list[np.ndarray]
    ) -> list[Sequence[ScoredPoint]]:
        """``search`` of ``spec`` with each of ``vectors`` (``prepare_queries``'s) in
        turn as its vector: one answer per vector."""
        ...

    def check_result_budget(self, specs: Sequence[SearchSpec]) -> None:
        """Refuse (400) a batch whose results would outgrow ``result_budget``; what each
        part (segment or shard) holds caps what it can return."""
        ...

    def query_vector_of(self, point_id: PointId, using: str) -> np.ndarray | SparseVector: ...

    def query_vectors_of(
        self, point_ids: Sequence[PointId], using: str
    ) -> list[np.ndarray | SparseVector]:
        """``query_vector_of`` for several points in one call (a query's examples)."""
        ...

    def sparse_name(self, using: str | None) -> str:
        """``using`` as a configured sparse vector name, or a 400."""
        ...

    def sparse_idf(self, name: str) -> bool:
        """Whether sparse queries on ``name`` are weighted by ``idf``."""
        ...

    def sparse_statistics(self, name: str, terms: np.ndarray) -> tuple[np.ndarray, int]:
        """Per term: live points holding it under sparse ``name``; and how many live
        points hold that vector at all (``idf``'s document count)."""
        ...

    def vector_name(self, using: str | None) -> str: ...

    def check_vectors(self, raws: list[Any]) -> None: ...

    def prepare_query(self, raw: Any, using: str | None) -> tuple[str, np.ndarray]: ...

    def prepare_queries(self, name: str, raws: list[Any]) -> np.ndarray | list[np.ndarray]: ...

    # -- status, background work, lifecycle ------------------------------------

    def info(self) -> CollectionInfo: ...

    def segments_info(self) -> list[SegmentInfo]: ...

    def jobs(self) -> list[JobWire]: ...

    def job(self, job_id: str, cancel: bool = False) -> JobWire | None:
        """This collection's job with that id (cancelled first with ``cancel``), else None."""
        ...

    @property
    def supports_snapshots(self) -> bool: ...

    def write_snapshot(self, folder: Path) -> SnapshotDescription: ...

    def close(self) -> None:
        """Let go of the collection; its data stays."""
        ...

    def drop(self) -> None:
        """The collection is deleted: close it and remove data the engine's folder
        does not hold (a sharded collection's shards)."""
        ...


class JobBoard(Protocol):
    """A single-node collection's view of the build worker that runs its jobs (the
    engine gives it one, ``engine.py``), so the collection never imports the worker."""

    def jobs(self) -> list[JobWire]: ...

    def job(self, job_id: str, cancel: bool) -> JobWire | None: ...

    def config_changed(self) -> None: ...


class ShardedOpener(Protocol):
    """Decides which collections are split into shards and opens those
    (``server/catalog.py``); the engine keeps the collection folders and asks it first."""

    def create(self, name: str, temp: Path, config: CollectionConfig) -> CollectionHandle | None:
        """A new sharded collection, its marker written into the empty folder ``temp``
        (the engine then renames it to ``temp.parent / name``); None when ``config``
        makes a single-node collection."""
        ...

    def open(self, name: str, folder: Path) -> CollectionHandle | None:
        """The sharded collection in ``folder``, or None when it holds a single-node one."""
        ...

    def clean_orphans(self, collections_root: Path) -> None:
        """Remove shard data no collection folder names (a create or delete cut short)."""
        ...
