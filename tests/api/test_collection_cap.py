"""The number of collections is capped (issue 18, finding 10): each holds open files,
and running out of file handles turned every later request into a 500."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, make_client

VECTORS = {"vectors": {"size": 4, "distance": "Dot"}}


def test_creating_past_max_collections_is_a_400_naming_the_cap(tmp_path: Path) -> None:
    with make_client(tmp_path, max_collections=3) as client:
        api = Api(client)
        for name in ("a", "b", "c"):
            api.result("PUT", f"/collections/{name}", VECTORS)
        status, answer = api.put("/collections/d", VECTORS)
        assert status == 400, answer
        assert "QUIVER_MAX_COLLECTIONS" in answer["status"]["error"]
        assert "3" in answer["status"]["error"]
        names = [c["name"] for c in api.result("GET", "/collections")["collections"]]
        assert sorted(names) == ["a", "b", "c"]
        assert api.get("/collections/d")[0] == 404
        assert not (tmp_path / "collections" / "d").exists()


def test_a_deleted_collection_frees_its_place(tmp_path: Path) -> None:
    with make_client(tmp_path, max_collections=2) as client:
        api = Api(client)
        api.result("PUT", "/collections/a", VECTORS)
        api.result("PUT", "/collections/b", VECTORS)
        api.result("DELETE", "/collections/a")
        api.result("PUT", "/collections/c", VECTORS)
        assert api.put("/collections/d", VECTORS)[0] == 400


def test_a_sharded_collection_counts_once(tmp_path: Path) -> None:
    with make_client(tmp_path, max_collections=2) as client:
        api = Api(client)
        api.result("PUT", "/collections/a", VECTORS | {"shard_number": 3})
        api.result("PUT", "/collections/b", VECTORS)
        assert api.put("/collections/c", VECTORS | {"shard_number": 2})[0] == 400


def test_recovering_a_snapshot_counts_as_a_new_collection_not_a_replacement(
    tmp_path: Path,
) -> None:
    with make_client(tmp_path, max_collections=1) as client:
        api = Api(client)
        api.result("PUT", "/collections/a", VECTORS)
        snapshot = api.result("POST", "/collections/a/snapshots")["name"]
        data = client.get(f"/collections/a/snapshots/{snapshot}").content
        files = {"snapshot": ("a.snapshot", data, "application/octet-stream")}
        refused = client.post("/collections/b/snapshots/upload?wait=true", files=files)
        assert refused.status_code == 400, refused.text
        assert "QUIVER_MAX_COLLECTIONS" in refused.json()["status"]["error"]
        replaced = client.post("/collections/a/snapshots/upload?wait=true", files=files)
        assert replaced.status_code == 200, replaced.text
        assert [c["name"] for c in api.result("GET", "/collections")["collections"]] == ["a"]
