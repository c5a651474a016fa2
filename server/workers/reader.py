"""A reader worker: point reads from its own view, everything else to the owner.

Before each read the reader compares the shared generation with the one its view
was loaded at. Equal: no write was acknowledged since, so the view holds every
acknowledged write and the read is answered here. Different: the read is forwarded
to the owner (always current), and a new view is loaded in the background; once
it is in place, reads are answered here again. The generation is read *before* a
view is loaded, so a view is never credited with writes it may not hold.

Loads are paced by what they cost (:func:`reload_gap`) while writes keep coming: under a
steady stream of them every view is stale about as soon as it is in place, and a large
collection takes seconds of CPU to load again, which a reader loading back to back took
from the owner. Once the writes stop, the next load starts without that wait.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from index.native_threads import single_threaded_numpy_blas
from server.engine.collection import Collection
from server.engine.limits import EngineLimits
from server.engine.native_memory import release_free_memory
from server.settings import Settings
from server.workers.generation import Generation
from server.workers.owner import GENERATION_HEADER, WORKER_HEADER
from server.workers.proxy import OwnerProxy
from server.workers.routing import local_read
from server.workers.view import ReadView, open_view

log = logging.getLogger(__name__)

MIN_RELOAD_GAP_S = 0.2
"""Under a stream of writes, a reader loads a new view at most this often; reads in
between are forwarded (correct, only slower)."""

RELOAD_SHARE = 0.1
"""The most of a reader's time that loading views may take (see :func:`reload_gap`)."""

QUIET_S = 0.5
"""Writes that stopped this long ago (and for longer than the last load took) end the
wait of :func:`reload_gap`: pacing is for a stream of writes, not for the reads after
a burst of them."""
QUIET_POLL_S = 0.1

FREE_TRIES = 10
FREE_RETRY_S = 1.0
"""A replaced view still in use by a request is freed on a later try (``_free``)."""


class ReaderGate:
    """ASGI app of a reader: the full app for local reads, the proxy for the rest."""

    def __init__(
        self, app: FastAPI, generation: Generation, proxy: OwnerProxy, worker: int
    ) -> None:
        self.app = app
        self._generation = generation
        self._proxy = proxy
        self._worker = str(worker).encode()
        self.loaded = -1
        """The generation the current view was loaded at (-1: none yet)."""
        self._reloading: asyncio.Task[None] | None = None
        self._next_reload = 0.0
        """``time.monotonic()`` before which no new view is loaded (:func:`reload_gap`),
        unless the writes have stopped (:meth:`_quiet`)."""
        self._last_cost = 0.0
        self._seen = -1
        self._moved_at = time.monotonic()
        """The last generation this reader saw, and when it saw it change."""
        app.router.lifespan_context = partial(_reader_lifespan, gate=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answering = self.admit(scope)
        if answering is None:
            await self._proxy.forward(scope, receive, send)
            return
        await self.app(scope, receive, answering(send))

    def admit(self, scope: Scope) -> Callable[[Send], Send] | None:
        """The tagging of the answer when this reader answers the request from its own
        view, or None: the owner answers it. The direct lane (``api/direct_lane.py``)
        asks this too, so its requests follow the same rule."""
        name = local_read(scope["method"], scope["path"])
        if name is None or not self._local(name):
            return None
        return partial(self._tagged, str(self.loaded).encode())

    def _fresh(self) -> bool:
        if self._observe() == self.loaded:
            return True
        self._start_reload()
        return False

    def _observe(self) -> int:
        """The shared generation now, noting when it last moved."""
        generation = self._generation.read()
        if generation != self._seen:
            self._seen, self._moved_at = generation, time.monotonic()
        return generation

    def _quiet(self) -> bool:
        """No write acknowledged for ``QUIET_S`` and for longer than the last load took:
        a load now is likely to hold, and to stay current."""
        self._observe()
        return time.monotonic() - self._moved_at >= max(QUIET_S, self._last_cost)

    def _current(self, name: str) -> bool:
        if self._view().current(name):
            return True
        if self._view().has(name):
            self._start_reload()  # a write that did not pass the owner's gate (gRPC)
        return False

    def _local(self, name: str) -> bool:
        """Whether this reader answers a read of ``name`` from its own view."""
        return self._fresh() and self._current(name) and self._view().answers(name)

    def _view(self) -> ReadView:
        view: ReadView = self.app.state.engine
        return view

    def _tagged(self, loaded: bytes, send: Send) -> Send:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (WORKER_HEADER, self._worker),
                    (GENERATION_HEADER, loaded),
                ]
            await send(message)

        return tagged

    def _start_reload(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            return
        self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> None:
        """Load a new view (in a thread) and put it in place; a failure (a collection
        changing under the load, a segment replaced mid-read) keeps the old one and
        leaves the next stale read to try again. Either way the next load waits for
        :func:`reload_gap` of what this one cost, or until the writes stop."""
        while (wait := self._next_reload - time.monotonic()) > 0 and not self._quiet():
            await asyncio.sleep(min(wait, QUIET_POLL_S))
        generation = self._observe()
        settings: Settings = self.app.state.settings
        load = partial(_load_view, settings.data_dir, _limits(settings), self._view())
        view, cost = await anyio.to_thread.run_sync(load)
        if view is not None:
            replaced = _dropped(self._view(), view)
            self.app.state.engine = view
            self.loaded = generation
            started = time.thread_time()
            _free(replaced, FREE_TRIES)
            cost += time.thread_time() - started
        self._last_cost = cost
        self._next_reload = time.monotonic() + reload_gap(cost)


def reload_gap(cost_s: float) -> float:
    """Seconds from the end of one view load to the start of the next while writes keep
    coming, for a load that took ``cost_s`` of CPU: at least ``MIN_RELOAD_GAP_S``, and
    long enough that loading takes at most ``RELOAD_SHARE`` of the reader's time (once the
    writes stop, ``ReaderGate._quiet`` ends the wait early). A load that failed counts too:
    under a steady stream of writes every try is torn (``view.open_consistent`` loads
    the collection up to three times), and a reader retrying every 0.2 s spent over half
    a core on loads that never finished (20k GloVe-50 under the mixed workload)."""
    return max(MIN_RELOAD_GAP_S, cost_s * (1 - RELOAD_SHARE) / RELOAD_SHARE)


def _load_view(
    data_dir: Path, limits: EngineLimits, previous: ReadView
) -> tuple[ReadView | None, float]:
    """A new view (None: it could not be loaded) and the CPU this thread spent on it."""
    started = time.thread_time()
    try:
        view: ReadView | None = open_view(data_dir, limits, previous)
    except Exception:
        log.warning("reader view not reloaded; reads go to the owner", exc_info=True)
        view = None
    return view, time.thread_time() - started


def _dropped(old: ReadView, new: ReadView) -> list[weakref.ref[Collection]]:
    """The collections of ``old`` that ``new`` did not keep."""
    return [
        weakref.ref(old.get(name))
        for name in old.names()
        if not new.has(name) or new.get(name) is not old.get(name)
    ]


def _free(replaced: list[weakref.ref[Collection]], tries: int) -> None:
    """Free the collections a new view replaced now: each is a reference cycle, which
    would keep its private memory until a full collection happens to run. A request
    still reading one keeps it alive; then try again a little later."""
    gc.collect()
    release_free_memory()  # and hand their heap back
    if any(ref() is not None for ref in replaced) and tries > 1:
        asyncio.get_running_loop().call_later(FREE_RETRY_S, _free, replaced, tries - 1)


@asynccontextmanager
async def _reader_lifespan(app: Any, *, gate: ReaderGate) -> AsyncIterator[None]:
    """The reader's lifespan in place of the owner's: a view instead of the engine; no
    build worker, no gRPC."""
    single_threaded_numpy_blas()
    settings: Settings = app.state.settings
    app.state.cpu_limiter = anyio.CapacityLimiter(settings.search_threads)
    app.state.engine = ReadView({}, {}, _limits(settings))
    await gate.reload()
    log.info("quiver reader ready", extra={"generation": gate.loaded})
    try:
        yield
    finally:
        await gate._proxy.aclose()
        app.state.engine.close()
        app.state.engine = None


def _limits(settings: Settings) -> EngineLimits:
    return EngineLimits(settings.max_collections, settings.max_request_result_bytes)
