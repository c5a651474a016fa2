"""The real app behind the server's own HTTP protocol (``api/http_guard.py``), on an
in-memory transport: raw HTTP/1.1 bytes in, parsed responses out, on one event loop in
this process. What ``TestClient`` cannot reach: the protocol-level direct lane
(``api/direct_lane.py``), keep-alive and pipelining on one connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from server.api.http_guard import ConnectionLimits, guarded_protocol
from server.main import create_app
from server.settings import Settings

LIMITS = ConnectionLimits(
    header_timeout_s=30, body_timeout_s=30, max_header_bytes=16384, max_connections=64
)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: Any


class Transport(asyncio.Transport):
    """What the protocol writes, kept; reading pauses are only recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False
        self.written = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data
        self.written.set()

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 6333)}.get(name)


class Wire:
    """One app, and connections to it through the guarded protocol."""

    def __init__(self, config: uvicorn.Config, lifespan: LifespanOn) -> None:
        self.config = config
        self.lifespan = lifespan
        self.loop = asyncio.new_event_loop()
        self.state = ServerState()

    def connect(self) -> Connection:
        protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.state,
            app_state=self.lifespan.state,
            _loop=self.loop,
        )
        transport = Transport()
        protocol.connection_made(transport)
        return Connection(self, protocol, transport)

    def run_until(self, done: Any, transports: list[Transport], timeout_s: float = 10.0) -> None:
        """Run the loop until ``done()``, looking again whenever one of ``transports``
        is written to."""

        async def waiting() -> None:
            while not done():
                for transport in transports:
                    transport.written.clear()
                waits = [asyncio.ensure_future(t.written.wait()) for t in transports]
                await asyncio.wait(waits, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                for pending in waits:
                    pending.cancel()

        self.loop.run_until_complete(asyncio.wait_for(waiting(), timeout_s))


@dataclass
class Connection:
    wire: Wire
    protocol: Any
    transport: Transport

    def send(self, *requests: bytes) -> list[Answer]:
        """``requests`` in one write (pipelined), and their answers in order."""
        self.wire.loop.call_soon(self.protocol.data_received, b"".join(requests))
        self.wire.run_until(
            lambda: len(answers(self.transport.data)) >= len(requests), [self.transport]
        )
        found = answers(self.transport.data)
        self.transport.data.clear()
        return found


class Client:
    """What ``tests/helpers/api.py::Api`` calls, over one connection."""

    def __init__(self, connection: Connection, headers: dict[str, str] | None = None) -> None:
        self.connection = connection
        self.headers = headers or {}

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Response:
        headers = self.headers | (kwargs.get("headers") or {})
        answer = self.connection.send(request(method, path, json, headers))[0]
        return Response(answer.status, answer.body)


@dataclass(frozen=True)
class Response:
    status_code: int
    body: Any

    def json(self) -> Any:
        return self.body


def request(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request, its body as JSON (bytes as they are)."""
    data = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
    fields = {"host": "localhost", "content-type": "application/json"} | (headers or {})
    fields["content-length"] = str(len(data))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode() + b"\r\n" + data


def answers(data: bytes) -> list[Answer]:
    """The complete responses in ``data`` (each with a content-length)."""
    found, rest = [], bytes(data)
    while b"\r\n\r\n" in rest:
        head, rest = rest.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(fields[b"content-length"])
        if len(rest) < length:
            break
        body, rest = rest[:length], rest[length:]
        found.append(Answer(int(lines[0].split()[1]), fields, orjson.loads(body)))
    return found


def count_asgi(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reach the ASGI app from now on (the direct lane
    answers the others)."""
    paths: list[str] = []
    start = HttpToolsProtocol._start_asgi_task

    def counting(self: HttpToolsProtocol, cycle: Any, app: Any) -> None:
        paths.append(cycle.scope["path"])
        start(self, cycle, app)

    monkeypatch.setattr(HttpToolsProtocol, "_start_asgi_task", counting)
    return paths


@contextmanager
def wire(
    data_dir: Path, serve: Callable[[Any], Any] | None = None, **settings: Any
) -> Iterator[Wire]:
    """The app over ``data_dir``, its lifespan run, behind the guarded protocol; served
    as ``serve`` makes it (a worker's gate, say) when given."""
    app = create_app(Settings(data_dir=data_dir, **settings))
    served_app = app if serve is None else serve(app)
    config = uvicorn.Config(served_app, http=guarded_protocol(LIMITS), log_config=None)
    config.load()
    lifespan = LifespanOn(config)
    served = Wire(config, lifespan)
    served.loop.run_until_complete(lifespan.startup())
    try:
        yield served
    finally:
        served.loop.run_until_complete(lifespan.shutdown())
        served.loop.close()
