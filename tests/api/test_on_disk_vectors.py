"""``on_disk: true`` dense vectors: a sealed graph keeps its rows in the segment's
memory-mapped file (reported as ``vectors_mapped``, not process memory), answers as
the same vectors held in memory do, survives a restart, and a PATCH moves them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api, make_client, upsert_vectors, wait_green

DIM = 16
N = 300
ROWS = np.random.default_rng(5).normal(size=(N, DIM)).astype(np.float32)
QUERIES = np.random.default_rng(6).normal(size=(5, DIM)).astype(np.float32)


def create(api: Api, name: str, **vector: Any) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Euclid"} | vector,
        "optimizers_config": {"indexing_threshold": 100},
    }
    api.result("PUT", f"/collections/{name}", body)
    upsert_vectors(api, name, ROWS, batch=N)


def answers(api: Api, name: str) -> list[list[Any]]:
    out = []
    for query in QUERIES:
        body = {"query": query.tolist(), "limit": 10, "params": {"hnsw_ef": 300}}
        found = api.result("POST", f"/collections/{name}/points/query", body)["points"]
        out.append([p["id"] for p in found])
    return out


def local_answers() -> list[list[Any]]:
    client = QdrantClient(":memory:")
    client.create_collection("c", models.VectorParams(size=DIM, distance="Euclid", on_disk=True))
    client.upsert("c", [models.PointStruct(id=i, vector=r.tolist()) for i, r in enumerate(ROWS)])
    return [[p.id for p in client.query_points("c", q.tolist(), limit=10).points] for q in QUERIES]


@pytest.mark.parametrize(("datatype", "width"), [("float32", 4), ("float16", 2)])
def test_on_disk_graph_maps_its_rows_and_answers_as_in_memory(
    api: Api, datatype: str, width: int
) -> None:
    create(api, "disk", on_disk=True, datatype=datatype)
    create(api, "ram", datatype=datatype)
    disk = wait_green(api, "disk")["vectors_memory"][""]
    ram = wait_green(api, "ram")["vectors_memory"][""]
    assert disk["bytes"]["vectors_mapped"] == N * DIM * width
    assert disk["bytes"]["vectors"] == 0
    assert ram["bytes"]["vectors"] == N * DIM * width
    assert "vectors_mapped" not in ram["bytes"]
    assert answers(api, "disk") == answers(api, "ram")
    if datatype == "float32":
        assert answers(api, "disk") == local_answers()


def test_on_disk_rows_stay_mapped_across_a_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "disk", on_disk=True)
        wait_green(api, "disk")
        before = answers(api, "disk")
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "disk")
        assert info["config"]["params"]["vectors"]["on_disk"] is True
        assert info["vectors_memory"][""]["bytes"]["vectors_mapped"] == N * DIM * 4
        assert answers(api, "disk") == before == local_answers()
        more = np.random.default_rng(7).normal(size=(150, DIM)).astype(np.float32)
        points = [{"id": N + i, "vector": r.tolist()} for i, r in enumerate(more)]
        api.result("PUT", "/collections/disk/points?wait=true", {"points": points})
        grown = wait_green(api, "disk")["vectors_memory"][""]
        assert grown["points"] == N + 150
        assert grown["bytes"]["vectors_mapped"] == (N + 150) * DIM * 4


def test_patching_on_disk_rebuilds_the_graph_with_mapped_rows(api: Api) -> None:
    create(api, "moved")
    assert wait_green(api, "moved")["vectors_memory"][""]["bytes"]["vectors"] == N * DIM * 4
    before = answers(api, "moved")
    api.result("PATCH", "/collections/moved", {"vectors": {"": {"on_disk": True}}})
    memory = wait_green(api, "moved")["vectors_memory"][""]["bytes"]
    assert memory["vectors_mapped"] == N * DIM * 4 and memory["vectors"] == 0
    assert answers(api, "moved") == before


def test_quantized_codes_and_graph_stay_mapped_across_a_restart(tmp_path: Path) -> None:
    """A quantized ``on_disk`` vector with ``hnsw_config.on_disk`` (ADR 0019, amended):
    codes and links are read from the segment file again after a restart."""
    quantized = {"scalar": {"type": "int8"}}

    def mapped(api: Api) -> dict[str, int]:
        parts = wait_green(api, "q")["vectors_memory"][""]["bytes"]
        return {k: v for k, v in parts.items() if k.endswith("_mapped")}

    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "q", on_disk=True, hnsw_config={"on_disk": True},
               quantization_config=quantized)  # fmt: skip
        before, placed = answers(api, "q"), mapped(api)
    assert placed["codes_mapped"] == N * DIM and placed["graph_mapped"] > 0
    with make_client(tmp_path) as client:
        api = Api(client)
        assert mapped(api) == placed and answers(api, "q") == before


def test_memory_tier_overrides_on_disk_and_is_echoed(api: Api) -> None:
    """Qdrant 1.19's ``memory``: ``cold`` maps the rows as ``on_disk: true`` does,
    ``pinned`` keeps them in RAM even beside ``on_disk: true`` (it overrides it), and the
    collection info echoes what was sent."""
    create(api, "cold", memory="cold", hnsw_config={"memory": "cold"})
    create(api, "pinned", memory="pinned", on_disk=True)
    cold = wait_green(api, "cold")["vectors_memory"][""]["bytes"]
    pinned = wait_green(api, "pinned")["vectors_memory"][""]["bytes"]
    assert cold["vectors_mapped"] == N * DIM * 4 and cold["vectors"] == 0
    assert cold["graph_mapped"] > 0
    assert pinned["vectors"] == N * DIM * 4 and "vectors_mapped" not in pinned
    params = api.result("GET", "/collections/pinned")["config"]["params"]["vectors"]
    assert params["memory"] == "pinned" and params["on_disk"] is True
    assert answers(api, "cold") == answers(api, "pinned")
    bad = {"vectors": {"size": DIM, "distance": "Dot", "memory": "warm"}}
    status, _ = api.put("/collections/bad", bad)
    assert 400 <= status < 500 and api.get("/collections/bad")[0] == 404


def test_patching_memory_cold_maps_the_rows(api: Api) -> None:
    create(api, "moved", on_disk=False)
    status, _ = api.call("PATCH", "/collections/moved", {"vectors": {"": {"memory": "hot"}}})
    assert status == 400
    api.result("PATCH", "/collections/moved", {"vectors": {"": {"memory": "cold"}}})
    memory = wait_green(api, "moved")["vectors_memory"][""]["bytes"]
    assert memory["vectors_mapped"] == N * DIM * 4 and memory["vectors"] == 0
    params = api.result("GET", "/collections/moved")["config"]["params"]["vectors"]
    assert params["memory"] == "cold"
