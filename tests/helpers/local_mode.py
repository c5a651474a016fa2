"""Twin collections for the suites that compare Quiver with qdrant-client's local mode.

A ``TwinCollection`` is one collection's definition in Qdrant's wire shapes (vector and
sparse vector params, points, payload indexes); ``twins`` creates it in
``QdrantClient(":memory:")`` and, through the in-process app, in Quiver twice: on one
node and with ``SHARDS`` shards. ``HYBRID`` is the collection of every vector kind (a
Cosine, a Dot and a Euclid vector, a MaxSim multi-vector, a plain and an idf sparse
vector) that the multi-stage and by-example suites query; ``vector_for`` draws a query
or example vector for one of its names, and ``quiver_answer`` is Quiver's answer to a
``/points/query`` body as (id, score, payload) triples.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api, make_client
from tests.helpers.sharded import SHARDS

Twins = tuple[Api, QdrantClient]
Answer = list[tuple[Any, float, Any]]


@dataclass(frozen=True)
class TwinCollection:
    """``name`` (single node) and ``sharded`` in Quiver, ``name`` in local mode; points
    go in ``batch`` at a time (several batches: several segments), ``options`` are
    Quiver-only collection settings (``optimizers_config``)."""

    name: str
    sharded: str
    vectors: dict[str, dict[str, Any]]
    sparse: dict[str, dict[str, Any]]
    points: list[dict[str, Any]]
    indexes: dict[str, str] = field(default_factory=dict)
    batch: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@contextmanager
def twins(folder: Path, collection: TwinCollection) -> Iterator[Twins]:
    """The collection in local mode and in a Quiver app over ``folder``."""
    local = QdrantClient(":memory:")
    local.create_collection(
        collection.name,
        vectors_config={n: models.VectorParams(**p) for n, p in collection.vectors.items()},
        sparse_vectors_config={
            n: models.SparseVectorParams(**p) for n, p in collection.sparse.items()
        },
    )
    local.upsert(collection.name, [models.PointStruct(**point) for point in collection.points])
    with make_client(folder) as client:
        api = Api(client)
        for name, extra in ((collection.name, {}), (collection.sharded, {"shard_number": SHARDS})):
            _create(api, name, collection, extra)
        yield api, local


def _create(api: Api, name: str, collection: TwinCollection, extra: dict[str, Any]) -> None:
    config = {"vectors": collection.vectors, "sparse_vectors": collection.sparse}
    api.result("PUT", f"/collections/{name}", config | collection.options | extra)
    for key, kind in collection.indexes.items():
        index = {"field_name": key, "field_schema": kind}
        api.result("PUT", f"/collections/{name}/index?wait=true", index)
    batch = collection.batch or len(collection.points)
    for start in range(0, len(collection.points), batch):
        body = {"points": collection.points[start : start + batch]}
        api.result("PUT", f"/collections/{name}/points?wait=true", body)


# --- the collection of every vector kind ---------------------------------------------

NAME = "hybrid"
SHARDED = "hybrid_sharded"
POINTS = 60
DIMS = {"a": 4, "b": 3, "e": 3, "m": 2}
DISTANCES = {"a": "Cosine", "b": "Dot", "e": "Euclid", "m": "Dot"}
SPARSE: dict[str, dict[str, Any]] = {"s": {}, "si": {"modifier": "idf"}}
VOCABULARY = 12
COLORS = ["red", "green", "blue"]
FILTERS: list[dict[str, Any]] = [
    {"must": [{"key": "color", "match": {"value": "red"}}]},
    {"must_not": [{"key": "price", "range": {"lt": 5}}]},
    {
        "should": [
            {"key": "color", "match": {"value": "blue"}},
            {"key": "price", "range": {"gt": 15}},
        ]
    },
]
TOLERANCE = 2e-4


def _hybrid_points(rng: np.random.Generator) -> list[dict[str, Any]]:
    points = []
    for i in range(POINTS):
        vector: dict[str, Any] = {
            name: rng.normal(size=dim).round(4).tolist()
            for name, dim in DIMS.items()
            if name != "m"
        }
        vector["m"] = rng.normal(size=(int(rng.integers(1, 4)), DIMS["m"])).round(4).tolist()
        for name in SPARSE:
            terms = rng.choice(VOCABULARY, size=int(rng.integers(1, 5)), replace=False)
            values = rng.uniform(0.1, 2.0, size=len(terms)).round(3)
            vector[name] = {"indices": terms.tolist(), "values": values.tolist()}
        payload: dict[str, Any] = {
            "price": int(rng.integers(0, 21)),
            "color": COLORS[i % 3],
            "loc": {"lat": float(rng.uniform(-5, 5)), "lon": float(rng.uniform(-5, 5))},
            "ts": f"2024-0{1 + i % 9}-1{i % 10}T00:00:00Z",
        }
        if i % 4:
            payload["rating"] = float(rng.uniform(0, 5))
        points.append({"id": i, "vector": vector, "payload": payload})
    return points


HYBRID = TwinCollection(
    name=NAME,
    sharded=SHARDED,
    vectors={
        name: {"size": dim, "distance": DISTANCES[name]}
        | ({"multivector_config": {"comparator": "max_sim"}} if name == "m" else {})
        for name, dim in DIMS.items()
    },
    sparse=SPARSE,
    points=_hybrid_points(np.random.default_rng(7)),
)

coordinate = st.integers(0, 40).map(lambda x: (x - 20.5) / 10)  # never 0: no zero vectors
limits = st.sampled_from([8, 5, 12, 3, 1])  # Hypothesis favours the first


def vector_for(name: str) -> st.SearchStrategy[Any]:
    """A query vector for ``HYBRID``'s vector ``name`` (sparse terms may be unknown)."""
    if name in SPARSE:
        terms = st.lists(st.integers(0, VOCABULARY + 2), min_size=1, max_size=4, unique=True)
        return terms.flatmap(
            lambda t: st.lists(coordinate.map(abs), min_size=len(t), max_size=len(t)).map(
                lambda v: {"indices": t, "values": v}
            )
        )
    if name == "m":
        token = st.lists(coordinate, min_size=2, max_size=2)
        return st.lists(token, min_size=1, max_size=3)
    # no zero vector: every point would tie, and ties among search hits are not this test's
    return st.lists(coordinate, min_size=DIMS[name], max_size=DIMS[name])


def quiver_answer(api: Api, body: dict[str, Any], collection: str = NAME) -> Answer | None:
    """Quiver's ``/points/query`` answer as triples; None for a 400."""
    status, answer = api.post(f"/collections/{collection}/points/query", body)
    if status == 400:
        return None
    assert status == 200, answer
    return triples(answer["result"])


def triples(result: dict[str, Any]) -> Answer:
    return [(p["id"], p["score"], p["payload"]) for p in result["points"]]
