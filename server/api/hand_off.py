"""Hand blocking work to worker threads with as little event-loop time as possible.

``anyio.to_thread.run_sync`` hands each call over through a ``queue.Queue``, whose
``put`` wakes the worker through a pure-Python ``Condition``; profiled under ``wrk`` on
single-vector queries, that wake-up was the largest piece of the event loop's time per
request. Here the call crosses through a ``queue.SimpleQueue`` (C, no Python-level
condition) and comes back with ``call_soon_threadsafe``. Callers still take the app's
CPU limiter around it, so the bound on concurrent CPU work is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

Done = Callable[[Any, BaseException | None], None]
"""Called on the event loop with a call's result, or with the exception it raised."""
Job = tuple[Callable[[], Any], Done, asyncio.AbstractEventLoop]


class HandOff:
    """A fixed set of daemon threads running the calls handed to :meth:`run`."""

    def __init__(self, threads: int, name: str = "quiver-search") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on a worker thread; its result or its exception here."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.submit(partial(func, *args), partial(_settle, future))
        return await future

    def submit(self, func: Callable[[], Any], done: Done) -> None:
        """``func()`` on a worker thread, then ``done(result, exception)`` on this event
        loop: no future, for a caller that is not a coroutine (``direct_lane.py``)."""
        self._jobs.put((func, done, asyncio.get_running_loop()))

    def close(self) -> None:
        """Let the threads end once the calls already handed over are done."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            func, done, loop = job
            try:
                result = func()
            except BaseException as exc:  # handed back to the caller
                _done_later(loop, done, None, exc)
            else:
                _done_later(loop, done, result, None)


def _done_later(
    loop: asyncio.AbstractEventLoop, done: Done, result: Any, exc: BaseException | None
) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(done, result, exc)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # the awaiting request was cancelled
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)
