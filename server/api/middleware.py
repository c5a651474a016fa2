"""Pure-ASGI middleware: request timing, API key, media type, body size limit.

Written against raw ASGI (not ``BaseHTTPMiddleware``) so it adds no per-request
task. The request is matched against the route table (``api/access.py``) before any
route runs: a body of a type its route does not take is refused with 415 (a web page
can send form and text bodies cross-site, never ``application/json``). A declared
``Content-Length`` over the limit is refused before any byte is read; a streamed
(chunked) body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from server.api.access import Body, match_route, media_type_error
from server.api.envelope import error_body
from server.api.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
STREAMING_BODIES = frozenset({Body.BULK, Body.MULTIPART})
"""Routes that consume their body as a stream, in bounded chunks, whatever its size (bulk
loads, snapshot uploads): no body limit."""


class QuiverMiddleware:
    def __init__(
        self, app: ASGIApp, *, api_key: str | None, max_body: int, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.api_key = api_key
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
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - started
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.api_key and scope["path"] not in OPEN_PATHS and not self._authorised(headers):
            await reject(send, 401, "Must provide a valid API key in the 'api-key' header", started)
            return
        route = match_route(scope["method"], scope["path"])
        if route is not None:
            refused = media_type_error(route.method, headers, route.rule)
            if refused is not None:
                await reject(send, 415, refused, started)
                return
            if route.rule.body in STREAMING_BODIES:
                await self.app(scope, receive, send)
                return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await reject(send, 413, self._too_large(), started)
            return
        await self.app(scope, self._limited(scope, receive), send)

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

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        assert self.api_key is not None
        expected = self.api_key.encode()
        given = headers.get(b"api-key")
        if given is None:
            bearer = headers.get(b"authorization", b"")
            given = bearer[7:] if bearer.lower().startswith(b"bearer ") else None
        return given is not None and hmac.compare_digest(given, expected)

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
