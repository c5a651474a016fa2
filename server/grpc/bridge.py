"""Run one REST route in-process for a gRPC call: the transcoder's generic path.

Most RPCs are a REST route in another encoding, so rather than a second copy of each
route's parsing and validation, an RPC's request is translated into the route's JSON
body and handed to the same FastAPI app as an ASGI call (no socket, no HTTP parsing).
The route, the front-door middleware (credentials, the access table, the body limit)
and the error envelope all run exactly as for REST; the answer's ``result`` comes back
as plain JSON for ``convert.py`` to turn into a reply message. Only the vector-heavy
RPCs take a faster path (``fastpath.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from server.api.middleware import ASGIApp

Message = MutableMapping[str, Any]


class RestFailure(Exception):
    """A route answered an error status; ``message`` is its envelope's error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def call_route(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    headers: Mapping[bytes, bytes] | None = None,
) -> Any:
    """The ``result`` of ``method path`` with ``body`` (JSON), or :class:`RestFailure`."""
    raw = b"" if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head.extend((headers or {}).items())
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": quote(path).encode(),
        "query_string": _query_string(query),
        "root_path": "",
        "headers": head,
        "client": ("grpc", 0),
        "server": ("grpc", 0),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    status, chunks = 500, []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return _result(status, b"".join(chunks))


def _query_string(query: Mapping[str, Any] | None) -> bytes:
    if not query:
        return b""
    pairs = {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}
    return urlencode(pairs).encode()


def _result(status: int, raw: bytes) -> Any:
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        envelope = None
    if status >= 400 or not isinstance(envelope, dict):
        error = envelope.get("status") if isinstance(envelope, dict) else None
        message = error.get("error") if isinstance(error, dict) else None
        raise RestFailure(status, str(message or raw[:200].decode(errors="replace")))
    return envelope.get("result")
