"""Per-vector params (Qdrant's ``vectors: {name: {hnsw_config, quantization_config,
on_disk}}``): set at create or by PATCH, each dense vector is built with its own
backend, and a change queues a background rebuild."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from index.registry import index_from_bytes
from tests.helpers.api import Api, make_client, wait_green

C = "/collections/pv"
DIM = 8


def create(api: Api, vectors: dict[str, Any] | None = None) -> None:
    config = {"size": DIM, "distance": "Dot"}
    body = {
        "vectors": vectors or {"a": config, "b": config},
        "optimizers_config": {"indexing_threshold": 20, "default_segment_number": 1},
    }
    api.result("PUT", C, body)
    rng = np.random.default_rng(5)
    points = [
        {"id": i, "vector": {n: rng.normal(size=DIM).tolist() for n in ("a", "b")}}
        for i in range(60)
    ]
    api.result("PUT", f"{C}/points?wait=true", {"points": points})


def built_kinds(data_dir: Path) -> list[dict[str, str]]:
    """Per sealed segment on disk: each vector's backend, as its manifest records it."""
    kinds = []
    for manifest in sorted((data_dir / "collections" / "pv" / "segments").glob("*/manifest.json")):
        indexes = orjson.loads(manifest.read_bytes())["indexes"]
        kinds.append({name: entry["kind"] for name, entry in indexes.items() if entry})
    return kinds


def search(api: Api, using: str, exact: bool) -> list[int]:
    query = {"query": [1.0] * DIM, "using": using, "limit": 5, "params": {"exact": exact}}
    return [hit["id"] for hit in api.result("POST", f"{C}/points/query", query)["points"]]


def test_a_patch_of_one_vector_rebuilds_it_with_its_own_backend(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api)
        wait_green(api, "pv")
        assert built_kinds(tmp_path) == [{"a": "hnsw", "b": "hnsw"}]
        patch = {
            "vectors": {
                "a": {"quantization_config": {"scalar": {"type": "int8"}}},
                "b": {"hnsw_config": {"m": 0}},
            }
        }
        assert api.result("PATCH", C, patch) is True
        info = wait_green(api, "pv")
        assert built_kinds(tmp_path) == [{"a": "hnsw_sq8", "b": "flat"}]
        vectors = info["config"]["params"]["vectors"]
        assert vectors["a"]["quantization_config"] == {"scalar": {"type": "int8"}}
        assert vectors["b"]["hnsw_config"] == {"m": 0}
        assert search(api, "b", exact=False) == search(api, "b", exact=True)
        jobs = {j["id"]: j["kind"] for j in api.result("GET", f"{C}/jobs")}
        assert "rebuild" in jobs.values()
    with make_client(tmp_path) as client:  # the specs read back equal: nothing to redo
        api = Api(client)
        assert wait_green(api, "pv")["points_count"] == 60
        assert {j["id"] for j in api.result("GET", f"{C}/jobs")} <= set(jobs)
        assert built_kinds(tmp_path) == [{"a": "hnsw_sq8", "b": "flat"}]


def test_per_vector_params_at_create_are_honoured(tmp_path: Path) -> None:
    config = {"size": DIM, "distance": "Dot"}
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, {"a": config | {"hnsw_config": {"m": 8, "ef_construct": 64}}, "b": config})
        wait_green(api, "pv")
        assert built_kinds(tmp_path) == [{"a": "hnsw", "b": "hnsw"}]
        manifest = next((tmp_path / "collections" / "pv" / "segments").glob("*/manifest.json"))
        spec = orjson.loads(manifest.read_bytes())["spec"]
        assert spec["vectors"] == {"a": {"type": "hnsw", "params": {"m": 8, "ef_construct": 64}}}


def test_disabling_a_vectors_own_params_returns_it_to_the_collections(api: Api) -> None:
    create(api)
    api.result("PATCH", C, {"vectors": {"a": {"quantization_config": {"binary": {}}}}})
    api.result("PATCH", C, {"vectors": {"a": {"quantization_config": "Disabled"}}})
    vectors = wait_green(api, "pv")["config"]["params"]["vectors"]
    assert vectors["a"] == {"size": DIM, "distance": "Dot"}


@pytest.mark.parametrize(
    ("patch", "status", "message"),
    [
        ({"zz": {"on_disk": True}}, 400, "Not existing vector name error: zz"),
        ({"a": {"size": 4}}, 400, "a PATCH changes only"),
        ({"a": {"hnsw_config": {"m": -1}}}, 422, "vectors.a.hnsw_config.m"),
        ({"a": {"quantization_config": {"nope": {}}}}, 400, "quantization_config"),
    ],
)
def test_a_bad_per_vector_patch_changes_nothing(
    api: Api, patch: dict[str, Any], status: int, message: str
) -> None:
    create(api)
    before = api.result("GET", C)["config"]
    got, answer = api.call("PATCH", C, {"vectors": patch})
    assert got == status
    assert message in answer["status"]["error"]
    assert api.result("GET", C)["config"] == before


def test_per_vector_params_need_an_hnsw_collection(api: Api) -> None:
    body = {
        "vectors": {"a": {"size": DIM, "distance": "Dot", "hnsw_config": {"m": 8}}},
        "index": {"type": "flat"},
    }
    status, answer = api.put(C, body)
    assert status == 400
    assert "per-vector" in answer["status"]["error"]


def create_multi(api: Api, index: str) -> None:
    """A dense ``a`` and a multi-vector ``m`` (60 points of 3 tokens) under ``index``."""
    multi = {"size": DIM, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    body = {
        "vectors": {"a": {"size": DIM, "distance": "Dot"}, "m": multi},
        "index": {"type": index},
        "optimizers_config": {"indexing_threshold": 20, "default_segment_number": 1},
    }
    api.result("PUT", C, body)
    rng = np.random.default_rng(6)
    points = [
        {
            "id": i,
            "vector": {"a": rng.normal(size=DIM).tolist(), "m": rng.normal(size=(3, DIM)).tolist()},
        }
        for i in range(60)
    ]
    api.result("PUT", f"{C}/points?wait=true", {"points": points})


def built_spec(data_dir: Path) -> dict[str, Any]:
    manifest = next((data_dir / "collections" / "pv" / "segments").glob("*/manifest.json"))
    return dict(orjson.loads(manifest.read_bytes()))


def built_index(data_dir: Path, name: str) -> Any:
    """The index the sealed segment holds for vector ``name``, read from its file."""
    manifest = next((data_dir / "collections" / "pv" / "segments").glob("*/manifest.json"))
    entry = orjson.loads(manifest.read_bytes())["indexes"][name]
    return index_from_bytes((manifest.parent / entry["file"]).read_bytes())


def multi_search(api: Api) -> list[int]:
    query = {"query": [[1.0] * DIM, [0.5] * DIM], "using": "m", "limit": 5}
    return [hit["id"] for hit in api.result("POST", f"{C}/points/query", query)["points"]]


def test_a_multi_vectors_own_quantization_stores_its_tokens_compressed(tmp_path: Path) -> None:
    """Qdrant compresses a multi-vector with its own quantization; Quiver keeps its
    tokens as float16 (half the bytes), scores staying close enough to keep the order."""
    with make_client(tmp_path) as client:
        api = Api(client)
        create_multi(api, "hnsw")
        wait_green(api, "pv")
        before = multi_search(api)
        exact = built_index(tmp_path, "m")
        assert (exact.kind, exact.stored().tokens.dtype) == ("maxsim", np.float32)
        patch = {"vectors": {"m": {"quantization_config": {"scalar": {"type": "int8"}}}}}
        assert api.result("PATCH", C, patch) is True
        wait_green(api, "pv")
        own = built_spec(tmp_path)["spec"]["vectors"]
        assert own == {"m": {"type": "maxsim", "params": {"storage": "float16"}}}
        compressed = built_index(tmp_path, "m")
        assert compressed.stored().tokens.dtype == np.float16
        assert compressed.stored().tokens.nbytes * 2 == exact.stored().tokens.nbytes
        assert multi_search(api) == before


def test_a_multi_vectors_own_hnsw_config_shapes_its_muvera_graph(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        create_multi(api, "muvera")
        wait_green(api, "pv")
        assert built_index(tmp_path, "m").kind == "muvera"
        api.result("PATCH", C, {"vectors": {"m": {"hnsw_config": {"m": 6, "ef_construct": 40}}}})
        wait_green(api, "pv")
        own = built_spec(tmp_path)["spec"]["vectors"]["m"]
        assert (own["type"], own["params"]["m"], own["params"]["ef_construct"]) == ("muvera", 6, 40)
        assert built_index(tmp_path, "m").kind == "muvera"
        api.result("PATCH", C, {"vectors": {"m": {"hnsw_config": {"m": 0}}}})
        wait_green(api, "pv")
        assert built_index(tmp_path, "m").kind == "maxsim"  # m 0: exact MaxSim, no graph
        vectors = api.result("GET", C)["config"]["params"]["vectors"]
        assert vectors["m"]["hnsw_config"] == {"m": 0, "ef_construct": 40}
