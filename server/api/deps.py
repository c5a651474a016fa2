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


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_collection(name: str, engine: EngineDep) -> CollectionHandle:
    return engine.get(name)


CollectionDep = Annotated[CollectionHandle, Depends(get_collection)]


async def run_cpu(request: Request, func: Callable[..., T], *args: Any) -> T:
    """Run blocking work (numpy, faiss, SQLite) off the event loop, bounded in concurrency.
    The request's ``?consistency=`` goes with it (``engine/consistency.py``): the worker
    thread runs in a copy of this context."""
    limiter: anyio.CapacityLimiter = request.app.state.cpu_limiter
    READ_CONSISTENCY.set(parse_consistency(request.query_params.get("consistency")))
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
