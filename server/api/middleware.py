"""Pure-ASGI middleware: request timing, access control, media type, body size limit.

Written against raw ASGI (not ``BaseHTTPMiddleware``) so it adds no per-request
task. The request is matched against the route table (``api/access.py``) before any
route runs: without valid credentials it gets 401, with credentials that do not reach
the route (a read-only key writing, a JWT for another collection) 403, and the caller's
grant is left in ``request.state`` for the routes that filter by it (listing
collections). A body of a type its route does not take is refused with 415 (a web page
can send form and text bodies cross-site, never ``application/json``). A declared
``Content-Length`` over the limit is refused before any byte is read; a streamed
(chunked) body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from enum import Enum
from typing import Any

import orjson

from server.api.access import (
    COLLECTION_PARAM,
    GRANT_STATE,
    Body,
    Need,
    RouteMatch,
    match_route,
    media_type_error,
)
from server.api.credentials import Authenticator, Denied
from server.api.envelope import error_body
from server.api.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STREAMING_BODIES = frozenset({Body.BULK, Body.MULTIPART})
"""Routes that consume their body as a stream, in bounded chunks, whatever its size (bulk
loads, snapshot uploads): no body limit."""


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (the last of repeated ones)."""
    return {k.lower(): v for k, v in scope.get("headers", [])}


class Passed(Enum):
    """How ``QuiverMiddleware`` passes a request it does not refuse on to the app."""

    STREAMED = "streamed"  # a bulk or multipart body, read by its route as it comes
    LIMITED = "limited"  # any other body, cut off at the size limit


class QuiverMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: Authenticator,
        max_body: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = started
        if self.metrics is None:
            await self._handle(scope, receive, send, started)
            return
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, recording, started)
        finally:
            self.record(scope, status)

    def record(self, scope: Scope, status: int) -> None:
        """The request metrics of an answered request (its route label, status, time)."""
        if self.metrics is not None:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - scope["state"]["started"]
            self.metrics.observe_request(route, scope["method"], status, seconds)

    def admits(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """Whether this layer would pass the request on untouched, its body declared and
        within the limit: what ``direct_lane.py`` asks before answering it below ASGI
        (anything else takes this layer's own path). ``headers``: the request's, by lower
        case name (``header_map``), which the lane has built already. Stamps the start
        and the grant."""
        scope["state"]["started"] = time.perf_counter()
        route = match_route(scope["method"], scope["path"])
        length = headers.get(b"content-length")
        if route is None or length is None or not length.isdigit():
            return False
        return self._verdict(scope, headers, route) is Passed.LIMITED

    async def _handle(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        headers = header_map(scope)
        verdict = self._verdict(scope, headers, match_route(scope["method"], scope["path"]))
        if verdict is Passed.STREAMED:
            await self.app(scope, receive, send)
        elif verdict is Passed.LIMITED:
            await self.app(scope, self._limited(scope, receive), send)
        else:
            await reject(send, *verdict, started)

    def _verdict(
        self, scope: Scope, headers: dict[bytes, bytes], route: RouteMatch | None
    ) -> tuple[int, str] | Passed:
        """What this layer does with a request, its checks in their one order: refused
        (401 / 403 / 415, then 413 for a declared length over the limit), or passed on
        (a streaming body as it comes, any other cut at the limit)."""
        refusal = self._refusal(scope, headers, route)
        if refusal is not None:
            return refusal
        if route is not None and route.rule.body in STREAMING_BODIES:
            return Passed.STREAMED
        if self._over_limit(headers.get(b"content-length")):
            return 413, self._too_large()
        return Passed.LIMITED

    def _over_limit(self, length: bytes | None) -> bool:
        """A declared ``Content-Length`` over the limit (refused before any byte is read)."""
        return length is not None and length.isdigit() and int(length) > self.max_body

    def _refusal(
        self, scope: Scope, headers: dict[bytes, bytes], route: RouteMatch | None
    ) -> tuple[int, str] | None:
        """401 / 403 / 415 with its message, or None to go on; the caller's grant is left
        in the request state."""
        need = Need.ANY if route is None else route.rule.need  # 404 / 405 need credentials too
        if need is not Need.OPEN:
            grant = self.auth.authenticate(headers)
            if isinstance(grant, Denied):
                return 401, grant.message
            collection = None if route is None else route.path_params.get(COLLECTION_PARAM)
            refused = grant.refusal(need, collection)
            if refused is not None:
                return 403, refused
            scope["state"][GRANT_STATE] = grant
        if route is not None:
            refused = media_type_error(route.method, headers, route.rule)
            if refused is not None:
                return 415, refused
        return None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """Cut a streamed body off at the limit, leaving unparseable JSON and a flag that
        ``api/errors.py`` turns into a 413, so no route ever sees a partial body."""
        seen = 0

        async def guarded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    scope["state"]["body_too_large"] = self.max_body
                    return {"type": "http.request", "body": b"\x00", "more_body": False}
            return message

        return guarded

    def _too_large(self) -> str:
        return f"Request body exceeds the limit of {self.max_body} bytes"


async def reject(send: Send, status: int, message: str, started: float | None = None) -> None:
    """Answer in Qdrant's error envelope without running the app."""
    seconds = 0.0 if started is None else time.perf_counter() - started
    body = orjson.dumps(error_body(message, seconds))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
