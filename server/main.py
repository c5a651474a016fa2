"""``create_app(settings)``: the FastAPI application and its lifespan.

The lifespan opens the engine (reloading every collection from disk) before
the first request and closes it after the last, so a SIGTERM drains requests,
then closes the databases cleanly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI

from index.native_threads import single_threaded_numpy_blas
from server.api.errors import install_error_handlers
from server.api.metrics import Metrics
from server.api.middleware import QuiverMiddleware
from server.api.routes import admin, bulk, collections, jobs, leanvec, points, query, snapshots
from server.catalog import open_engine
from server.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        single_threaded_numpy_blas()  # see index/native_threads.py
        app.state.engine = await anyio.to_thread.run_sync(
            partial(
                open_engine,
                settings.data_dir,
                settings.idle_seal_s,
                ray_address=settings.ray_address,
                ray_shard_cpus=settings.ray_shard_cpus,
            )
        )
        app.state.cpu_limiter = anyio.CapacityLimiter(settings.search_threads)
        app.state.engine.worker.on_finished.append(metrics.observe_job)
        log.info("quiver ready", extra={"data_dir": str(settings.data_dir)})
        try:
            yield
        finally:
            app.state.engine.close()
            app.state.engine = None
            log.info("quiver stopped")

    app = FastAPI(
        title="Quiver",
        summary="Vector similarity search with Qdrant's REST API",
        version=admin.quiver_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = None
    metrics = Metrics(app.state)
    app.state.metrics = metrics
    install_error_handlers(app)
    for module in (admin, collections, points, bulk, query, jobs, leanvec, snapshots):
        app.include_router(module.router)
    app.add_middleware(
        QuiverMiddleware,
        api_key=settings.api_key,
        max_body=settings.max_request_bytes,
        metrics=metrics,
    )
    return app
