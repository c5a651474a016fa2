"""qdrant-client over REST against a real Quiver process, checked against its local mode
(``QdrantClient(":memory:")``): optional named vectors, ``update_vectors``,
``delete_vectors`` and ``batch_update_points``, including what a failure leaves behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

pytestmark = pytest.mark.integration

Clients = tuple[QdrantClient, QdrantClient]
_names = count()


@pytest.fixture(scope="module")
def clients(module_server_url: str) -> Iterator[Clients]:
    remote = QdrantClient(url=module_server_url, prefer_grpc=False, timeout=30)
    local = QdrantClient(":memory:")
    yield remote, local
    remote.close()
    local.close()


def _points() -> list[models.PointStruct]:
    sparse = models.SparseVector
    return [
        models.PointStruct(id=1, vector={"a": [1.0, 0.0], "b": [1.0, 2.0, 3.0]}, payload={"k": 1}),
        models.PointStruct(id=2, vector={"a": [0.0, 1.0]}, payload={"k": 2}),
        models.PointStruct(id=3, vector={"b": [2.0, 2.0, 2.0]}, payload={"k": 3}),
        models.PointStruct(id=4, vector={"s": sparse(indices=[7], values=[1.5])}, payload={"k": 4}),
        models.PointStruct(id=5, vector={}, payload={"k": 5}),
        models.PointStruct(id=6, vector={"a": [2.0, 2.0], "s": sparse(indices=[1], values=[0.5])}),
    ]


@pytest.fixture
def collection(clients: Clients) -> str:
    """The same fresh collection in both clients: dense ``a`` and ``b``, sparse ``s``."""
    name = f"vectors_{next(_names)}"
    for client in clients:
        client.create_collection(
            name,
            vectors_config={
                "a": models.VectorParams(size=2, distance=models.Distance.DOT),
                "b": models.VectorParams(size=3, distance=models.Distance.EUCLID),
            },
            sparse_vectors_config={"s": models.SparseVectorParams()},
        )
        client.upsert(name, _points(), wait=True)
    return name


def state(client: QdrantClient, name: str) -> list[tuple[Any, Any, Any]]:
    """Every point with its payload and vectors, in id order."""
    records, _ = client.scroll(name, limit=100, with_payload=True, with_vectors=True)
    out = []
    for record in records:
        vectors = {
            key: value.model_dump() if isinstance(value, models.SparseVector) else value
            for key, value in (record.vector or {}).items()
        }
        out.append((record.id, record.payload, vectors))
    return out


def same_outcome(clients: Clients, name: str, call: Callable[[QdrantClient], Any]) -> None:
    """``call`` fails in both clients or in neither, and leaves the same points."""
    failed = []
    for client in clients:
        try:
            call(client)
            failed.append(False)
        except Exception:  # UnexpectedResponse remotely, ValueError / KeyError locally
            failed.append(True)
    assert failed[0] == failed[1], failed
    assert state(clients[0], name) == state(clients[1], name)


def test_points_with_a_subset_of_named_vectors_read_back_the_same(
    clients: Clients, collection: str
) -> None:
    remote, local = clients
    assert state(remote, collection) == state(local, collection)
    for using, query in (("a", [1.0, 1.0]), ("b", [0.0, 0.0, 0.0])):
        hits = [
            [p.id for p in c.query_points(collection, query=query, using=using).points]
            for c in clients
        ]
        assert hits[0] == hits[1]


@pytest.mark.parametrize(
    "points",
    [
        [models.PointVectors(id=1, vector={"b": [5.0, 5.0, 5.0]})],
        [
            models.PointVectors(id=2, vector={"s": models.SparseVector(indices=[3], values=[2.0])}),
            models.PointVectors(id=5, vector={"a": [3.0, 4.0], "b": [0.0, 0.0, 1.0]}),
        ],
        [
            models.PointVectors(id=99, vector={"a": [1.0, 1.0]}),
            models.PointVectors(id=2, vector={"a": [8.0, 8.0]}),
        ],
        [
            models.PointVectors(id=2, vector={"a": [8.0, 8.0]}),
            models.PointVectors(id=1, vector={"a": [1.0]}),
        ],
        [models.PointVectors(id=2, vector={"zz": [8.0, 8.0]})],
        [],
    ],
    ids=["one", "several", "missing-id", "bad-dimension", "unknown-name", "empty"],
)
def test_update_vectors_matches_local_mode(
    clients: Clients, collection: str, points: list[models.PointVectors]
) -> None:
    same_outcome(clients, collection, lambda c: c.update_vectors(collection, points, wait=True))


def test_update_vectors_with_update_filter_matches_local_mode(
    clients: Clients, collection: str
) -> None:
    points = [models.PointVectors(id=i, vector={"a": [7.0, 7.0]}) for i in (1, 2, 3)]
    only = models.Filter(must=[models.FieldCondition(key="k", range=models.Range(gte=2))])
    same_outcome(
        clients,
        collection,
        lambda c: c.update_vectors(collection, points, update_filter=only, wait=True),
    )


@pytest.mark.parametrize(
    ("names", "selector"),
    [
        (["a"], models.PointIdsList(points=[1, 6])),
        (["a", "s"], models.PointIdsList(points=[6, 2])),
        (
            ["b"],
            models.FilterSelector(
                filter=models.Filter(must=[models.HasIdCondition(has_id=[1, 3])])
            ),
        ),
        (["a"], models.PointIdsList(points=[42, 2])),
        (["nope"], models.PointIdsList(points=[1])),
    ],
    ids=["ids", "two-names", "filter", "missing-id", "unknown-name"],
)
def test_delete_vectors_matches_local_mode(
    clients: Clients, collection: str, names: list[str], selector: Any
) -> None:
    same_outcome(
        clients, collection, lambda c: c.delete_vectors(collection, names, selector, wait=True)
    )


def _batches() -> dict[str, list[Any]]:
    upsert = models.UpsertOperation(
        upsert=models.PointsList(points=[models.PointStruct(id=10, vector={"a": [1.0, 1.0]})])
    )
    touch = models.SetPayloadOperation(
        set_payload=models.SetPayload(payload={"touched": True}, points=[1])
    )
    return {
        "every-kind": [
            upsert,
            models.UpsertOperation(
                upsert=models.PointsBatch(
                    batch=models.Batch(ids=[11], vectors={"b": [[3.0, 3.0, 3.0]]})
                )
            ),
            models.UpdateVectorsOperation(
                update_vectors=models.UpdateVectors(
                    points=[models.PointVectors(id=10, vector={"b": [0.0, 1.0, 0.0]})]
                )
            ),
            touch,
            models.OverwritePayloadOperation(
                overwrite_payload=models.SetPayload(payload={"z": 3}, points=[2])
            ),
            models.DeletePayloadOperation(
                delete_payload=models.DeletePayload(keys=["k"], points=[3])
            ),
            models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[4])),
            models.DeleteVectorsOperation(
                delete_vectors=models.DeleteVectors(points=[10], vector=["a"])
            ),
            models.DeleteOperation(delete=models.PointIdsList(points=[5])),
        ],
        "fails-midway": [
            upsert,
            touch,
            models.UpdateVectorsOperation(
                update_vectors=models.UpdateVectors(
                    points=[models.PointVectors(id=77, vector={"a": [1.0, 1.0]})]
                )
            ),
            models.DeleteOperation(delete=models.PointIdsList(points=[1])),
        ],
        "unknown-name-to-delete": [
            touch,
            models.DeleteVectorsOperation(
                delete_vectors=models.DeleteVectors(points=[2], vector=["nope"])
            ),
        ],
        "malformed-vector": [
            upsert,
            touch,
            models.UpdateVectorsOperation(
                update_vectors=models.UpdateVectors(
                    points=[models.PointVectors(id=1, vector={"a": [1.0, 2.0, 3.0]})]
                )
            ),
        ],
    }


@pytest.mark.parametrize("kind", list(_batches()))
def test_batch_update_points_matches_local_mode(
    clients: Clients, collection: str, kind: str
) -> None:
    operations = _batches()[kind]
    same_outcome(
        clients, collection, lambda c: c.batch_update_points(collection, operations, wait=True)
    )


@pytest.mark.parametrize(
    ("vector_name", "config"),
    [
        (
            "c",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT)
            ),
        ),
        (
            "t",
            models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)
            ),
        ),
        (
            "a",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT)
            ),
        ),
        (
            "a",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=5, distance=models.Distance.DOT)
            ),
        ),
        (
            "s",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT)
            ),
        ),
    ],
    ids=["dense", "sparse", "same-again", "other-schema", "other-kind"],
)
def test_create_vector_name_matches_local_mode(
    clients: Clients, collection: str, vector_name: str, config: Any
) -> None:
    same_outcome(
        clients, collection, lambda c: c.create_vector_name(collection, vector_name, config)
    )
    points = [models.PointVectors(id=5, vector={vector_name: [1.0, 2.0]})]
    if vector_name == "t":
        points = [
            models.PointVectors(id=5, vector={"t": models.SparseVector(indices=[1], values=[2.0])})
        ]
    same_outcome(clients, collection, lambda c: c.update_vectors(collection, points, wait=True))


@pytest.mark.parametrize("vector_name", ["a", "s", "never"])
def test_delete_vector_name_matches_local_mode(
    clients: Clients, collection: str, vector_name: str
) -> None:
    same_outcome(clients, collection, lambda c: c.delete_vector_name(collection, vector_name))
    infos = [c.get_collection(collection).config.params for c in clients]
    assert set(infos[0].vectors) == set(infos[1].vectors)  # type: ignore[arg-type]
    assert set(infos[0].sparse_vectors or {}) == set(infos[1].sparse_vectors or {})
