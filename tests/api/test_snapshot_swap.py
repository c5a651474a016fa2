"""A recovered snapshot is opened once, in its temporary folder, then moved into place
(``Engine.recover``, ``Collection.moving_to``): the moved collection writes to its
final folder and keeps nothing open in the temporary one, and a move that fails puts
the old collection back, unchanged and writable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import server.engine.engine as engine_module
from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.payload import PayloadSelector

CONFIG = CollectionConfig.model_validate(
    {"vectors": {"": {"size": 2, "distance": "Dot"}}, "named_vectors": False}
)


def _open_files_under(root: Path) -> list[str]:
    """Files this process holds open inside ``root`` (SQLite databases, WAL files)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "collections").iterdir() if p.name.startswith(".")]


def _engine_with_snapshot(root: Path) -> tuple[Engine, Path]:
    """Collection ``a`` holding point 1 in its snapshot, and point 2 written after it."""
    engine = Engine(root)
    engine.create("a", CONFIG)
    engine.get("a").upsert([1], [[1.0, 0.0]], [{"n": 1}])
    archive = engine.snapshot_path("a", engine.create_snapshot("a").name)
    engine.get("a").upsert([2], [[0.0, 1.0]], [{"n": 2}])
    return engine, archive


def _ids(engine: Engine) -> list[object]:
    page = engine.get("a").scroll(None, 10, None, PayloadSelector.of("none"), False)
    return [record.id for record in page.records]


def test_a_recovered_collection_lives_in_its_final_folder(tmp_path: Path) -> None:
    engine, archive = _engine_with_snapshot(tmp_path)
    engine.recover("a", archive)
    assert _ids(engine) == [1]
    engine.get("a").upsert([3], [[1.0, 1.0]], [None])
    temp_files = [f for f in _open_files_under(tmp_path) if "/." in f]
    assert (temp_files, _leftovers(tmp_path)) == ([], [])
    engine.close()
    reopened = Engine(tmp_path)
    try:
        assert _ids(reopened) == [1, 3]
    finally:
        reopened.close()


def test_a_failed_move_puts_the_old_collection_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, archive = _engine_with_snapshot(tmp_path)

    def failing(_path: Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(engine_module, "fsync_dir", failing)  # after both renames
    with pytest.raises(OSError, match="disk gone"):
        engine.recover("a", archive)
    monkeypatch.undo()
    assert _ids(engine) == [1, 2]
    engine.get("a").upsert([3], [[1.0, 1.0]], [None])
    temp_files = [f for f in _open_files_under(tmp_path) if "/." in f]
    assert (temp_files, _leftovers(tmp_path)) == ([], [])
    engine.close()
    assert _open_files_under(tmp_path / "collections") == []
    reopened = Engine(tmp_path)
    try:
        assert _ids(reopened) == [1, 2, 3]
    finally:
        reopened.close()
