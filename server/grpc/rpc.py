"""How an RPC is declared and run: one :class:`Rpc` row per method, the REST route it is.

A row names the REST route (method and path template, the same key as the access table
in ``api/access.py``, so an RPC is guarded by that route's row), how the request becomes
the route's body and query string, and how the route's result becomes the reply. A row
may add a ``fast`` handler for the vector-heavy calls; it answers None to hand a request
it does not cover (sparse, multi-vector, documents) to the route. Serving one more RPC
is one more row; a method without a row answers ``UNIMPLEMENTED`` naming it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from fastapi import FastAPI
from google.protobuf.message import Message

from server.api.access import ROUTES, Rule
from server.errors import QuiverError
from server.grpc.bridge import RestFailure, call_route
from server.grpc.status import RpcError, code_of, unimplemented

log = logging.getLogger(__name__)
Reply = Callable[[Any, float], Message]


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler may use: the app (engine, settings, CPU limiter in its state), the
    headers the REST route is called with (credentials, host) and when the call began."""

    app: FastAPI
    headers: Mapping[bytes, bytes]
    started: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


FastHandler = Callable[[Call, Any], Awaitable[Message | None]]


def collection_param(request: Any) -> dict[str, str]:
    return {"name": request.collection_name}


def _given(request: Any, name: str) -> bool:
    try:
        return bool(request.HasField(name))
    except ValueError:  # the message has no such field
        return False


def timeout_param(request: Any) -> dict[str, str]:
    """``?timeout=`` (seconds; strict mode's ``max_timeout`` reads it) from a request's
    ``optional uint64 timeout``."""
    return {"timeout": str(request.timeout)} if _given(request, "timeout") else {}


def wait_param(request: Any) -> dict[str, Any]:
    """``?wait=`` and ``?timeout=`` for requests that carry Qdrant's ``wait`` / ``timeout``."""
    given = {"wait": request.wait} if _given(request, "wait") else {}
    return given | timeout_param(request)


@dataclass(frozen=True, slots=True)
class Rpc:
    http: str
    path: str
    reply: Reply
    body: Callable[[Any], Any] | None = None
    params: Callable[[Any], dict[str, str]] = collection_param
    query: Callable[[Any], dict[str, Any]] = wait_param
    fast: FastHandler | None = None
    rule: Rule = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", ROUTES[(self.http, self.path)])  # KeyError: no row

    async def run(self, call: Call, request: Any) -> Message:
        if self.fast is not None:
            answered = await self.fast(call, request)
            if answered is not None:
                return answered
        result = await call_route(
            call.app,
            self.http,
            route_path(self.path, self.params(request)),
            body=None if self.body is None else self.body(request),
            query=self.query(request),
            headers=call.headers,
        )
        return self.reply(result, call.elapsed())


_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def route_path(template: str, params: Mapping[str, str]) -> str:
    """The template with its parameters filled in (an ASGI ``path`` is not escaped)."""
    return _PARAM.sub(lambda found: params[found[1]], template)


def servicer(base: type, service: str, rows: Mapping[str, Rpc], app: FastAPI) -> Any:
    """An instance of the generated servicer ``base`` whose every method runs its row, or
    answers ``UNIMPLEMENTED`` naming the method when it has none."""
    namespace: dict[str, Any] = {}
    for method in (name for name in vars(base) if not name.startswith("_")):
        full = f"/qdrant.{service}/{method}"
        row = rows.get(method)
        namespace[method] = _handler(row, app, full) if row else _refusal(full)
    return type(f"Quiver{base.__name__}", (base,), namespace)()


def _handler(row: Rpc, app: FastAPI, full: str) -> Callable[..., Awaitable[Message]]:
    async def handle(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Message:
        call = Call(app, forwarded_headers(context, app.state.grpc_host), time.perf_counter())
        try:
            return await row.run(call, request)
        except RestFailure as failure:
            error = RpcError(code_of(failure.status), failure.message)
        except QuiverError as exc:
            error = RpcError.of(exc)
        except ValueError as exc:  # a message the converters or the route's model refuse
            error = RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Wrong input: {exc}")
        except Exception:
            log.exception("gRPC call failed", extra={"method": full})
            error = RpcError(grpc.StatusCode.INTERNAL, f"Internal error in {full}")
        await context.abort(error.code, error.message)

    handle.__name__ = full.rsplit("/", 1)[1]
    return handle


def _refusal(full: str) -> Callable[..., Awaitable[Message]]:
    async def refuse(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Message:
        error = unimplemented(full)
        await context.abort(error.code, error.message)

    return refuse


CREDENTIAL_HEADERS = (b"api-key", b"authorization")


def forwarded_headers(context: grpc.aio.ServicerContext, host: bytes) -> dict[bytes, bytes]:
    """The call's credentials for the REST route, so its front door decides exactly as
    it would for an HTTP request, and a ``host`` it serves (the Host allow-list guards
    browsers against DNS rebinding; a browser cannot speak gRPC)."""
    headers = {b"host": host}
    for key, value in context.invocation_metadata() or ():
        name = key.lower().encode()
        if name in CREDENTIAL_HEADERS:
            headers[name] = value if isinstance(value, bytes) else value.encode()
    return headers
