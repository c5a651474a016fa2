"""The lean layers' requests answered by the HTTP protocol itself, below ASGI (issue 20).

A plain query or small write through the ASGI stack costs the event loop more than its
answer: the request's task, nine middleware calls each way (uvicorn's proxy headers,
Starlette's error layers, the front door, ``QuiverMiddleware``, the lean layer), the
receive and send messages, a future and the CPU limiter's cancel scope. Profiled under
``wrk`` on single-vector queries, that walk was most of the loop's time per request
that was not the socket write itself.

``GuardedHttpProtocol`` asks :class:`DirectLane` at each request head whether it takes
the request. It does when a lean layer (``fast_search.py``, ``fast_write.py``) matches
it and every layer above would pass it on untouched: the Host allow-list admits it, no
``Origin`` header (the CORS and cross-origin layers act only on those), no ``Expect`` or
chunked body, and ``QuiverMiddleware.admits`` it (credentials, media type, a declared
length within the limit). A gate of the worker processes (``workers/owner.py``,
``reader.py``, ADR 0013) is asked the same question (:class:`Gate`): a reader's lets
through a point read its own view answers (else the owner does), and each adds its
headers to the answer (the owner's also bumps the write generation) through the same
wrapper of ``send`` it uses in ASGI. When its body has arrived, the layer's own steps run as in
ASGI: the hand shape check, ``prepare`` (the route's parse and checks), the work (on the
event loop itself when the layer vouches for it and no inline work was slow lately, else
on the layer's threads under the app's CPU limiter; a write returns before its fsync and
is answered once ``GroupSync.when_durable`` calls back: ADR 0016's last amendment), its
renderer; the response goes out through
uvicorn's own ``RequestResponseCycle.send`` (keep-alive, ``connection: close``, access
log), the request metrics through ``QuiverMiddleware.record``, errors through the app's
exception table; a full CPU limiter is waited for in its queue. A request it does not
take, or a body of another shape, goes to the ASGI app as before, its body already in the
cycle. Pipelined requests
keep their order: uvicorn starts a connection's next request only after the previous
answer (``_start_asgi_task``), and that is where the lane is asked.
``QUIVER_DIRECT_LANE=false`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from anyio import WouldBlock
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from server.api.lean_layer import LeanLayer, error, headers_of, plain_json
from server.api.middleware import Message, QuiverMiddleware, Scope, Send, header_map
from server.api.origins import CORSMiddleware, CrossOriginGuard, HostAllowList, header
from server.errors import StorageError
from server.storage.group_commit import Owed, deferred_sync

log = logging.getLogger(__name__)

PASSING = frozenset(
    {"ProxyHeadersMiddleware", "ServerErrorMiddleware", "ExceptionTelemetryMiddleware"}
    | {"AppBodyLimitMiddleware"}
)
"""Layers above the lean ones that do nothing to a lean request that is answered (no
proxy header is read by a lean route; their error handling sees only what escapes the
lean layer's own). Any other layer in the stack keeps every request on the ASGI path."""
REFUSED_HEADERS = (b"expect", b"transfer-encoding")
INLINE_SLOW_S = 0.01
INLINE_STALL_S = 0.05
INLINE_PAUSE_S = 1.0
"""Work run on the event loop (no thread hop) that took more than ``INLINE_SLOW_S`` of
the loop thread's CPU (a filter on an unindexed key of a big collection, say), or held
the loop more than ``INLINE_STALL_S`` (waiting for the disk or a lock), sends the
lane's work to the threads for ``INLINE_PAUSE_S``: the loop is never held long more
than once in a while. CPU time, not wall time, for the first: while the threads drain
after a pause, inline work waits its turns at the GIL, and counted in wall time that
wait kept tripping the guard, so the lane stayed on the threads under load."""


Answering = Callable[[Send], Send]
"""How a gate wraps a request's ``send``: the headers (and counters) it adds to the answer."""


@runtime_checkable
class Gate(Protocol):
    """A layer that hands some requests on to ``app`` with only its answer wrapped (the
    worker processes' gates, ADR 0013). Its rules live in ``admit``, which its own
    ``__call__`` uses too, so the lane and the ASGI path cannot drift apart."""

    app: Any

    def admit(self, scope: Scope) -> Answering | None:
        """The wrapper of ``send`` for a request this layer would hand to ``app``, or
        None: it answers the request otherwise (forwards it, say)."""


Taken = tuple[LeanLayer[Any], Any, tuple[Answering, ...]]
"""A request the lane takes: its lean layer, the layer's match, the gates' wrappers
(outermost first)."""


@dataclass(slots=True)
class DirectLane:
    """Which requests the protocol may answer itself, and the layers that answer them."""

    app: Starlette
    guard: QuiverMiddleware
    layers: tuple[LeanLayer[Any], ...]
    hosts: HostAllowList | None
    origins: bool
    """A CORS or cross-origin layer is on: a request with an ``Origin`` takes ASGI."""
    gates: tuple[Gate, ...] = ()
    inline_after: float = 0.0
    """``time.monotonic()`` before which no work runs on the event loop."""

    def take(self, scope: dict[str, Any]) -> Taken | None:
        """At the request head: the lean layer, its match and the gates' wrappers, or
        None (the ASGI path, also for a request this check fails on: a parser callback
        must not raise)."""
        try:
            return self._take(scope)
        except Exception:
            log.exception("direct lane: request left to the ASGI app")
            return None

    def _take(self, scope: dict[str, Any]) -> Taken | None:
        scope["app"] = self.app  # as Starlette sets it; the layers read their settings there
        for layer in self.layers:
            match = layer.match(scope)
            if match is not None:
                break
        else:
            return None
        headers = header_map(scope)  # one walk for these checks and the guard's
        if any(name in headers for name in REFUSED_HEADERS):
            return None
        if self.origins and b"origin" in headers:
            return None
        if self.hosts is not None and not self.hosts.allowed(header(scope, b"host")):
            return None
        if not self.guard.admits(scope, headers):
            return None
        answering = []
        for gate in self.gates:  # last: a reader's check reads its view's point store
            wrap = gate.admit(scope)
            if wrap is None:
                return None
            answering.append(wrap)
        return layer, match, tuple(answering)


_LANES: weakref.WeakKeyDictionary[Any, DirectLane | None] = weakref.WeakKeyDictionary()


def lane_for(app: Any) -> DirectLane | None:
    """The lane for uvicorn's loaded app (found once the app has built its stack)."""
    try:
        return _LANES[app]
    except KeyError:
        pass
    lane = find_lane(app)
    if lane is not None or _built(app):
        _LANES[app] = lane
    return lane


def _built(app: Any) -> bool:
    while app is not None and not isinstance(app, Starlette):
        app = getattr(app, "app", None)
    return app is not None and app.middleware_stack is not None


def find_lane(app: Any) -> DirectLane | None:
    """The lane for uvicorn's loaded app, or None: switched off, or a layer in the stack
    that the lane does not know to pass lean requests on untouched."""
    layers: list[LeanLayer[Any]] = []
    gates: list[Gate] = []
    found: dict[type, Any] = {}
    starlette: Starlette | None = None
    while app is not None:
        if isinstance(app, Starlette):
            if not app.state.settings.direct_lane or _wraps_requests(app):
                return None
            starlette, app = app, app.middleware_stack
            continue
        if isinstance(app, LeanLayer):
            layers.append(app)
        elif isinstance(app, QuiverMiddleware | HostAllowList | CrossOriginGuard | CORSMiddleware):
            found[type(app)] = app
        elif type(app).__name__ == "ExceptionMiddleware":
            break  # the router's side: below the lean layers
        elif isinstance(app, Gate):
            gates.append(app)
        elif type(app).__name__ not in PASSING:
            return None
        app = getattr(app, "app", None)
    guard = found.get(QuiverMiddleware)
    if starlette is None or guard is None or not layers:
        return None
    origins = CORSMiddleware in found or CrossOriginGuard in found
    hosts = found.get(HostAllowList)
    return DirectLane(starlette, guard, tuple(layers), hosts, origins, tuple(gates))


def _wraps_requests(app: Starlette) -> bool:
    """The app itself changes requests (a root path) or wraps them (FastAPI's own
    telemetry, when configured): every request then takes the ASGI path."""
    native = getattr(app, "_native_telemetry", None)
    return bool(getattr(app, "root_path", None)) or (native is not None and native.enabled())


class LaneCall:
    """One request the lane took: its body's check, its work, its answer."""

    __slots__ = ("_fallback", "_render", "_tasks", "cycle", "lane", "layer", "match", "send")

    def __init__(
        self,
        lane: DirectLane,
        taken: Taken,
        cycle: RequestResponseCycle,
        fallback: Callable[[], None],
        tasks: set[Any],
    ) -> None:
        self.lane = lane
        self.layer, self.match, answering = taken
        self.cycle = cycle
        self.send = cast(Send, cycle.send)
        for wrap in answering:  # the outermost gate's wrapper nearest the socket
            self.send = wrap(self.send)
        self._fallback = fallback
        self._tasks = tasks
        self._render: Callable[[Any], bytes] | None = None

    def run(self) -> None:
        """With the whole body: answer it, or hand it to the ASGI app."""
        scope: Any = self.cycle.scope
        shape = self._shape()
        if shape is None:
            self._fallback()  # the body is still in the cycle
            return
        scope["route"] = self.layer.label(self.match)
        try:
            work, self._render = self.layer.prepare(scope, self.match, shape)
        except Exception as exc:
            self._fail(exc)
            return
        if self._inlined(shape):
            self._inline(work)  # no thread hop, no token: the loop is one worker more
        elif _borrow(self.lane.app.state.cpu_limiter, self):
            self.layer.threads(scope).submit(self._deferring(work), self._done)
        else:  # the CPU limiter is full: wait in its queue as the ASGI path would
            self._spawn(self._queued(work))

    def _inlined(self, shape: Any) -> bool:
        """Run on the event loop: the layer vouches for the work and no inline work was
        slow lately. Whatever else is in flight, and without a CPU-limiter token (a
        full limiter, with waiters queued behind its threads, would otherwise keep every
        request on the threads for as long as the load lasts): with 32 clients mixing
        small writes and queries (``bench_mixed.py --quick``, alternating 15 s slices,
        session 41), all of it on the loop served 1.46-1.96x the requests/s of the rule
        before (inline only while no other work held a token, so most of it hopped
        threads), and a loop that hands only some work to threads did no better than
        that rule: their turns at the GIL are what it costs."""
        return time.monotonic() >= self.lane.inline_after and self.layer.inline(self.match, shape)

    def _inline(self, work: Callable[[], Any]) -> None:
        """Run ``work`` on the event loop; a write returns before its fsync, as on a
        thread (``_deferring``), so the loop never waits for the disk."""
        work = self._deferring(work)
        started, cpu = time.monotonic(), time.thread_time()
        result, failure = None, None
        try:
            result = work()
        except BaseException as exc:  # answered as a worker thread's failure is
            failure = exc
        ended = time.monotonic()
        if time.thread_time() - cpu > INLINE_SLOW_S or ended - started > INLINE_STALL_S:
            self.lane.inline_after = ended + INLINE_PAUSE_S
        self._settle(result, failure)

    async def _queued(self, work: Callable[[], Any]) -> None:
        await self.lane.app.state.cpu_limiter.acquire_on_behalf_of(self)
        self.layer.threads(cast(Scope, self.cycle.scope)).submit(self._deferring(work), self._done)

    def _deferring(self, work: Callable[[], Any]) -> Callable[[], Any]:
        """``work``, for a layer whose writes defer their fsync (``group_commit``), run
        so that it returns before the fsync: the loop goes on at once (or, on a thread,
        the token is given back in ``_done``), and the answer waits for the disk in
        :meth:`_owed`, with no token and no thread."""
        if not self.layer.defers_durability:
            return work

        def deferred() -> Any:
            with deferred_sync() as owed:
                try:
                    result = work()
                except Exception as exc:
                    if not owed:
                        raise
                    return _Owed(None, exc, owed)  # answered once what it wrote is durable
            return _Owed(result, None, owed) if owed else result

        return deferred

    def _shape(self) -> Any:
        """The body's wire model(s) when its shape is plain, else None (the ASGI path)."""
        try:
            raw = plain_json(self.cycle.scope, bytes(self.cycle.body))  # type: ignore[arg-type]
            return None if raw is None else self.layer.shape(self.match, raw)
        except Exception:  # a parser callback must not raise: the full route answers
            log.exception("direct lane: body left to the ASGI app")
            return None

    def _done(self, result: Any, exc: BaseException | None) -> None:
        """A worker thread's work ended: its token goes back, then as inline work."""
        self.lane.app.state.cpu_limiter.release_on_behalf_of(self)
        self._settle(result, exc)

    def _settle(self, result: Any, exc: BaseException | None) -> None:
        if isinstance(result, _Owed):
            self._owed(result)
            return
        self._answer(result, exc)

    def _owed(self, outcome: _Owed) -> None:
        """Answer once every store the write committed to has it on disk (or failed)."""
        loop = asyncio.get_running_loop()
        left = [len(outcome.owed)]

        def settled(error: StorageError | None) -> None:
            if error is not None and outcome.exc is None:
                outcome.exc = error
            left[0] -= 1
            if not left[0]:
                self._answer(outcome.result, outcome.exc)

        def durable(error: StorageError | None) -> None:  # on the flushing thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settled, error)

        for store, target in outcome.owed:
            store.when_durable(target, durable)

    def _answer(self, result: Any, exc: BaseException | None) -> None:
        if self.cycle.disconnected:
            return
        if exc is None and self._render is not None:
            try:
                content = self._render(result)
            except Exception as failure:
                exc = failure
        if isinstance(exc, Exception):
            self._fail(exc)
        elif exc is not None:  # not an error an answer is made for (as in ASGI)
            log.error("direct lane request failed", exc_info=exc)
            self.cycle.transport.close()
        else:
            drive(self._respond(content))

    async def _respond(self, content: bytes) -> None:
        await self.send(
            {"type": "http.response.start", "status": 200, "headers": headers_of(content)}
        )
        await self.send({"type": "http.response.body", "body": content})
        self.lane.guard.record(cast(Scope, self.cycle.scope), 200)

    def _fail(self, exc: Exception) -> None:
        """The app's exception table answers, in a task (rare: its handlers are async)."""
        self._spawn(self._error(exc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A task of this request, awaited by uvicorn's graceful shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _error(self, exc: Exception) -> None:
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await self.send(message)

        scope: Any = self.cycle.scope
        try:
            await error(scope, recording, exc)
        except Exception:
            log.exception("direct lane error answer failed")
            self.cycle.transport.close()
        finally:
            self.lane.guard.record(scope, status)


@dataclass(slots=True)
class _Owed:
    """A deferred write's outcome, and the fsyncs its answer waits for."""

    result: Any
    exc: Exception | None
    owed: Owed


def _borrow(limiter: Any, borrower: object) -> bool:
    """A token of the app's CPU limiter now, or False (full, or others wait for one)."""
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
    except WouldBlock:
        return False
    return True


def drive(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that almost never waits (a response write) without a task: to its
    end now, or, when it awaits (the socket's buffer is full), on again each time what it
    awaits is done."""
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    waited.add_done_callback(lambda _: drive(coro))
