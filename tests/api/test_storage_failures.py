"""Library failures become the right answer, once (issue 18, finding 10): a full disk is
507 with nothing half-written, MemoryError 503, RecursionError 400, a crafted index file
in a snapshot 400; no message names a host path; data files are private to the server."""

from __future__ import annotations

import errno
import hashlib
import io
import sqlite3
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.engine.collection import Collection
from server.storage import snapshots
from server.storage.point_store import PointStore
from tests.helpers.api import Api, make_client
from tests.helpers.snapshots import (
    download,
    indexed_archive,
    rebuilt_archive,
    state,
    take_snapshot,
    upload,
)


def disk_full(where: Path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(where))


def sqlite_full() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    return error


def hidden_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.startswith((".tmp-", ".trash-"))]


# -- a full disk: 507, nothing half-written, no path in the message --------------------


def test_a_snapshot_on_a_full_disk_is_507_and_leaves_nothing(
    api: Api, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = snapshots._Hashing.write

    def write_until_full(self: Any, data: bytes, /) -> int:
        if self.handle.tell() > 4096:
            raise disk_full(tmp_path / "snapshots" / collection / ".tmp-x")
        return real_write(self, data)

    monkeypatch.setattr(snapshots._Hashing, "write", write_until_full)
    status, answer = api.post(f"/collections/{collection}/snapshots?wait=true")
    assert status == 507, answer
    message = answer["status"]["error"]
    assert f"snapshot of collection `{collection}`" in message and "disk is full" in message
    assert str(tmp_path) not in message
    assert hidden_leftovers(tmp_path) == []
    monkeypatch.undo()
    assert api.result("GET", f"/collections/{collection}/snapshots") == []


def test_a_snapshot_copy_failing_on_a_full_disk_leaves_no_journal(
    api: Api, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_backup = PointStore.backup_to

    def backup_then_fill(self: PointStore, target: Path) -> None:
        real_backup(self, target)
        target.with_name(target.name + "-journal").write_bytes(b"half a copy")
        try:
            raise sqlite_full()
        except sqlite3.Error as exc:
            raise snapshots.StorageError("Cannot copy the storage") from exc

    monkeypatch.setattr(PointStore, "backup_to", backup_then_fill)
    status, answer = api.post(f"/collections/{collection}/snapshots?wait=true")
    assert status == 507, answer
    assert hidden_leftovers(tmp_path / "snapshots") == []


def test_a_write_on_a_full_disk_is_507_and_changes_nothing(
    api: Api, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(api, collection)

    def full(*_: Any) -> None:
        raise sqlite_full()

    monkeypatch.setattr(PointStore, "_put_points", staticmethod(full))
    point = {"id": 99, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"n": 99}}
    status, answer = api.put(f"/collections/{collection}/points?wait=true", {"points": [point]})
    assert status == 507, answer
    assert "disk is full" in answer["status"]["error"]
    monkeypatch.undo()
    assert state(api, collection) == before


def test_unpacking_an_upload_on_a_full_disk_is_507_and_leaves_nothing(
    api: Api, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = download(api, collection, take_snapshot(api, collection)["name"])
    before = state(api, collection)

    class FullFile(io.FileIO):
        def write(self, data: Any, /) -> int:
            raise disk_full(Path(str(self.name)))

    def open_full(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return FullFile(path, mode.replace("b", "")) if mode == "xb" else open(path, mode)

    monkeypatch.setattr(snapshots, "open", open_full, raising=False)
    for target in (collection, "fresh"):
        status, answer = upload(api, target, archive)
        assert status == 507, answer
        assert "snapshot member points.sqlite" in answer["status"]["error"]
        assert str(tmp_path) not in answer["status"]["error"]
    assert state(api, collection) == before
    assert api.result("GET", "/collections/fresh/exists") == {"exists": False}
    assert hidden_leftovers(tmp_path) == []


# -- other library errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "needle"),
    [
        (MemoryError(), 503, "Service unavailable: not enough memory"),
        (RecursionError("maximum recursion depth exceeded"), 400, "nested too deeply"),
        (OSError(errno.EIO, "Input/output error", "/secret/host/path"), 500, "Input/output error"),
    ],
)
def test_library_errors_are_translated_once(
    api: Api,
    collection: str,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    needle: str,
) -> None:
    def fail(*_: Any) -> None:
        raise error

    monkeypatch.setattr(Collection, "info", fail)
    got, answer = api.get(f"/collections/{collection}")
    assert got == status, answer
    assert needle in answer["status"]["error"]
    assert "/secret" not in answer["status"]["error"]


# -- a crafted index file whose checksums all match -------------------------------------


def resigned_indexes(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """Each index file changed, its manifest entry and snapshot.json re-signed."""
    changed: dict[str, bytes] = {}

    def change_indexes(name: str, content: bytes) -> bytes:
        if name.endswith(".index"):
            changed[name] = change(content)
            return changed[name]
        return content

    files: dict[str, dict[str, Any]] = {}

    def resign(name: str, content: bytes) -> bytes:
        if name.endswith("manifest.json"):
            manifest = orjson.loads(content)
            folder = name.rsplit("/", 1)[0]
            for entry in filter(None, manifest["indexes"].values()):
                entry["sha256"] = hashlib.sha256(changed[f"{folder}/{entry['file']}"]).hexdigest()
            content = orjson.dumps(manifest)
        if name == "snapshot.json":
            return orjson.dumps(orjson.loads(content) | {"files": files})
        files[name] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
        return content

    return rebuilt_archive(rebuilt_archive(data, change_indexes), resign)


def zeroed_graph(index_file: bytes) -> bytes:
    """The container header intact, the faiss bytes after it zeroed: faiss refuses them."""
    header_end = 12 + int.from_bytes(index_file[8:12], "little")
    return index_file[:header_end] + bytes(len(index_file) - header_end)


def test_a_crafted_index_file_in_a_valid_snapshot_is_400(tmp_path: Path) -> None:
    with make_client(tmp_path, idle_seal_s=0) as client:
        api = Api(client)
        crafted = resigned_indexes(indexed_archive(api, "ix"), zeroed_graph)
        with tarfile.open(fileobj=io.BytesIO(crafted)) as tar:
            assert any(m.name.endswith(".index") for m in tar.getmembers())
        status, answer = upload(api, "copy", crafted)
        assert status == 400, answer
        assert answer["status"]["error"].startswith("Bad snapshot: its collection cannot be")
        assert api.result("GET", "/collections/copy/exists") == {"exists": False}
        assert hidden_leftovers(tmp_path) == []


# -- data files are private -------------------------------------------------------------


def test_everything_under_the_data_folder_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with make_client(data, idle_seal_s=0) as client:
        api = Api(client)
        archive = indexed_archive(api, "ix")
        assert upload(api, "copy", archive)[0] == 200
    entries = [data, *data.rglob("*")]
    assert len(entries) > 10
    wide = [
        (str(p.relative_to(tmp_path)), oct(stat.S_IMODE(p.stat().st_mode)))
        for p in entries
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert wide == []
