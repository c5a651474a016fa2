"""Collections API: create, inspect, list, exists, patch, delete; persistence across restart."""

from __future__ import annotations

from pathlib import Path

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
    assert api.get("/healthz")[0] == 200
    assert api.get("/readyz")[0] == 200
