"""Snapshot recovery and unpacking against hostile input (issue 18): locations are
confined to the snapshots folder, archives are refused before they can fill a disk
or memory, and no answer tells anything about files outside the snapshots folder."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_snapshots import download, recover, state, take_snapshot, upload

FORBIDDEN = "Forbidden: a snapshot location must name a snapshot file inside the snapshots folder"


@pytest.fixture
def archive(api: Api, collection: str) -> bytes:
    return download(api, collection, take_snapshot(api, collection)["name"])


def forbidden(api: Api, target: str, location: str, **extra: Any) -> str:
    """Recover from ``location``: must be 403 and change nothing; returns the message."""
    before = state(api, target)
    status, answer = recover(api, target, location, **extra)
    assert status == 403, answer
    assert state(api, target) == before
    message: str = answer["status"]["error"]
    return message


# -- finding 2: file:// locations ----------------------------------------------------


def test_a_missing_and_an_existing_host_file_get_the_same_answer(
    api: Api, collection: str, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0\n")
    missing = tmp_path / "outside" / "nothing-here.snapshot"
    assert forbidden(api, collection, secret.as_uri()) == FORBIDDEN
    assert forbidden(api, collection, missing.as_uri()) == FORBIDDEN
    assert forbidden(api, collection, str(secret)) == FORBIDDEN
    assert forbidden(api, collection, "file:///etc/passwd") == FORBIDDEN


def test_a_valid_archive_outside_the_snapshots_folder_is_not_recovered(
    api: Api, collection: str, archive: bytes, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "good.snapshot"
    outside.parent.mkdir()
    outside.write_bytes(archive)
    wrong = hashlib.sha256(b"other").hexdigest()
    message = forbidden(api, collection, outside.as_uri(), checksum=wrong)
    assert hashlib.sha256(archive).hexdigest() not in message
    assert "points.sqlite" not in message
    assert api.result("GET", "/collections/copy/exists") == {"exists": False}
    status, _ = recover(api, "copy", outside.as_uri())
    assert status == 403
    assert api.result("GET", "/collections/copy/exists") == {"exists": False}


def test_dot_dot_and_links_cannot_leave_the_snapshots_folder(
    api: Api, collection: str, archive: bytes, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "good.snapshot"
    outside.parent.mkdir()
    outside.write_bytes(archive)
    folder = tmp_path / "snapshots" / collection
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.snapshot").symlink_to(outside)
    for location in (
        "../elsewhere/good.snapshot",
        f"{collection}/../../elsewhere/good.snapshot",
        (folder / ".." / ".." / "elsewhere" / "good.snapshot").as_uri(),
        "link.snapshot",
        (folder / "link.snapshot").as_uri(),
        "../collections/items/points.sqlite",
    ):
        assert forbidden(api, collection, location) == FORBIDDEN, location


def test_temporary_files_in_the_snapshots_folder_cannot_be_named(
    api: Api, collection: str, archive: bytes, tmp_path: Path
) -> None:
    upload_in_progress = tmp_path / "snapshots" / ".tmp-upload-1234.snapshot"
    upload_in_progress.parent.mkdir(exist_ok=True)
    upload_in_progress.write_bytes(archive)
    assert forbidden(api, collection, upload_in_progress.as_uri()) == FORBIDDEN
    assert forbidden(api, collection, ".tmp-upload-1234.snapshot") == FORBIDDEN


def test_archives_inside_the_snapshots_folder_still_recover(
    api: Api, collection: str, archive: bytes, tmp_path: Path
) -> None:
    placed = tmp_path / "snapshots" / "incoming" / "placed.snapshot"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(archive)
    before = state(api, collection)
    for location in (placed.as_uri(), str(placed), "incoming/placed.snapshot"):
        assert recover(api, "copy", location)[0] == 200, location
        assert state(api, "copy") == before


def test_a_checksum_mismatch_does_not_echo_the_file_hash(
    api: Api, collection: str, archive: bytes
) -> None:
    wrong = hashlib.sha256(b"other").hexdigest()
    status, answer = upload(api, "copy", archive, f"?checksum={wrong}")
    assert status == 400
    assert wrong in answer["status"]["error"]
    assert hashlib.sha256(archive).hexdigest() not in answer["status"]["error"]


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, None if content is None else io.BytesIO(content))
    return out.getvalue()
