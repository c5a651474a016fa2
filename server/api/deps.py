"""Request dependencies: the engine, the settings, and the CPU-work limiter.

Everything a route needs comes through here, so tests can swap the settings
or the engine without touching globals. A route sees a collection only through the
``CollectionHandle`` Protocol (single-node or sharded alike), never ``server/cluster/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request

from server.engine.consistency import READ_CONSISTENCY, parse_consistency
from server.engine.engine import Engine
from server.engine.protocols import CollectionHandle
from server.settings import Settings

T = TypeVar("T")


async def get_engine(request: Request) -> Engine:
    """``async``: FastAPI runs a plain ``def`` dependency on a worker thread, a hop that
    costs more than this attribute read."""
    engine: Engine = request.app.state.engine
    return engine


async def get_app_settings(request: Request) -> Settings:  # async: see get_engine
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_collection(name: str, engine: EngineDep) -> CollectionHandle:
    """On the event loop, as the lean path (``fast_search.py``) already looks collections
    up: ``Engine.get`` holds the engine lock only for a dict read, except while a snapshot
    recovery swaps a collection in."""
    return engine.get(name)


CollectionDep = Annotated[CollectionHandle, Depends(get_collection)]


async def run_cpu(request: Request, func: Callable[..., T], *args: Any) -> T:
    """Run blocking work (numpy, faiss, SQLite) off the event loop, bounded in concurrency.
    The request's ``?consistency=`` goes with it (``engine/consistency.py``): the worker
    thread runs in a copy of this context."""
    limiter: anyio.CapacityLimiter = request.app.state.cpu_limiter
    READ_CONSISTENCY.set(parse_consistency(request.query_params.get("consistency")))
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
