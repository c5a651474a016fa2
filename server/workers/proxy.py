"""Forward one HTTP request, as received, to the owner's Unix socket and stream the
answer back: the owner authenticates, checks and answers it exactly as if the client
had reached it directly (bodies stream both ways; nothing is parsed here)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator

import httpx
from starlette.types import Receive, Scope, Send

_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"}
)
MAX_CONNECTIONS = 256


class _Preloaded:
    tls: ssl.SSLContext | None = None


def preload() -> None:
    """In the supervisor, before forking: import httpx's transport modules (httpcore, h11
    and ~140 more, imported on a transport's first creation) and build its TLS context,
    so every reader shares them instead of building ~17 MB of its own. The context is
    never used: the owner is reached over a Unix socket in plain HTTP."""
    _Preloaded.tls = httpx.create_ssl_context()
    httpx.AsyncHTTPTransport(verify=_Preloaded.tls)


class OwnerProxy:
    """An HTTP client of the owner over its Unix socket, shared by a reader's requests."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per forwarded request
        self._client: httpx.AsyncClient | None = None

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self._client_for_loop()
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = "http://owner" + path.decode("latin-1") + ("?" + query.decode() if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        request = client.build_request(
            scope["method"], url, headers=headers, content=_body(receive)
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError:
            await _unavailable(send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(
                    uds=self._socket_path, verify=_Preloaded.tls or True
                ),
                timeout=httpx.Timeout(None),
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            )
        return self._client


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body: bytes = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _unavailable(send: Send) -> None:
    """The owner is down (crashed and being restarted): Qdrant's shape of a 503."""
    body = b'{"status":{"error":"Service unavailable: the write process is restarting"},"time":0}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": body})
