"""The RPCs served once their REST routes existed: aliases, named vectors, grouped
recommend, cluster info and full-storage snapshots. Against local mode where it serves
the call, else against the same route over REST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as q

from tests.grpc.conftest import GrpcServer

pytestmark = pytest.mark.integration

DIM = 4


@pytest.fixture(scope="module")
def remote(grpc_server: GrpcServer) -> Iterator[QdrantClient]:
    client = grpc_server.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def rest(grpc_server: GrpcServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=grpc_server.url, timeout=30) as client:
        yield client


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _create(client: QdrantClient, name: str) -> None:
    params = models.VectorParams(size=DIM, distance=models.Distance.DOT)
    client.create_collection(name, vectors_config={"v": params})


def _aliases(client: QdrantClient, names: set[str]) -> list[tuple[str, str]]:
    found = client.get_aliases().aliases
    return sorted((a.alias_name, a.collection_name) for a in found if a.collection_name in names)


def test_alias_changes_and_listings_match_local_mode(remote: QdrantClient) -> None:
    name, local = _name("aliased"), QdrantClient(":memory:")
    first, second = f"{name}_a", f"{name}_b"
    try:
        for client in (remote, local):
            _create(client, name)
            client.update_collection_aliases(
                [
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(collection_name=name, alias_name=first)
                    ),
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(collection_name=name, alias_name=second)
                    ),
                ]
            )
            client.update_collection_aliases(
                [
                    models.RenameAliasOperation(
                        rename_alias=models.RenameAlias(
                            old_alias_name=first, new_alias_name=f"{first}2"
                        )
                    ),
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=second)),
                ]
            )
        got, want = (_aliases(c, {name}) for c in (remote, local))
        assert got == want == [(f"{first}2", name)]
        listed = [
            [(a.alias_name, a.collection_name) for a in c.get_collection_aliases(name).aliases]
            for c in (remote, local)
        ]
        assert listed[0] == listed[1]
        assert remote.collection_exists(f"{first}2")
    finally:
        remote.delete_collection(name)
        local.close()


def test_alias_to_unknown_collection_is_not_found_and_changes_nothing(
    remote: QdrantClient,
) -> None:
    alias = _name("orphan")
    action = models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=_name("missing"), alias_name=alias)
    )
    with pytest.raises(grpc.RpcError) as raised:
        remote.update_collection_aliases([action])
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert alias not in {a.alias_name for a in remote.get_aliases().aliases}


def test_vector_names_are_created_and_deleted_as_in_local_mode(remote: QdrantClient) -> None:
    name, local = _name("named"), QdrantClient(":memory:")
    dense = models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=3, distance=models.Distance.COSINE)
    )
    try:
        for client in (remote, local):
            _create(client, name)
            client.create_vector_name(name, "extra", dense, wait=True)
            client.delete_vector_name(name, "v", wait=True)
        got, want = (c.get_collection(name).config.params.vectors for c in (remote, local))
        assert isinstance(got, dict) and isinstance(want, dict)
        assert {k: (p.size, p.distance) for k, p in got.items()} == {
            k: (p.size, p.distance) for k, p in want.items()
        }
        assert set(got) == {"extra"}
    finally:
        remote.delete_collection(name)
        local.close()


def test_creating_an_existing_vector_name_is_refused(remote: QdrantClient) -> None:
    name = _name("twice")
    dense = models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT)
    )
    try:
        _create(remote, name)
        with pytest.raises(grpc.RpcError) as raised:
            remote.create_vector_name(name, "v", dense, wait=True)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # REST: 400
        assert "already exists" in (raised.value.details() or "")
        vectors = remote.get_collection(name).config.params.vectors
        assert isinstance(vectors, dict) and vectors["v"].size == DIM
    finally:
        remote.delete_collection(name)


def _grouped_points() -> list[models.PointStruct]:
    rng = np.random.default_rng(5)
    return [
        models.PointStruct(
            id=i, vector={"v": rng.standard_normal(DIM).tolist()}, payload={"g": i % 5}
        )
        for i in range(60)
    ]


@pytest.fixture(scope="module")
def grouped(remote: QdrantClient) -> Iterator[str]:
    name = _name("recgroups")
    _create(remote, name)
    remote.upsert(name, _grouped_points(), wait=True)
    yield name
    remote.delete_collection(name)


def _recommend_groups(target: str, collection: str) -> q.RecommendGroupsResponse:
    with grpc.insecure_channel(target) as channel:
        reply: q.RecommendGroupsResponse = q.PointsStub(channel).RecommendGroups(
            q.RecommendPointGroups(
                collection_name=collection,
                positive=[q.PointId(num=1), q.PointId(num=7)],
                negative=[q.PointId(num=2)],
                using="v",
                group_by="g",
                limit=3,
                group_size=2,
            )
        )
    return reply


def test_recommend_groups_match_local_modes_recommend_query_groups(
    grpc_server: GrpcServer, grouped: str
) -> None:
    """qdrant-client 1.20 has no ``recommend_groups``; local mode's grouped recommend
    query (same default strategy, ``average_vector``) is the legacy call's meaning."""
    local = QdrantClient(":memory:")
    try:
        _create(local, grouped)
        local.upsert(grouped, _grouped_points(), wait=True)
        query = models.RecommendQuery(
            recommend=models.RecommendInput(positive=[1, 7], negative=[2])
        )
        want = local.query_points_groups(
            grouped, query=query, using="v", group_by="g", limit=3, group_size=2
        )
    finally:
        local.close()
    reply = _recommend_groups(grpc_server.target, grouped)
    got = [(g.id.unsigned_value, [h.id.num for h in g.hits]) for g in reply.result.groups]
    assert got == [(g.id, [h.id for h in g.hits]) for g in want.groups]


def test_recommend_groups_equals_the_rest_route(
    grpc_server: GrpcServer, rest: httpx.Client, grouped: str
) -> None:
    reply = _recommend_groups(grpc_server.target, grouped)
    body = {
        "positive": [1, 7],
        "negative": [2],
        "using": "v",
        "group_by": "g",
        "limit": 3,
        "group_size": 2,
    }
    answer = rest.post(f"/collections/{grouped}/points/recommend/groups", json=body)
    assert answer.status_code == 200, answer.text
    want = [
        (group["id"], [(hit["id"], round(hit["score"], 4)) for hit in group["hits"]])
        for group in answer.json()["result"]["groups"]
    ]
    got = [
        (group.id.unsigned_value, [(hit.id.num, round(hit.score, 4)) for hit in group.hits])
        for group in reply.result.groups
    ]
    assert len(got) == 3
    assert got == want


def test_collection_cluster_info_equals_the_rest_route(
    remote: QdrantClient, rest: httpx.Client, grouped: str
) -> None:
    info = remote.collection_cluster_info(grouped)
    answer = rest.get(f"/collections/{grouped}/cluster")
    assert answer.status_code == 200, answer.text
    want = models.CollectionClusterInfo.model_validate(answer.json()["result"])
    # a repeated protobuf field cannot be absent: REST's omitted list reads back empty
    assert info.model_dump() == want.model_dump() | {
        "resharding_operations": want.resharding_operations or []
    }
    assert sum(s.points_count for s in info.local_shards) == 60


def _snapshot_names(described: list[Any]) -> set[str]:
    return {d.name if hasattr(d, "name") else d["name"] for d in described}


def test_full_snapshots_are_created_listed_and_deleted(
    remote: QdrantClient, rest: httpx.Client, grouped: str
) -> None:
    created = remote.create_full_snapshot(wait=True)
    assert created is not None
    listed = remote.list_full_snapshots()
    assert created.name in _snapshot_names(listed)
    assert _snapshot_names(listed) == _snapshot_names(rest.get("/snapshots").json()["result"])
    assert remote.delete_full_snapshot(created.name, wait=True)
    assert created.name not in _snapshot_names(remote.list_full_snapshots())
    with pytest.raises(grpc.RpcError) as raised:
        remote.delete_full_snapshot(created.name, wait=True)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_vector_name_message_without_a_config_is_invalid_argument(
    grpc_server: GrpcServer, grouped: str
) -> None:
    with grpc.insecure_channel(grpc_server.target) as channel:
        stub = q.PointsStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateVectorName(
                q.CreateVectorNameRequest(collection_name=grouped, vector_name="x")
            )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dense_config" in (raised.value.details() or "")
