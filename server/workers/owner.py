"""The owner worker: today's whole server, plus the generation bump.

The owner bumps the shared generation after any change is durable and before the
client (or the reader that forwarded the request) hears of it, so a reader that
sees the old generation knows its view may lack an acknowledged write. It bumps
again when a build job finishes, so readers pick up the new segment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.workers.generation import Generation
from server.workers.routing import is_write

WORKER_HEADER = b"x-quiver-worker"
GENERATION_HEADER = b"x-quiver-generation"
"""Which worker answered, and the generation its answer reflects: the owner's current
one, a reader's view's (for tests and operators; clients need neither)."""


class OwnerGate:
    """ASGI wrapper of the owner's app: bumps ``generation`` as a write is answered."""

    def __init__(self, app: ASGIApp, generation: Generation, worker: int = 0) -> None:
        self.app = app
        self._generation = generation
        self._worker = str(worker).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self.admit(scope)(send))

    def admit(self, scope: Scope) -> Callable[[Send], Send]:
        """Every request goes on to the app, its answer stamped (``_answering``); the
        direct lane (``api/direct_lane.py``) wraps the answers it writes with it too."""
        return partial(self._answering, is_write(scope["method"], scope["path"]))

    def _answering(self, writes: bool, send: Send) -> Send:
        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = self._generation.bump() if writes else self._generation.read()
                message["headers"] = [
                    *message.get("headers", []),
                    (WORKER_HEADER, self._worker),
                    (GENERATION_HEADER, str(current).encode()),
                ]
            elif writes and not message.get("more_body", False):
                self._generation.bump()  # a streamed answer's last part: the work is done
            await send(message)

        return answer


def bump_after_builds(app: FastAPI, generation: Generation) -> None:
    """Wrap the app's lifespan so a finished build job bumps the generation: readers
    then load the new segment instead of searching its points exactly. So does the
    owner's start: opening the collections wrote the side files of segments that had
    none (``engine/segment_rows.py``), and readers that loaded their view meanwhile
    reload those collections to map them instead of holding their own copies."""
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[None]:
        async with original(inner):
            app.state.engine.worker.on_finished.append(lambda _job: generation.bump())
            generation.bump()
            yield

    app.router.lifespan_context = lifespan
