"""The distance matrix (``/points/search/matrix/pairs`` and ``/offsets``).

``sample`` matching points that store the vector are drawn at random, then each is
searched for its ``limit`` nearest among the *other* sampled points: all of them as
ONE batch of exact searches through the collection's search path (a ``has_id``
filter bounds every search to the sample, so a segment scores only those rows, and
a sharded collection fans the batch out once and merges), never one request per
point. Samples are listed in id order, as in Qdrant. Dense, multi- and sparse vectors
(a sparse one weighted by ``idf`` where its name asks, as any sparse query is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index.base import SearchParams
from server.engine.filters import Filter, HasId, HasVector
from server.engine.multistage import merge_filters
from server.engine.payload import PayloadSelector
from server.engine.point_ids import PointId, point_id_sort_key
from server.engine.query import weigh_sparse_queries
from server.engine.requests import SearchSpec
from server.engine.results import ScoredPoint
from server.engine.sparse_vector import SparseVector, parse_sparse
from server.errors import BadRequest

if TYPE_CHECKING:
    from server.engine.protocols import CollectionHandle

MAX_MATRIX_SAMPLE = 10_000
"""Points one matrix request may sample (each becomes one search of the batch)."""


@dataclass(frozen=True, slots=True)
class MatrixRequest:
    """Qdrant's ``SearchMatrixRequest``: how many points to sample, how many
    neighbours each, among which points (``filter``) and by which vector (``using``)."""

    sample: int = 10
    limit: int = 3
    filter: Filter | None = None
    using: str | None = None


@dataclass(frozen=True, slots=True)
class Matrix:
    """The sampled ids (id order) and, per sample, its nearest other samples."""

    ids: list[PointId]
    neighbours: list[list[ScoredPoint]]


def check(request: MatrixRequest) -> None:
    if not 0 <= request.sample <= MAX_MATRIX_SAMPLE:
        raise BadRequest(
            f"Wrong input: matrix `sample` must be between 0 and {MAX_MATRIX_SAMPLE}, "
            f"got {request.sample}"
        )
    if request.limit < 0:
        raise BadRequest(f"Wrong input: matrix `limit` must be >= 0, got {request.limit}")


def distance_matrix(collection: CollectionHandle, request: MatrixRequest) -> Matrix:
    """Sample, then one batched exact search of every sample against the others."""
    check(request)
    sparse = request.using is not None and request.using in collection.config.sparse_vectors
    name = (
        collection.sparse_name(request.using) if sparse else collection.vector_name(request.using)
    )
    with_vector = merge_filters(request.filter, Filter(must=(HasVector(name),)))
    records = collection.sample(with_vector, request.sample, PayloadSelector.of("none"), [name])
    if len(records) < 2:
        return Matrix([], [])
    records.sort(key=lambda record: point_id_sort_key(record.id))
    ids = [record.id for record in records]
    raws = [r.vector.get(name) if isinstance(r.vector, dict) else r.vector for r in records]
    vectors: Sequence[np.ndarray | SparseVector] = (
        [parse_sparse(raw, "stored sparse vector") for raw in raws]
        if sparse
        else list(collection.prepare_queries(name, raws))
    )
    among = merge_filters(request.filter, Filter(must=(HasId(frozenset(ids)),)))
    specs = [
        SearchSpec(
            using=name,
            vector=vector,
            limit=request.limit,
            filter=among,
            exclude_ids=[point_id],
            params=SearchParams(exact=True),
        )
        for point_id, vector in zip(ids, vectors, strict=True)
    ]
    weigh_sparse_queries(collection, specs)
    collection.check_result_budget(specs)
    return Matrix(ids, collection.search(specs))
