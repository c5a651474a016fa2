"""Snapshot recovery and unpacking against hostile input (issue 18): locations are
confined to the snapshots folder, archives are refused before they can fill a disk
or memory, and no answer tells anything about files outside the snapshots folder."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.api import Api
from tests.helpers.snapshots import download, recover, state, take_snapshot, upload

DiskUsage = namedtuple("DiskUsage", "total used free")
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
        "file:///etc/passwd%00.snapshot",
        "bad\x00name/x.snapshot",
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


# -- finding 5: archives that would unpack to more than they hold ----------------------


def gnu_sparse_member(name: str, real_size: int, stored: bytes) -> bytes:
    """A GNU sparse ('S') member: ``stored`` bytes that unpack to ``real_size`` bytes
    (the rest holes), as ``tar --sparse`` writes it; tarfile cannot write one."""
    info = tarfile.TarInfo(name)
    info.size, info.type = len(stored), tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    entry = tarfile.itn(real_size - len(stored), 12, tarfile.GNU_FORMAT)
    header[386:410] = entry + tarfile.itn(len(stored), 12, tarfile.GNU_FORMAT)
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    padding = b"\0" * (-len(stored) % 512)
    return bytes(header) + stored + padding


def pax_sparse_member(name: str, real_size: int, stored: bytes) -> bytes:
    """A PAX 1.0 sparse member (``GNU.sparse.*`` keys, the map in the data)."""
    sparse_map = f"1\n{real_size - len(stored)}\n{len(stored)}\n".encode().ljust(512, b"\0")
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size = len(sparse_map) + len(stored)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(sparse_map + stored))
    return out.getvalue()[: -1024 * 2]  # without the end-of-archive blocks


def refused_upload(api: Api, collection: str, data: bytes, tmp_path: Path) -> str:
    """Upload ``data`` as a snapshot of a new and of an existing collection: 400 both
    times, nothing changed and no file larger than the upload left behind."""
    before = state(api, collection)
    messages = set()
    for target in ("fresh", collection):
        status, answer = upload(api, target, data)
        assert status == 400, answer
        messages.add(answer["status"]["error"])
    assert api.result("GET", "/collections/fresh/exists") == {"exists": False}
    assert state(api, collection) == before
    assert max(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) < 8 << 20
    assert len(messages) == 1
    return messages.pop()


def test_a_gnu_sparse_member_is_refused_before_anything_is_written(
    api: Api, collection: str, tmp_path: Path
) -> None:
    data = gnu_sparse_member("points.sqlite", 64 << 20, b"x" * 512) + b"\0" * 1024
    assert len(data) < 10_000
    message = refused_upload(api, collection, data, tmp_path)
    assert "'points.sqlite' is not a plain file" in message


def test_a_pax_sparse_member_is_refused_before_anything_is_written(
    api: Api, collection: str, tmp_path: Path
) -> None:
    data = pax_sparse_member("points.sqlite", 64 << 20, b"x" * 512) + b"\0" * 1024
    message = refused_upload(api, collection, data, tmp_path)
    assert "'points.sqlite' is a sparse or special file" in message


def test_a_member_declaring_more_bytes_than_the_archive_holds_is_refused(
    api: Api, collection: str, tmp_path: Path
) -> None:
    info = tarfile.TarInfo("points.sqlite")
    info.size = 64 << 20
    data = info.tobuf(format=tarfile.GNU_FORMAT) + b"x" * 4096
    message = refused_upload(api, collection, data, tmp_path)
    assert f"declares {64 << 20} bytes, more than the archive holds" in message
    assert not [p for p in tmp_path.rglob("points.sqlite") if p.parent.name != collection]


@pytest.mark.parametrize(
    "kind",
    [
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.DIRTYPE,
        tarfile.CHRTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
        tarfile.XGLTYPE,
    ],
)
def test_members_that_are_not_plain_files_are_refused(
    api: Api, collection: str, tmp_path: Path, kind: bytes
) -> None:
    info = tarfile.TarInfo("points.sqlite")
    info.type, info.linkname = kind, "/etc/passwd"
    content = b"x" * 10 if kind in (tarfile.CONTTYPE, tarfile.XGLTYPE) else None
    if content is not None:
        info.size = len(content)
    message = refused_upload(api, collection, tar_of((info, content)), tmp_path)
    assert "not a plain file" in message or "sparse or special" in message


def test_a_long_name_record_is_refused(api: Api, collection: str, tmp_path: Path) -> None:
    info = tarfile.TarInfo("segments/1/" + "9" * 200 + ".index")
    info.size = 1
    message = refused_upload(api, collection, tar_of((info, b"x")), tmp_path)
    assert "not a plain file" in message


def test_an_oversized_pax_header_is_refused_unread(
    api: Api, collection: str, tmp_path: Path
) -> None:
    info = tarfile.TarInfo("points.sqlite")
    info.size = 1
    info.pax_headers = {"comment": "x" * (100 << 10)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    message = refused_upload(api, collection, out.getvalue(), tmp_path)
    assert "extended tar header" in message


def test_an_archive_larger_than_the_free_disk_is_refused_with_507(
    api: Api, collection: str, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.storage import snapshots

    before = state(api, collection)
    free = len(archive) - 1
    monkeypatch.setattr(snapshots.shutil, "disk_usage", lambda _: DiskUsage(2 * free, free, free))
    status, answer = upload(api, collection, archive)
    assert status == 507, answer
    assert "Insufficient storage" in answer["status"]["error"]
    assert state(api, collection) == before


# -- finding 9: snapshot.json is bounded before it is read -----------------------------


def test_an_oversized_snapshot_header_is_refused_unread(
    api: Api, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.storage import snapshots

    def must_not_parse(raw: bytes) -> None:
        raise AssertionError("an oversized header was parsed")

    monkeypatch.setattr(snapshots, "_parse_header", must_not_parse)
    info = tarfile.TarInfo("snapshot.json")
    info.size = snapshots.MAX_HEADER_BYTES + 1
    header = b"{" + b" " * (info.size - 2) + b"}"
    message = refused_upload(api, collection, tar_of((info, header)), tmp_path)
    assert f"snapshot.json is {info.size} bytes, larger than any Quiver writes" in message


def test_a_real_header_is_far_below_the_bound(api: Api, collection: str, archive: bytes) -> None:
    from server.storage import snapshots

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        header = tar.getmember("snapshot.json")
        per_member = header.size / len(tar.getmembers())
    assert per_member * snapshots.MAX_MEMBERS < snapshots.MAX_HEADER_BYTES


def test_an_archive_with_too_many_members_is_refused(
    api: Api, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.storage import snapshots

    monkeypatch.setattr(snapshots, "MAX_MEMBERS", 3)
    members = []
    for segment in range(4):
        info = tarfile.TarInfo(f"segments/{segment}/manifest.json")
        info.size = 2
        members.append((info, b"{}"))
    message = refused_upload(api, collection, tar_of(*members), tmp_path)
    assert "more than 3 members" in message
