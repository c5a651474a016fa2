"""Bounds on what one HTTP connection may hold: header and body read timeouts, header size.

uvicorn (0.55, both its httptools and h11 protocols) arms a timer only *after* a response:
a connection that sends nothing, or trickles its request head a byte at a time, is kept
forever. Measured against ``quiver serve`` before this module: an idle connection and one
sending a header line every second were both still open after 40 s; 1,100 of them used up
the process's file descriptors and locked every client out before authentication.

:class:`GuardedHttpProtocol` is uvicorn's httptools protocol plus one watchdog timer per
connection (nginx's ``client_header_timeout`` / ``client_body_timeout`` semantics):

- the request head must arrive in full within ``header_timeout_s`` of the connection opening
  or of the previous response ending; otherwise 408 and close;
- while a body is incomplete, the client may not go silent for more than ``body_timeout_s``
  (time the server itself stops reading, because the app is busy, does not count); otherwise
  the connection is closed and the route sees a disconnect;
- a request head over ``max_header_bytes`` gets 431 and close.

Over ``max_connections``, a new connection evicts the one that has waited longest for a
request head (idle, or trickling one), so slow clients cannot keep new ones out. When every
connection has a request in flight, uvicorn's ``limit_concurrency`` answers each further
request 503 at once (``cli.py``), and connections beyond twice the limit are closed on
arrival so file descriptors cannot run out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from server.api.direct_lane import LaneCall, lane_for
from server.api.envelope import error_body

REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_connections: int

    @property
    def tick_s(self) -> float:
        """How often a connection's watchdog looks; a timeout fires at most this late."""
        return max(0.05, min(1.0, self.header_timeout_s / 4, self.body_timeout_s / 4))


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read timeouts; see the module docstring."""

    limits: ClassVar[ConnectionLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since: float | None = self.loop.time()
        self._head_bytes = 0
        self._body_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._lane_call: LaneCall | None = None  # taken by the direct lane, body incomplete
        if len(self.connections) > self.limits.max_connections:
            self._evict_longest_waiting()
        if len(self.connections) > 2 * self.limits.max_connections:
            transport.abort()  # all busy and far over the limit: keep file descriptors free
            return
        self._watchdog = self.loop.call_later(self.limits.tick_s, self._watch)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_since is not None:
            self._head_bytes += len(data)
        if self._body_since is not None:
            self._body_since = self.loop.time()
        super().data_received(data)
        if self._head_since is not None and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"Request head over {self.limits.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._head_bytes = 0
        self._body_since = self.loop.time()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope["method"] != "HEAD":  # HEAD writes no body
            cycle.transport = cast(asyncio.Transport, HeadWithBody(cycle.transport))

    def on_message_complete(self) -> None:
        self._body_since = None
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            self._await_head()  # answered before its body ended: the next head starts now
        call, self._lane_call = self._lane_call, None
        if call is not None:
            call.run()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._lane_call is not None:  # no ASGI receive() will resume reading for it
            self.flow.resume_reading()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """uvicorn starts a request here, at its head or once the connection's previous
        answer is out (pipelining): the direct lane may answer it instead."""
        lane = lane_for(self.app) if app is self.app else None
        taken = None if lane is None else lane.take(cast(dict[str, Any], cycle.scope))
        if lane is None or taken is None:
            super()._start_asgi_task(cycle, app)
            return
        fallback = partial(super()._start_asgi_task, cycle, app)
        call = LaneCall(lane, taken, cycle, fallback, self.tasks)
        if cycle.more_body:
            self._lane_call = call  # run at on_message_complete
        else:
            call.run()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A body still arriving after an early answer (a refusal) is not a slow head.
        if self._body_since is None and (self.cycle is None or self.cycle.response_complete):
            self._await_head()

    def _await_head(self) -> None:
        self._head_since = self.loop.time()
        self._head_bytes = 0

    def _watch(self) -> None:
        self._watchdog = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._head_since is not None and now - self._head_since > self.limits.header_timeout_s:
            self._refuse(408, f"Request head not received within {self.limits.header_timeout_s} s")
            return
        if self._body_since is not None:
            if self.flow.read_paused:  # the app is not reading: not the client's delay
                self._body_since = now
            elif now - self._body_since > self.limits.body_timeout_s:
                self.transport.close()
                return
        self._watchdog = self.loop.call_later(self.limits.tick_s, self._watch)

    def _evict_longest_waiting(self) -> None:
        """Over the limit, the connection that has waited longest for a request head (idle,
        or trickling one) makes room: slow clients cannot keep new ones out."""
        waiting = [
            other
            for other in self.connections
            if isinstance(other, GuardedHttpProtocol)
            and other is not self
            and other._head_since is not None
            and not other.transport.is_closing()
        ]
        if waiting:
            oldest = min(waiting, key=lambda other: other._head_since or 0.0)
            oldest._refuse(503, "Too many connections: the longest-idle one is closed")

    def _refuse(self, status: int, message: str) -> None:
        """Answer in Qdrant's envelope and close; only called while no request is in flight."""
        if self.transport.is_closing():
            return
        body = orjson.dumps(error_body(message, 0.0))
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, REASONS[status])
        head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        self.transport.write(head + body)
        self.transport.close()


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
JOINED_BODY_BYTES = 256 * 1024
"""A body up to this size is copied behind its head; a larger one follows it."""


class HeadWithBody:
    """One response's view of the connection: its head is held until the first body
    write and leaves with it, in one write. uvicorn writes the head at
    ``http.response.start`` and the body at ``http.response.body``: two system calls and
    two TCP segments for every small answer, which was the largest piece of the event
    loop's time per single-vector query (profiled under ``wrk`` at one connection)."""

    __slots__ = ("_head", "_held", "_transport")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._head: bytes | None = None
        self._held = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held and data != CONTINUE:  # the first write is the response head
            self._held = True
            self._head = bytes(data)
            return
        if self._head is not None:
            head, self._head = self._head, None
            if len(data) <= JOINED_BODY_BYTES:
                # one write(): one system call, one TCP segment for a small answer
                self._transport.write(head + data)
                return
            self._transport.write(head)
        self._transport.write(data)

    def close(self) -> None:
        """A response cut short (the app failed after its head): the head still goes."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to these limits."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})
