"""A reader's view loads are paced by what they cost (``workers/reader.py``): under a
steady stream of writes every load is torn or stale at once, and a reader retrying
every 0.2 s spent over half a core on loads that never finished."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from server.engine.limits import EngineLimits
from server.settings import Settings
from server.workers import reader
from server.workers.generation import Generation
from server.workers.proxy import OwnerProxy
from server.workers.reader import (
    MIN_RELOAD_GAP_S,
    QUIET_S,
    RELOAD_SHARE,
    ReaderGate,
    reload_gap,
)
from server.workers.view import ReadView, TornView

BURN_S = 0.05
"""CPU each fake load spends, in its own thread."""


def test_a_cheap_load_waits_the_minimum_and_a_costly_one_keeps_loading_to_its_share() -> None:
    assert reload_gap(0.001) == MIN_RELOAD_GAP_S
    for cost in (0.5, 1.7, 4.0):
        assert cost / (cost + reload_gap(cost)) == pytest.approx(RELOAD_SHARE)


@pytest.mark.parametrize("torn", [True, False], ids=["failed", "loaded"])
def test_while_writes_keep_coming_no_load_starts_before_the_last_ones_cost_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torn: bool
) -> None:
    """A write every 10 ms and a stale read after each, for 0.4 s; the first load costs
    50 ms of CPU, so the next may start only 0.45 s after it ended, failed or not."""
    loads: list[float] = []
    monkeypatch.setattr(reader, "open_view", _fake_load(loads, torn=torn))
    generation = Generation()
    gate = ReaderGate(_app(tmp_path), generation, OwnerProxy(""), 1)

    async def writes_and_stale_reads() -> None:
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            generation.bump()
            gate._fresh()
            await asyncio.sleep(0.01)
        _stop(gate)

    asyncio.run(writes_and_stale_reads())
    assert len(loads) == 1
    assert (gate.loaded >= 0) is not torn
    assert gate._next_reload - loads[0] >= reload_gap(BURN_S)


def test_once_writes_stop_the_next_load_does_not_wait_out_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last write of a burst lands during a load (its view is stale at once); the
    gap after a 200 ms load is 1.8 s, but with no write since, the next load starts
    after ``QUIET_S`` (the stale reads stop looking after 1.5 s)."""
    burn_s = 0.2
    loads: list[float] = []
    generation = Generation()
    monkeypatch.setattr(
        reader, "open_view", _fake_load(loads, torn=False, burn_s=burn_s, during=generation.bump)
    )
    gate = ReaderGate(_app(tmp_path), generation, OwnerProxy(""), 1)

    async def stale_reads() -> None:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and len(loads) < 2:
            gate._fresh()
            await asyncio.sleep(0.01)
        _stop(gate)

    asyncio.run(stale_reads())
    assert len(loads) == 2
    assert QUIET_S <= loads[1] - loads[0] < burn_s + reload_gap(burn_s)


def _fake_load(
    loads: list[float], *, torn: bool, burn_s: float = BURN_S, during: Any = None
) -> Any:
    """In place of ``open_view``: notes its start, spends ``burn_s`` of CPU, calls
    ``during`` on its first call (a write landing meanwhile), then fails or loads."""

    def load(data_dir: Path, limits: EngineLimits, previous: ReadView) -> ReadView:
        loads.append(time.monotonic())
        if during is not None and len(loads) == 1:
            during()
        end = time.thread_time() + burn_s
        while time.thread_time() < end:
            pass
        if torn:
            raise TornView("the collection kept changing while it was read")
        return ReadView({}, {}, limits)

    return load


def _stop(gate: ReaderGate) -> None:
    if gate._reloading is not None:
        gate._reloading.cancel()


def _app(data_dir: Path) -> Any:
    """What a reader's gate reads of its app: settings, the current view, a router."""
    settings = Settings(data_dir=data_dir)
    state = SimpleNamespace(settings=settings, engine=ReadView({}, {}, EngineLimits(10, 1 << 20)))
    return SimpleNamespace(state=state, router=SimpleNamespace(lifespan_context=None))
