"""The reader's proxy (``server/workers/proxy.py``) against a stand-in owner on a Unix
socket: what it sends (the client's framing kept, hop-by-hop headers and ``Expect``
dropped, one connection per request) and how it relays the answer (ADR 0013)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.types import Message

from server.workers.proxy import OwnerProxy

CHUNKED_ANSWER = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
    b"transfer-encoding: chunked\r\nx-quiver-worker: 0\r\n\r\n"
    b'3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'
)


def _scope(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/collections/c/points",
            "raw_path": b"/collections/c/points", "query_string": b"wait=true",
            "headers": headers}  # fmt: skip


async def _forward(
    socket: Path, scope: dict[str, Any], parts: list[bytes], answer: bytes
) -> tuple[bytes, list[Message]]:
    """What the owner read, and the messages the client was sent."""
    received = bytearray()

    async def owner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not _whole(bytes(received)):
            received.extend(await reader.read(4096))
        writer.write(answer)
        writer.close()

    server = await asyncio.start_unix_server(owner, path=str(socket))
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)]  # fmt: skip

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async with server:
        await OwnerProxy(str(socket)).forward(scope, receive, send)
    return bytes(received), sent


def _whole(request: bytes) -> bool:
    """Whether the stand-in owner read the whole request (its head, then 5 sized bytes
    or chunks up to the last)."""
    head, found, body = request.partition(b"\r\n\r\n")
    if not found:
        return False
    if b"content-length: 5" in head:
        return len(body) == 5
    return b"chunked" not in head or body.endswith(b"0\r\n\r\n")


def test_a_chunked_body_is_sent_chunked_and_a_chunked_answer_relayed(tmp_path: Path) -> None:
    headers = [(b"host", b"q"), (b"transfer-encoding", b"chunked"), (b"expect", b"100-continue"),
               (b"connection", b"keep-alive")]  # fmt: skip
    received, sent = asyncio.run(
        _forward(tmp_path / "o.sock", _scope("PUT", headers), [b"ab", b"cde"], CHUNKED_ANSWER)
    )
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"PUT /collections/c/points?wait=true HTTP/1.1"
    assert b"expect" not in head and b"keep-alive" not in head
    assert b"connection: close" in head and b"transfer-encoding: chunked" in head
    assert body == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    assert sent[0]["status"] == 201
    assert (b"x-quiver-worker", b"0") in sent[0]["headers"]
    assert all(name != b"transfer-encoding" for name, _ in sent[0]["headers"])
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b'{"a":1}'
    assert sent[-1]["more_body"] is False


def test_a_sized_body_is_sent_as_is(tmp_path: Path) -> None:
    headers = [(b"host", b"q"), (b"content-length", b"5")]
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    received, sent = asyncio.run(
        _forward(tmp_path / "o.sock", _scope("POST", headers), [b"ab", b"cde"], answer)
    )
    assert received.endswith(b"\r\n\r\nabcde") and b"chunked" not in received
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


def test_an_owner_that_is_down_gets_qdrants_503(tmp_path: Path) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    proxy = OwnerProxy(str(tmp_path / "absent.sock"))
    asyncio.run(proxy.forward(_scope("GET", [(b"host", b"q")]), receive, send))
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
