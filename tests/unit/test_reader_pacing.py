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
from server.workers.reader import MIN_RELOAD_GAP_S, RELOAD_SHARE, ReaderGate, reload_gap
from server.workers.view import ReadView, TornView

BURN_S = 0.05
"""CPU each fake load spends, in its own thread."""


def test_a_cheap_load_waits_the_minimum_and_a_costly_one_keeps_loading_to_its_share() -> None:
    assert reload_gap(0.001) == MIN_RELOAD_GAP_S
    for cost in (0.5, 1.7, 4.0):
        assert cost / (cost + reload_gap(cost)) == pytest.approx(RELOAD_SHARE)


@pytest.mark.parametrize("torn", [True, False], ids=["failed", "loaded"])
def test_stale_reads_start_no_load_before_the_last_ones_cost_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torn: bool
) -> None:
    """Stale reads ask for a load every 10 ms for 0.4 s; the first load costs 50 ms of
    CPU, so the next may start only 0.45 s after it ended, whether it failed or not."""
    loads: list[float] = []

    def load(data_dir: Path, limits: EngineLimits, previous: ReadView) -> ReadView:
        loads.append(time.monotonic())
        end = time.thread_time() + BURN_S
        while time.thread_time() < end:
            pass
        if torn:
            raise TornView("the collection kept changing while it was read")
        return ReadView({}, {}, limits)

    monkeypatch.setattr(reader, "open_view", load)
    gate = ReaderGate(_app(tmp_path), Generation(), OwnerProxy(""), 1)

    async def stale_reads() -> None:
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            gate._start_reload()
            await asyncio.sleep(0.01)
        assert gate._reloading is not None
        gate._reloading.cancel()

    asyncio.run(stale_reads())
    assert len(loads) == 1
    assert gate.loaded == (-1 if torn else 0)
    assert gate._next_reload - loads[0] >= reload_gap(BURN_S)


def _app(data_dir: Path) -> Any:
    """What a reader's gate reads of its app: settings, the current view, a router."""
    settings = Settings(data_dir=data_dir)
    state = SimpleNamespace(settings=settings, engine=ReadView({}, {}, EngineLimits(10, 1 << 20)))
    return SimpleNamespace(state=state, router=SimpleNamespace(lifespan_context=None))
