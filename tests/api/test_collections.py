"""Collections API: create, inspect, list, exists, patch, delete; persistence across restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.api import Api, make_client


def test_create_then_info_reports_config_and_count(api: Api) -> None:
    assert api.result("PUT", "/collections/c", {"vectors": {"size": 3, "distance": "Cosine"}})
    info = api.result("GET", "/collections/c")
    assert info["status"] == "green"
    assert info["points_count"] == 0
    assert info["config"]["params"]["vectors"] == {"size": 3, "distance": "Cosine"}
    assert info["config"]["hnsw_config"]["m"] == 16


def test_named_vectors_are_reported_by_name(api: Api) -> None:
    body = {
        "vectors": {
            "text": {"size": 4, "distance": "Dot"},
            "image": {"size": 2, "distance": "Euclid"},
        }
    }
    api.result("PUT", "/collections/multi", body)
    vectors = api.result("GET", "/collections/multi")["config"]["params"]["vectors"]
    assert vectors == {
        "text": {"size": 4, "distance": "Dot"},
        "image": {"size": 2, "distance": "Euclid"},
    }


def test_list_and_exists(api: Api) -> None:
    api.result("PUT", "/collections/b", {"vectors": {"size": 2, "distance": "Dot"}})
    api.result("PUT", "/collections/a", {"vectors": {"size": 2, "distance": "Dot"}})
    assert api.result("GET", "/collections") == {"collections": [{"name": "a"}, {"name": "b"}]}
    assert api.result("GET", "/collections/a/exists") == {"exists": True}
    assert api.result("GET", "/collections/zzz/exists") == {"exists": False}


def test_create_twice_is_a_conflict(api: Api) -> None:
    body = {"vectors": {"size": 2, "distance": "Dot"}}
    api.result("PUT", "/collections/a", body)
    status, answer = api.put("/collections/a", body)
    assert status == 409
    assert "already exists" in answer["status"]["error"]


def test_delete_removes_collection_and_its_folder(api: Api, tmp_path: Path) -> None:
    api.result("PUT", "/collections/gone", {"vectors": {"size": 2, "distance": "Dot"}})
    assert (tmp_path / "collections" / "gone").is_dir()
    assert api.result("DELETE", "/collections/gone") is True
    assert not (tmp_path / "collections" / "gone").exists()
    assert api.result("DELETE", "/collections/gone") is False
    assert api.get("/collections/gone")[0] == 404


def test_patch_updates_optimizer_and_hnsw_config(api: Api) -> None:
    api.result("PUT", "/collections/p", {"vectors": {"size": 2, "distance": "Dot"}})
    body = {"optimizers_config": {"indexing_threshold": 500}, "hnsw_config": {"m": 32}}
    assert api.result("PATCH", "/collections/p", body) is True
    config = api.result("GET", "/collections/p")["config"]
    assert config["optimizer_config"]["indexing_threshold"] == 500
    assert config["hnsw_config"]["m"] == 32


def test_collections_and_config_survive_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/keep", {"vectors": {"size": 2, "distance": "Euclid"}})
        api.result("PATCH", "/collections/keep", {"hnsw_config": {"ef_construct": 64}})
    with make_client(tmp_path) as client:
        config = Api(client).result("GET", "/collections/keep")["config"]
    assert config["params"]["vectors"]["distance"] == "Euclid"
    assert config["hnsw_config"]["ef_construct"] == 64


def test_payload_index_is_accepted_and_listed(api: Api, collection: str) -> None:
    answer = api.result(
        "PUT",
        f"/collections/{collection}/index?wait=true",
        {"field_name": "city", "field_schema": "keyword"},
    )
    assert answer["status"] == "completed"
    schema = api.result("GET", f"/collections/{collection}")["payload_schema"]
    assert schema["city"]["data_type"] == "keyword"
    api.result("DELETE", f"/collections/{collection}/index/city")
    assert api.result("GET", f"/collections/{collection}")["payload_schema"] == {}


def test_root_reports_a_qdrant_compatible_version(api: Api) -> None:
    status, answer = api.get("/")
    assert status == 200
    major, minor, _patch = answer["version"].split(".")
    assert (major, int(minor) >= 17) == ("1", True)
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200


MULTI = {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}

# (section, knob, value out of range, also tried on PATCH)
OUT_OF_RANGE = [
    ("hnsw_config", "m", 1_000_000, True),
    ("hnsw_config", "m", -1, True),
    ("hnsw_config", "ef_construct", 3, True),
    ("hnsw_config", "ef_construct", 100_000, True),
    ("hnsw_config", "full_scan_threshold", 5, True),
    ("hnsw_config", "full_scan_threshold", 10**12, True),
    ("hnsw_config", "max_indexing_threads", 100_000, True),
    ("hnsw_config", "payload_m", 1_000_000, True),
    ("index", "dims", 1_000_000, True),
    ("index", "rerank_factor", 0.5, True),
    ("index", "rerank_factor", 10**6, True),
    ("index", "k_sim", 11, True),
    ("index", "d_proj", 100_000, True),
    ("index", "repetitions", 65, True),
    ("index", "final_dim", 10**7, True),
    ("index", "seed", -1, True),
    ("index", "candidates_factor", 10**6, True),
    ("optimizers_config", "deleted_threshold", 1.5, True),
    ("optimizers_config", "vacuum_min_vector_number", 10, True),
    ("optimizers_config", "default_segment_number", 100_000, True),
    ("optimizers_config", "max_segment_size", 0, True),
    ("optimizers_config", "memmap_threshold", -1, True),
    ("optimizers_config", "indexing_threshold", 10**12, True),
    ("optimizers_config", "flush_interval_sec", 10**7, True),
    ("optimizers_config", "max_optimization_threads", 100_000, True),
    ("multivector", "max_vectors_per_point", 10**7, True),
    ("multivector", "pool_factor", 0.5, True),
    ("wal_config", "wal_capacity_mb", 0, False),
    ("quantization_config", "scalar.quantile", 2, True),
    ("quantization_config", "scalar.quantile", 0.1, True),
    ("quantization_config", "rabitq.bits", 0, True),
    ("quantization_config", "rabitq.bits", 12, True),
]


def _body(section: str, knob: str, value: Any) -> dict[str, Any]:
    if section == "quantization_config":
        method, field = knob.split(".")
        inner = {"type": "int8"} if method == "scalar" else {}
        return {section: {method: inner | {field: value}}}
    return {section: {knob: value}}


def _refused(status: int, answer: Any, section: str, knob: str) -> None:
    assert status in (400, 422), answer
    error = answer["status"]["error"]
    assert f"{section}.{knob}" in error, error
    assert "must be in [" in error or "Input should be" in error, error


@pytest.mark.parametrize(("section", "knob", "value", "patch"), OUT_OF_RANGE)
def test_out_of_range_index_parameters_are_refused_and_change_nothing(
    api: Api, section: str, knob: str, value: Any, patch: bool
) -> None:
    vectors = {"dense": {"size": 4, "distance": "Cosine"}, "multi": MULTI}
    status, answer = api.put("/collections/bad", {"vectors": vectors} | _body(section, knob, value))
    _refused(status, answer, section, knob)
    assert api.result("GET", "/collections/bad/exists") == {"exists": False}
    if not patch:
        return
    api.result("PUT", "/collections/ok", {"vectors": vectors})
    before = api.result("GET", "/collections/ok")["config"]
    status, answer = api.call("PATCH", "/collections/ok", _body(section, knob, value))
    _refused(status, answer, section, knob)
    assert api.result("GET", "/collections/ok")["config"] == before
    assert api.result("GET", "/collections/ok/jobs") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shard_number": 65}, "shard_number"),
        ({"replication_factor": 0}, "replication_factor"),
        ({"write_consistency_factor": 1000}, "write_consistency_factor"),
    ],
)
def test_out_of_range_collection_params_are_refused(
    api: Api, body: dict[str, Any], field: str
) -> None:
    status, answer = api.put("/collections/bad", {"vectors": MULTI} | body)
    assert status == 422 and field in answer["status"]["error"], answer
    assert api.result("GET", "/collections/bad/exists") == {"exists": False}
    api.result("PUT", "/collections/ok", {"vectors": MULTI})
    if field != "shard_number":
        status, answer = api.call("PATCH", "/collections/ok", {"params": body})
        assert status == 422 and f"params.{field}" in answer["status"]["error"], answer
        assert api.result("GET", "/collections/ok")["config"]["params"][field] == 1


def test_the_upper_bounds_themselves_are_accepted(api: Api) -> None:
    body = {
        "vectors": {"size": 4, "distance": "Cosine"},
        "hnsw_config": {"m": 128, "ef_construct": 4096},
        "index": {"k_sim": 10, "repetitions": 64, "candidates_factor": 1000},
    }
    assert api.result("PUT", "/collections/edge", body) is True
    assert api.result("PATCH", "/collections/edge", {"hnsw_config": {"m": 0}}) is True


def test_a_query_beam_beyond_its_bound_is_refused(api: Api, collection: str) -> None:
    status, answer = api.post(
        f"/collections/{collection}/points/query",
        {"query": [0.1, 0.2, 0.3, 0.4], "params": {"hnsw_ef": 10**6}},
    )
    assert status == 422 and "hnsw_ef" in answer["status"]["error"], answer
