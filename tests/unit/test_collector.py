"""A server process freezes what it imported, before its engine exists (collector.py)."""

from __future__ import annotations

import argparse
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import server.cli
from server.collector import freeze_imported


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Leave this test process's collector as it was."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: Any = None


def _tracked(obj: object) -> bool:
    """Whether the collector still walks ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_garbage_cycles_are_collected_and_live_objects_frozen() -> None:
    garbage, live = _Node(), _Node()
    garbage.other, live.other = _Node(), _Node()
    garbage.other.other, live.other.other = garbage, live  # two cycles
    dead = weakref.ref(garbage)
    del garbage
    frozen = freeze_imported()
    assert dead() is None, "a cycle made before the freeze must not be kept for ever"
    assert frozen == gc.get_freeze_count() > 0
    assert not _tracked(live) and not _tracked(live.other)
    made_later = _Node()
    assert _tracked(made_later), "objects made after the freeze stay collectable"


def test_one_process_freezes_the_app_before_it_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``quiver serve`` with one worker: the app's objects are frozen by the time uvicorn
    would start, and the engine (opened by the lifespan, not yet run) is not among them."""
    seen: list[tuple[int, bool]] = []

    def run(settings: Any, app: Any, sockets: Any) -> None:
        seen.append((gc.get_freeze_count(), _tracked(app)))

    monkeypatch.setenv("QUIVER_WORKERS", "1")
    monkeypatch.setattr(server.cli, "set_up_process", lambda settings: None)
    monkeypatch.setattr(server.cli, "_run", run)
    server.cli._serve(argparse.Namespace(host=None, port=None, data_dir=tmp_path / "data"))
    [(frozen, app_tracked)] = seen
    assert frozen > 10_000, "the imported app is the bulk of a process's objects"
    assert not app_tracked
