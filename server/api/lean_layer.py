"""What the lean ASGI layers share (``fast_search.py`` for plain queries,
``fast_write.py`` for plain writes): the request's walk and the plumbing around it.

A lean layer sits just inside ``QuiverMiddleware`` (authentication, media type and body
limits have run). For a request it recognises (``match``) it reads the body, checks its
plain shape by hand (``shape``) and answers it itself (``prepare``: the route's parse,
checks and engine call, run on worker threads), on worker threads
of its own; any other request, or a body of another shape, goes on to the FastAPI app
unchanged, the body replayed byte for byte. An error raised while answering goes through
the app's own exception table (``api/errors.py``), as the full route's would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel

from server.api.envelope import error_body
from server.api.hand_off import HandOff
from server.api.middleware import ASGIApp, Message, Receive, Scope, Send

_HEADERS = [(b"content-type", b"application/json")]

M = TypeVar("M")
"""What a layer's ``_match`` makes of a request it takes (its route, the collection)."""
ModelT = TypeVar("ModelT", bound=BaseModel)

_REQUIRED = object()
_set = object.__setattr__


class Construct(Generic[ModelT]):
    """``model.model_construct(**values)`` without re-resolving every field's default.

    The lean layers build a wire model or two per request (14 fields for a query, one
    per point for an upsert) from values checked by hand; pydantic's ``model_construct``
    walks every field and copies its default on each call, which cost more than the rest
    of the shape check. A model whose defaults are all ``None`` (every lean wire model)
    gets them from one template dict; any other model, or values naming a key that is not
    a field or leaving a required field out, goes to ``model_construct`` itself, so the
    object is the one it would make either way."""

    __slots__ = ("_fields", "_model", "_plain", "_required", "_template")

    def __init__(self, model: type[ModelT]) -> None:
        self._model = model
        fields = model.model_fields
        self._plain = (
            not model.__pydantic_post_init__
            and not model.__pydantic_root_model__
            and model.model_config.get("extra") != "allow"
            and all(f.alias is None or f.alias == name for name, f in fields.items())
            and all(f.is_required() or f.get_default() is None for f in fields.values())
        )
        self._fields = frozenset(fields)
        self._required = frozenset(n for n, f in fields.items() if f.is_required())
        self._template: dict[str, Any] = {
            name: _REQUIRED if field.is_required() else None for name, field in fields.items()
        }

    def __call__(self, **values: Any) -> ModelT:
        keys = values.keys()
        if not (self._plain and keys <= self._fields and self._required <= keys):
            return self._model.model_construct(**values)
        found = self._template.copy()  # the fields' order, as model_construct keeps it
        found.update(values)
        made = self._model.__new__(self._model)
        _set(made, "__dict__", found)
        _set(made, "__pydantic_fields_set__", set(keys))
        _set(made, "__pydantic_extra__", None)
        _set(made, "__pydantic_private__", None)
        return made


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """What the request metrics read of ``scope["route"]``: the path template."""

    path: str


Prepared = tuple[Callable[[], Any], Callable[[Any], bytes]]
"""A request's blocking work (for a worker thread) and what makes its response body of
the work's result."""


class LeanLayer(Generic[M]):
    """The walk every lean layer takes; subclasses say which requests, which shapes,
    and how to answer them. ``direct_lane.py`` takes the same steps below ASGI."""

    thread_name: ClassVar[str] = "quiver-lean"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._hand_off: HandOff | None = None

    def match(self, scope: Scope) -> M | None:
        """What this layer would answer for the request, or None (the app's)."""
        raise NotImplementedError

    def shape(self, match: M, raw: dict[str, Any]) -> Any:
        """The body's wire model(s) when its shape is plain, else None."""
        raise NotImplementedError

    def label(self, match: M) -> RouteLabel:
        raise NotImplementedError

    def prepare(self, scope: Scope, match: M, shape: Any) -> Prepared:
        """Parse and check as the full route does (raising its errors): the work, and the
        renderer of its result into the response body the full route would give."""
        raise NotImplementedError

    def inline(self, match: M, shape: Any) -> bool:
        """Whether the work is small enough to run on the event loop itself
        (``direct_lane.py``): no hand-off to a thread."""
        return False

    defers_durability: ClassVar[bool] = False
    """The direct lane runs its work in ``group_commit.deferred_sync`` and answers once
    the writes are on disk, holding no CPU token and no thread while the disk works."""

    def threads(self, scope: Scope) -> HandOff:
        """The worker threads, started with the first request taken (the app's
        ``search_threads``) and ended with the app (``lifespan``)."""
        if self._hand_off is None:
            threads = scope["app"].state.settings.search_threads
            self._hand_off = HandOff(threads, self.thread_name)
        return self._hand_off

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def ending(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown") and self._hand_off is not None:
                self._hand_off.close()
                self._hand_off = None
            await send(message)

        await self.app(scope, receive, ending)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        match = self.match(scope)
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away before its body ended
            return
        raw = plain_json(scope, body)
        shape = None if raw is None else self.shape(match, raw)
        if shape is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.label(match)  # the request metrics' label
        try:
            work, render = self.prepare(scope, match, shape)
            async with scope["app"].state.cpu_limiter:
                result = await self.threads(scope).run(work)
            content = render(result)
        except Exception as exc:  # answered by the app's own exception table
            await error(scope, send, exc)
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers_of(content)})
        await send({"type": "http.response.body", "body": content})


def elapsed(scope: Scope) -> float:
    """Seconds since the request began (``QuiverMiddleware`` stamps it): the envelope's
    ``time``."""
    started: float | None = scope.get("state", {}).get("started")
    return 0.0 if started is None else time.perf_counter() - started


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the connection says next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def plain_json(scope: Scope, body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (cut at the limit, malformed, not an object)."""
    if scope.get("state", {}).get("body_too_large") is not None:
        return None
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return raw if isinstance(raw, dict) else None


def headers_of(content: bytes) -> list[tuple[bytes, bytes]]:
    return [*_HEADERS, (b"content-length", str(len(content)).encode())]


async def error(scope: Scope, send: Send, exc: Exception) -> None:
    """The answer the app's exception table gives ``exc`` (``api/errors.py``)."""
    request = Request(scope)
    handler = _handler(scope["app"].exception_handlers, exc)
    if handler is None:  # pragma: no cover - api/errors.py maps Exception itself
        response = orjson.dumps(error_body(f"Service internal error: {exc}", 0.0))
        await send({"type": "http.response.start", "status": 500, "headers": headers_of(response)})
        await send({"type": "http.response.body", "body": response})
        return
    answer = await handler(request, exc)
    await answer(scope, _no_receive, send)


def _handler(handlers: dict[Any, Any], exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


async def _no_receive() -> Message:  # pragma: no cover - responses never read
    return {"type": "http.disconnect"}
