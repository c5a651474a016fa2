"""Collection snapshots: create / list / download / delete, recover from a location or an
upload, equality after recovery, and bad archives refused without changing anything."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.snapshots import (
    download,
    indexed_archive,
    member_offset,
    rebuilt_archive,
    recover,
    resigned,
    state,
    take_snapshot,
    upload,
)

DIM = 16


@pytest.fixture
def indexed_items(api: Api, collection: str) -> str:
    """The ten-point collection with a payload index and a non-default HNSW config."""
    index = {"field_name": "city", "field_schema": "keyword"}
    api.result("PUT", f"/collections/{collection}/index?wait=true", index)
    api.result("PATCH", f"/collections/{collection}", {"hnsw_config": {"m": 8}})
    return collection


# -- create, list, download, delete -----------------------------------------


def test_create_list_download_delete_round_trip(api: Api, collection: str) -> None:
    description = take_snapshot(api, collection)
    assert set(description) == {"name", "creation_time", "size", "checksum"}
    assert description["name"].startswith(f"{collection}-")
    assert description["name"].endswith(".snapshot")
    assert datetime.fromisoformat(description["creation_time"]).tzinfo is None
    assert [description] == api.result("GET", f"/collections/{collection}/snapshots")

    response = api.client.get(f"/collections/{collection}/snapshots/{description['name']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert len(response.content) == description["size"]
    assert hashlib.sha256(response.content).hexdigest() == description["checksum"]

    path = f"/collections/{collection}/snapshots/{description['name']}"
    assert api.result("DELETE", path) is True
    assert api.result("GET", f"/collections/{collection}/snapshots") == []
    assert api.get(path)[0] == 404


def test_snapshots_are_listed_oldest_first_and_named_apart(api: Api, collection: str) -> None:
    first, second = take_snapshot(api, collection), take_snapshot(api, collection)
    assert first["name"] != second["name"]
    listed = api.result("GET", f"/collections/{collection}/snapshots")
    assert {s["name"] for s in listed} == {first["name"], second["name"]}


def test_snapshot_of_unknown_collection_is_404(api: Api) -> None:
    status, answer = api.post("/collections/nope/snapshots")
    assert status == 404
    assert "nope" in answer["status"]["error"]
    assert api.get("/collections/nope/snapshots")[0] == 404


def test_unknown_snapshot_is_404_with_its_name(api: Api, collection: str) -> None:
    path = f"/collections/{collection}/snapshots/missing.snapshot"
    for method in ("GET", "DELETE"):
        status, answer = api.call(method, path)
        assert status == 404
        assert "missing.snapshot" in answer["status"]["error"]
    status, answer = recover(api, collection, "missing.snapshot")
    assert status == 404
    assert "missing.snapshot" in answer["status"]["error"]


def test_snapshot_names_that_are_not_file_names_are_refused(api: Api, collection: str) -> None:
    for name in (".hidden.snapshot", "points.sqlite", "..snapshot"):
        status, answer = api.get(f"/collections/{collection}/snapshots/{name}")
        assert status == 400, name
        assert "Bad snapshot name" in answer["status"]["error"]


# -- recovery gives an equal collection ---------------------------------------


def test_recover_into_a_new_name_gives_an_equal_collection(api: Api, indexed_items: str) -> None:
    before = state(api, indexed_items)
    name = take_snapshot(api, indexed_items)["name"]
    status, answer = recover(api, "copy", name, priority="snapshot")
    assert (status, answer["result"]) == (200, True)
    assert state(api, "copy") == before
    assert state(api, indexed_items) == before


def test_recover_replaces_the_existing_collection(
    api: Api, indexed_items: str, tmp_path: Path
) -> None:
    before = state(api, indexed_items)
    name = take_snapshot(api, indexed_items)["name"]
    path = f"/collections/{indexed_items}"
    new_point = {"id": 99, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"n": 99}}
    api.result("POST", f"{path}/points/delete?wait=true", {"points": [1, 2]})
    api.result("PUT", f"{path}/points?wait=true", {"points": [new_point]})
    paris = {"payload": {"city": "Paris"}, "points": [3]}
    api.result("POST", f"{path}/points/payload?wait=true", paris)
    api.result("DELETE", f"{path}/index/city")
    assert state(api, indexed_items) != before

    archive = tmp_path / "snapshots" / indexed_items / name
    status, answer = recover(api, indexed_items, archive.as_uri())
    assert (status, answer["result"]) == (200, True)
    assert state(api, indexed_items) == before
    assert api.result("GET", "/collections") == {"collections": [{"name": indexed_items}]}


def test_recovered_collection_takes_writes_and_survives_a_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/a", {"vectors": {"size": 2, "distance": "Dot"}})
        first, second = {"id": 1, "vector": [1.0, 0.0]}, {"id": 2, "vector": [0.0, 1.0]}
        api.result("PUT", "/collections/a/points?wait=true", {"points": [first]})
        assert recover(api, "b", take_snapshot(api, "a")["name"])[0] == 200
        api.result("PUT", "/collections/b/points?wait=true", {"points": [second]})
        expected = state(api, "b")
    with make_client(tmp_path) as client:
        assert state(Api(client), "b") == expected
        assert expected["points_count"] == 2


def test_indexed_collection_recovers_with_its_indexes_and_no_rebuild(tmp_path: Path) -> None:
    xb = np.random.default_rng(7).normal(size=(700, DIM)).astype(np.float32)
    with make_client(tmp_path, idle_seal_s=0) as client:
        api = Api(client)
        config = {
            "vectors": {"size": DIM, "distance": "Euclid"},
            "optimizers_config": {"indexing_threshold": 300, "default_segment_number": 2},
        }
        api.result("PUT", "/collections/ix", config)
        points = [{"id": i, "vector": v.tolist(), "payload": {"i": i}} for i, v in enumerate(xb)]
        for start in range(0, len(points), 350):
            batch = {"points": points[start : start + 350]}
            api.result("PUT", "/collections/ix/points?wait=true", batch)
        wait_green(api, "ix")
        source_segments = api.result("GET", "/collections/ix/segments")
        name = take_snapshot(api, "ix")["name"]

        assert recover(api, "copy", name)[0] == 200
        assert api.result("GET", "/collections/copy/jobs") == []
        info = api.result("GET", "/collections/copy")
        assert info["status"] == "green"
        segments = api.result("GET", "/collections/copy/segments")
        sealed = [s for s in segments if s["kind"] == "sealed"]
        assert sealed
        assert all(s["index"] == "hnsw" for s in sealed)
        assert [(s["segment_id"], s["points"]) for s in segments] == [
            (s["segment_id"], s["points"]) for s in source_segments
        ]
        assert (
            info["indexed_vectors_count"]
            == api.result("GET", "/collections/ix")["indexed_vectors_count"]
        )
        for query in xb[:5]:
            body = {"query": query.tolist(), "limit": 10}
            assert api.result("POST", "/collections/copy/points/query", body) == api.result(
                "POST", "/collections/ix/points/query", body
            )
        assert state(api, "copy")["points"] == state(api, "ix")["points"]


def test_upload_recovers_a_collection(api: Api, indexed_items: str) -> None:
    before = state(api, indexed_items)
    description = take_snapshot(api, indexed_items)
    data = download(api, indexed_items, description["name"])
    query = f"?priority=snapshot&checksum={description['checksum']}&wait=true"
    status, answer = upload(api, "uploaded", data, query)
    assert (status, answer["result"]) == (200, True)
    assert state(api, "uploaded") == before


def test_upload_without_a_snapshot_field_is_refused(api: Api) -> None:
    response = api.client.post(
        "/collections/up/snapshots/upload", files={"file": ("x.snapshot", b"data")}
    )
    assert response.status_code == 400
    assert "`snapshot`" in response.json()["status"]["error"]
    response = api.client.post("/collections/up/snapshots/upload", content=b"raw bytes")
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["status"]["error"]
    assert api.result("GET", "/collections/up/exists") == {"exists": False}


# -- bad archives change nothing ----------------------------------------------


@pytest.fixture
def archive(api: Api, indexed_items: str) -> bytes:
    return download(api, indexed_items, take_snapshot(api, indexed_items)["name"])


def refused(api: Api, target: str, data: bytes, tmp_path: Path, **extra: Any) -> list[str]:
    """Recover ``data`` into ``target`` by location (a file placed in the snapshots folder,
    the only place a location may name) and by upload; both must answer 400 and leave
    ``target`` as it was (or absent). Returns the two error messages."""
    exists = api.result("GET", f"/collections/{target}/exists")["exists"]
    before = state(api, target) if exists else None
    path = tmp_path / "snapshots" / "incoming" / "bad.snapshot"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    messages = []
    for status, answer in (
        recover(api, target, path.as_uri(), **extra),
        upload(api, target, data, f"?checksum={extra['checksum']}" if extra else ""),
    ):
        assert status == 400, answer
        messages.append(answer["status"]["error"])
    if before is None:
        assert api.result("GET", f"/collections/{target}/exists") == {"exists": False}
    else:
        assert state(api, target) == before
    for folder in (tmp_path / "collections", tmp_path / "snapshots"):
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    return messages


def test_corrupted_member_is_refused_and_changes_nothing(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    offset, size = member_offset(archive, "points.sqlite")
    corrupt = bytearray(archive)
    corrupt[offset + size // 2] ^= 0xFF
    for target in (indexed_items, "fresh"):
        for message in refused(api, target, bytes(corrupt), tmp_path):
            assert "member points.sqlite is corrupted" in message


def test_truncated_archive_is_refused_and_changes_nothing(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    header_at, _ = member_offset(archive, "snapshot.json")
    for cut in (700, len(archive) // 2, header_at - 512, header_at + 10):
        for message in refused(api, indexed_items, archive[:cut], tmp_path):
            assert "truncated" in message


def test_file_that_is_not_a_tar_archive_is_refused(
    api: Api, indexed_items: str, tmp_path: Path
) -> None:
    for data in (b"", b"not a snapshot at all" * 100, orjson.dumps({"points": []})):
        for message in refused(api, indexed_items, data, tmp_path):
            assert "not a readable snapshot archive" in message


def test_wrong_checksum_is_refused_and_changes_nothing(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    for message in refused(api, indexed_items, archive, tmp_path, checksum=wrong):
        assert "checksum mismatch" in message
        assert wrong in message
    for message in refused(api, indexed_items, archive, tmp_path, checksum="abc"):
        assert "not a sha256 hex digest" in message


def test_unknown_format_version_is_refused(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    def bump(name: str, content: bytes) -> bytes:
        if name != "snapshot.json":
            return content
        return orjson.dumps(orjson.loads(content) | {"format_version": 99})

    for message in refused(api, indexed_items, rebuilt_archive(archive, bump), tmp_path):
        assert "unknown snapshot format version 99" in message


def test_member_missing_from_the_archive_is_refused(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    def drop_store(name: str, content: bytes) -> bytes | None:
        return None if name == "points.sqlite" else content

    for message in refused(api, indexed_items, rebuilt_archive(archive, drop_store), tmp_path):
        assert "points.sqlite" in message
        assert "missing" in message


def test_member_outside_the_layout_is_refused_and_not_written(
    api: Api, indexed_items: str, archive: bytes, tmp_path: Path
) -> None:
    evil = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as source,
        tarfile.open(fileobj=evil, mode="w") as target,
    ):
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        target.addfile(info, io.BytesIO(b"evil"))
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member))
    for message in refused(api, indexed_items, evil.getvalue(), tmp_path):
        assert "unexpected archive member '../../escaped.txt'" in message
    assert not list(tmp_path.rglob("escaped.txt"))


def test_http_locations_are_not_supported(api: Api, indexed_items: str) -> None:
    before = state(api, indexed_items)
    status, answer = recover(api, indexed_items, "http://example.com/x.snapshot")
    assert status == 400
    assert "Not supported" in answer["status"]["error"]
    assert "http" in answer["status"]["error"]
    status, answer = recover(api, indexed_items, "../collections/items/points.sqlite")
    assert status == 403
    assert state(api, indexed_items) == before


def test_replacing_a_collection_while_it_builds_leaves_no_stale_jobs(tmp_path: Path) -> None:
    xb = np.random.default_rng(1).normal(size=(3000, 32)).astype(np.float32)
    with make_client(tmp_path, idle_seal_s=0) as client:
        api = Api(client)
        config = {
            "vectors": {"size": 32, "distance": "Euclid"},
            "hnsw_config": {"m": 32, "ef_construct": 200},
            "optimizers_config": {"indexing_threshold": 1000, "default_segment_number": 1},
        }
        api.result("PUT", "/collections/busy", config)
        first = {"points": [{"id": 0, "vector": xb[0].tolist()}]}
        api.result("PUT", "/collections/busy/points?wait=true", first)
        expected = state(api, "busy")
        name = take_snapshot(api, "busy")["name"]
        points = [{"id": i, "vector": v.tolist()} for i, v in enumerate(xb)]
        for start in range(0, len(points), 1000):
            batch = {"points": points[start : start + 1000]}
            api.result("PUT", "/collections/busy/points?wait=true", batch)
        assert api.result("GET", "/collections/busy/jobs")  # builds queued or running

        status, answer = recover(api, "busy", name)
        assert (status, answer["result"]) == (200, True)
        assert api.result("GET", "/collections/busy/jobs") == []
        assert api.result("GET", "/collections/busy")["status"] == "green"
        assert state(api, "busy") == expected
        assert not list((tmp_path / "collections" / "busy" / "segments").iterdir())


# -- a manifest may not name files outside its segment folder (issue 18, finding 1) ----


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_manifest_naming_a_host_file_is_refused_and_never_archived(
    tmp_path: Path, kind: str
) -> None:
    secret_text = b"root:x:0:0:quiver-secret-marker\n"
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_bytes(secret_text)
    file = str(secret) if kind == "absolute" else "../" * 30 + str(secret).lstrip("/")

    def point_at_secret(name: str, content: bytes) -> bytes:
        if not name.endswith("manifest.json"):
            return content
        manifest = orjson.loads(content)
        for entry in manifest["indexes"].values():
            entry["file"], entry["sha256"] = file, hashlib.sha256(secret_text).hexdigest()
        return orjson.dumps(manifest)

    with make_client(tmp_path / "data", idle_seal_s=0) as client:
        api = Api(client)
        crafted = resigned(indexed_archive(api, "ix"), point_at_secret)
        status, answer = upload(api, "stolen", crafted)
        assert status == 400, answer
        assert "not a plain index file name" in answer["status"]["error"]
        assert api.result("GET", "/collections/stolen/exists") == {"exists": False}
        assert secret_text not in download(api, "ix", take_snapshot(api, "ix")["name"])


def test_index_file_whose_checksum_differs_from_the_manifest_is_refused(tmp_path: Path) -> None:
    def reversed_index(name: str, content: bytes) -> bytes:
        return content[::-1] if name.endswith(".index") else content

    with make_client(tmp_path, idle_seal_s=0) as client:
        api = Api(client)
        status, answer = upload(api, "copy", resigned(indexed_archive(api, "ix"), reversed_index))
        assert status == 400, answer
        assert "does not match the checksum it records" in answer["status"]["error"]
        assert api.result("GET", "/collections/copy/exists") == {"exists": False}


def test_snapshot_refuses_an_index_file_that_changed_on_disk(tmp_path: Path) -> None:
    with make_client(tmp_path, idle_seal_s=0) as client:
        api = Api(client)
        indexed_archive(api, "ix")
        index_file = next((tmp_path / "collections" / "ix" / "segments").glob("*/*.index"))
        index_file.write_bytes(index_file.read_bytes()[::-1])
        status, answer = api.post("/collections/ix/snapshots?wait=true", {})
        assert status == 500
        assert "does not match the checksum in its manifest" in answer["status"]["error"]
        assert len(api.result("GET", "/collections/ix/snapshots")) == 1
