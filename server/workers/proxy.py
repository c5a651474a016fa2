"""Forward one HTTP request, as received, to the owner's Unix socket and stream the
answer back: the owner authenticates, checks and answers it exactly as if the client
had reached it directly (bodies stream both ways; nothing is parsed but the framing).

One plain HTTP/1.1 exchange per forwarded request on a connection of its own
(``Connection: close``; a Unix socket connects in microseconds), parsed with the
httptools parser uvicorn already loaded. An HTTP client library (httpx and its
transport: ~140 modules and a TLS context it never used) cost ~10 MB per server that
a single process never pays (issue 20's memory target).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable

import httptools
from starlette.types import Message, Receive, Scope, Send

_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"}
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"expect"}
"""``Expect: 100-continue`` was the reader's server's to answer (it did, as the body was
read); forwarded, the owner's interim 100 would be taken for its answer."""
READ_BYTES = 65_536


class OwnerProxy:
    """Forwards a reader's requests to the owner over its Unix socket."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as owner:
            owner.setblocking(False)
            try:
                await loop.sock_connect(owner, self._socket_path)
            except OSError:
                await _unavailable(send)
                return
            await _send_request(loop, owner, scope, receive)
            await _relay_answer(loop, owner, send, head=scope["method"] == "HEAD")

    async def aclose(self) -> None:
        """Nothing is pooled: each forwarded request closes its own connection."""


async def _send_request(
    loop: asyncio.AbstractEventLoop, owner: socket.socket, scope: Scope, receive: Receive
) -> None:
    """The request line, the client's headers less the hop-by-hop ones, then the body in
    the client's framing: as is under its ``content-length``, chunked again if it came
    chunked, none if it had neither."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _NOT_FORWARDED]
    chunked = any(k.lower() == b"transfer-encoding" for k, _ in scope["headers"])
    if chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    headers.append((b"connection", b"close"))
    try:
        await loop.sock_sendall(owner, _head(scope, headers))
        async for chunk in _body(receive):
            await loop.sock_sendall(
                owner, b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            )
        if chunked:
            await loop.sock_sendall(owner, b"0\r\n\r\n")
    except ConnectionError:
        pass  # the owner answered early (a 413, say) and closed: its answer is still read


def _head(scope: Scope, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    if query:
        target += b"?" + query
    lines = [b"%s %s HTTP/1.1" % (scope["method"].encode(), target)]
    lines += [k + b": " + v for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Answer:
    """httptools' callbacks for the owner's answer: the status and headers once, then the
    body as it arrives (chunked framing already removed)."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.messages: list[Message] = []
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in _HOP_BY_HOP:
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.messages.append(
            {"type": "http.response.start", "status": status, "headers": self.headers}
        )

    def on_body(self, body: bytes) -> None:
        self.messages.append({"type": "http.response.body", "body": body, "more_body": True})

    def on_message_complete(self) -> None:
        self.complete = True
        self.messages.append({"type": "http.response.body", "body": b"", "more_body": False})


async def _relay_answer(
    loop: asyncio.AbstractEventLoop, owner: socket.socket, send: Send, *, head: bool
) -> None:
    """Parse the owner's answer as it arrives and pass each part on; an owner that died
    before its answer began gets Qdrant's 503. A HEAD answer ends with its headers (the
    owner closes the connection; the parser, not told the method, waits for a body)."""
    answer = _Answer()
    started = False
    while not answer.complete:
        try:
            data = await loop.sock_recv(owner, READ_BYTES)
        except ConnectionError:
            data = b""
        if not data:
            break
        answer.parser.feed_data(data)
        for message in answer.messages:
            started = True
            await send(message)
        answer.messages.clear()
    if not started:
        await _unavailable(send)
    elif head and not answer.complete:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif not answer.complete:
        raise ConnectionError("the owner closed the connection mid-answer")


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
