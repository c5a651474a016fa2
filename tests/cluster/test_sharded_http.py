"""Sharded collections through the HTTP API, with the shards inside the server and as
actors of a local Ray (``QUIVER_RAY_ADDRESS=local``): the same requests against a
single-node collection and a ``shard_number: 3`` one in the same server give the same
answers (ids, scores, payloads, counts, pages), before and after writes, and the
sharded one keeps its points over a restart, shows its shards' build jobs, takes bulk
loads, and leaves no shard folder behind when deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.sharded import COLORS, DIM, FILTERS, SHARDS


@pytest.fixture(
    scope="module", params=["in-process", pytest.param("ray", marks=pytest.mark.cluster)]
)
def server_settings(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings for the server under test; for Ray, the package's loopback Ray (the
    server's ``connect("local")`` finds it started)."""
    if request.param == "in-process":
        yield {}
        return
    request.getfixturevalue("local_ray")
    yield {"ray_address": "local", "ray_shard_cpus": 0.25}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def api(data_dir: Path, server_settings: dict[str, Any]) -> Iterator[Api]:
    with make_client(data_dir, **server_settings) as client:
        yield Api(client)


def create(api: Api, name: str, shards: int) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Cosine"},
        "shard_number": shards,
        "optimizers_config": {"indexing_threshold": 60},
    }
    api.result("PUT", f"/collections/{name}", body)
    api.result(
        "PUT",
        f"/collections/{name}/index?wait=true",
        {"field_name": "color", "field_schema": "keyword"},
    )


def make_points(count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    ids: list[Any] = list(range(count - 20))
    ids += [str(uuid.UUID(int=int(rng.integers(1, 2**62)))) for _ in range(20)]
    return [
        {
            "id": point_id,
            "vector": rng.normal(size=DIM).round(4).tolist(),
            "payload": {"color": COLORS[i % 3], "n": i % 50},
        }
        for i, point_id in enumerate(ids)
    ]


def load(api: Api, name: str, points: list[dict[str, Any]]) -> None:
    for start in range(0, len(points), 100):
        batch = {"points": points[start : start + 100]}
        api.result("PUT", f"/collections/{name}/points?wait=true", batch)


def both(api: Api, method: str, path: str, body: Any = None) -> tuple[Any, Any]:
    return (
        api.result(method, path.format(name="single"), body),
        api.result(method, path.format(name="sharded"), body),
    )


def assert_same_points(single: list[dict[str, Any]], sharded: list[dict[str, Any]]) -> None:
    assert [p["id"] for p in sharded] == [p["id"] for p in single]
    assert [p.get("payload") for p in sharded] == [p.get("payload") for p in single]
    scores = [p["score"] for p in single if "score" in p]
    assert [p["score"] for p in sharded if "score" in p] == pytest.approx(scores, abs=1e-5)


def compare_reads(api: Api, queries: np.ndarray) -> None:
    hits = 0
    for raw in FILTERS:
        for offset in (0, 7):
            for query in queries:
                body = {"query": query.tolist(), "limit": 10, "offset": offset, "filter": raw,
                        "with_payload": True}  # fmt: skip
                single, sharded = both(api, "POST", "/collections/{name}/points/query", body)
                hits += len(single["points"])
                assert_same_points(single["points"], sharded["points"])
        single, sharded = both(api, "POST", "/collections/{name}/points/count", {"filter": raw})
        assert single == sharded
        scroll = {"filter": raw, "limit": 37, "with_payload": True}
        single, sharded = both(api, "POST", "/collections/{name}/points/scroll", scroll)
        assert_same_points(single["points"], sharded["points"])
        assert single["next_page_offset"] == sharded["next_page_offset"]
    assert hits > len(FILTERS) * 2 * len(queries) * 5
    batch = {"searches": [{"query": q.tolist(), "limit": 5} for q in queries]}
    single, sharded = both(api, "POST", "/collections/{name}/points/query/batch", batch)
    for want, got in zip(single, sharded, strict=True):
        assert_same_points(want["points"], got["points"])
    by_id = {"query": 17, "limit": 10, "with_payload": True}
    single, sharded = both(api, "POST", "/collections/{name}/points/query", by_id)
    assert_same_points(single["points"], sharded["points"])
    retrieve = {"ids": [5, 299_999, 17, 3, 250], "with_payload": True, "with_vector": True}
    single, sharded = both(api, "POST", "/collections/{name}/points", retrieve)
    assert single == sharded


def test_http_answers_match_single_node_before_and_after_writes(api: Api) -> None:
    create(api, "single", 1)
    create(api, "sharded", SHARDS)
    points = make_points(300, seed=3)
    load(api, "single", points)
    load(api, "sharded", points)
    queries = np.random.default_rng(5).normal(size=(3, DIM))
    compare_reads(api, queries)

    both(api, "POST", "/collections/{name}/points/payload?wait=true",
         {"payload": {"flag": True}, "filter": FILTERS[2]})  # fmt: skip
    both(api, "POST", "/collections/{name}/points/delete?wait=true", {"points": [0, 1, 2, 150]})
    both(api, "POST", "/collections/{name}/points/delete?wait=true", {"filter": FILTERS[1]})
    compare_reads(api, queries)
    assert (
        api.result("POST", "/collections/sharded/points/count", {})["count"] == 198
    )  # 100 red, and ids 1 and 2


def test_sharded_info_jobs_and_restart(data_dir: Path, server_settings: dict[str, Any]) -> None:
    points = make_points(300, seed=4)
    with make_client(data_dir, **server_settings) as client:
        api = Api(client)
        create(api, "sharded", SHARDS)
        load(api, "sharded", points)
        info = wait_green(api, "sharded")
        assert info["points_count"] == 300
        assert info["config"]["params"]["shard_number"] == SHARDS
        assert sum(s["points_count"] for s in info["shards"]) == 300
        jobs = api.result("GET", "/collections/sharded/jobs")
        assert jobs and {job["shard"] for job in jobs} <= set(range(SHARDS))
        assert all(job["state"] == "done" for job in jobs)
        one = api.result("GET", f"/jobs/{jobs[0]['id']}")
        assert one["id"] == jobs[0]["id"] and one["shard"] == jobs[0]["shard"]
        segments = api.result("GET", "/collections/sharded/segments")
        assert {s["shard"] for s in segments} == set(range(SHARDS))
        query = {"query": points[42]["vector"], "limit": 3}
        before = api.result("POST", "/collections/sharded/points/query", query)
    with make_client(data_dir, **server_settings) as client:
        api = Api(client)
        info = api.result("GET", "/collections/sharded")
        assert info["points_count"] == 300
        assert api.result("POST", "/collections/sharded/points/query", query) == before
        assert api.result("GET", "/collections/sharded/jobs") == jobs


def test_bulk_load_into_a_sharded_collection(api: Api, data_dir: Path) -> None:
    create(api, "sharded", SHARDS)
    points = make_points(250, seed=6)
    body = b"".join(orjson.dumps(p) + b"\n" for p in points)
    client: TestClient = api.client
    response = client.post(
        "/collections/sharded/points/bulk",
        content=body,
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert api.result("POST", "/collections/sharded/points/count", {})["count"] == 250
    record = api.result("GET", f"/collections/sharded/points/{points[7]['id']}")
    assert record["payload"] == points[7]["payload"]


def test_deleting_a_sharded_collection_removes_its_shards(api: Api, data_dir: Path) -> None:
    create(api, "sharded", SHARDS)
    load(api, "sharded", make_points(100, seed=8))
    shard_folders = list((data_dir / "shards").iterdir())
    assert len(shard_folders) == 1 and len(list(shard_folders[0].iterdir())) == SHARDS
    assert api.result("DELETE", "/collections/sharded") is True
    assert list((data_dir / "shards").iterdir()) == []
    create(api, "sharded", SHARDS)
    assert api.result("POST", "/collections/sharded/points/count", {})["count"] == 0


def test_a_sharded_snapshot_round_trips_and_the_cluster_shows_each_shard(api: Api) -> None:
    """In-process and Ray shards alike: every shard writes its own snapshot into the
    bundle, and recovery gives every shard its points back (the shard folders are on
    this machine; see server/engine/snapshot_ops.py)."""
    create(api, "sharded", SHARDS)
    load(api, "sharded", make_points(120, seed=9))
    wait_green(api, "sharded")
    scroll = {"limit": 1000, "with_payload": True, "with_vector": True}
    before = api.result("POST", "/collections/sharded/points/scroll", scroll)["points"]
    cluster = api.result("GET", "/collections/sharded/cluster")
    assert [s["shard_id"] for s in cluster["local_shards"]] == list(range(SHARDS))
    assert sum(s["points_count"] for s in cluster["local_shards"]) == 120
    snapshot = api.result("POST", "/collections/sharded/snapshots")
    api.result("DELETE", "/collections/sharded")
    location = {"location": snapshot["name"]}
    assert api.result("PUT", "/collections/sharded/snapshots/recover", location) is True
    assert api.result("POST", "/collections/sharded/points/scroll", scroll)["points"] == before
    assert api.result("GET", "/collections/sharded/cluster") == cluster
