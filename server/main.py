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
from server.api.credentials import Authenticator
from server.api.errors import install_error_handlers
from server.api.fast_search import FastSearch
from server.api.fast_write import FastWrite
from server.api.metrics import Metrics
from server.api.middleware import QuiverMiddleware
from server.api.origins import CORSMiddleware, CrossOriginGuard, HostAllowList, cors_options
from server.api.routes import (
    admin,
    aliases,
    batch,
    bulk,
    collections,
    groups,
    jobs,
    leanvec,
    points,
    query,
    recommend,
    service,
    snapshots,
    vectors,
)
from server.catalog import open_engine
from server.dashboard import assets as dashboard_assets
from server.dashboard import data as dashboard_data
from server.engine.limits import EngineLimits
from server.settings import Settings, get_settings
from server.storage.point_store import set_group_commit

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        single_threaded_numpy_blas()  # see index/native_threads.py
        set_group_commit(settings.group_commit)
        app.state.engine = await anyio.to_thread.run_sync(
            partial(
                open_engine,
                settings.data_dir,
                settings.idle_seal_s,
                ray_address=settings.ray_address,
                ray_shard_cpus=settings.ray_shard_cpus,
                limits=EngineLimits(settings.max_collections, settings.max_request_result_bytes),
            )
        )
        app.state.cpu_limiter = anyio.CapacityLimiter(settings.search_threads)
        app.state.engine.worker.on_finished.append(metrics.observe_job)
        try:
            async with _grpc_serving(app, settings):  # same engine, same loop
                log.info("quiver ready", extra={"data_dir": str(settings.data_dir)})
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
        redirect_slashes=False,  # Qdrant (actix) answers `/collections/` 404, not a redirect
    )
    app.state.settings = settings
    app.state.engine = None
    metrics = Metrics(app.state)
    app.state.metrics = metrics
    install_error_handlers(app)
    routers = (admin, collections, points, bulk, query, recommend, groups, jobs, leanvec, snapshots)
    for module in routers:
        app.include_router(module.router)
    app.include_router(aliases.router)
    for module in (vectors, batch):
        app.include_router(module.router)
    app.include_router(service.router)
    app.include_router(dashboard_data.router)
    app.include_router(dashboard_assets.router)
    app.add_middleware(FastWrite)  # plain writes, as FastSearch (issue 20's mixed load)
    app.add_middleware(FastSearch)  # inside QuiverMiddleware: after auth and body limits
    app.add_middleware(
        QuiverMiddleware,
        auth=Authenticator(settings.api_key, settings.read_only_api_key, settings.jwt_rbac),
        max_body=settings.max_request_bytes,
        metrics=metrics,
    )
    _add_front_door(app, settings)
    return app


@asynccontextmanager
async def _grpc_serving(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Qdrant's gRPC API beside REST while the app runs. grpc and qdrant_client's messages
    (~45 MB of the process) are imported only when it is on (``QUIVER_GRPC_PORT``)."""
    if not settings.grpc_port:
        yield
        return
    from server.grpc import server as grpc_api

    grpc_server = await grpc_api.start(app, settings)
    try:
        yield
    finally:
        await grpc_api.stop(grpc_server)


def _add_front_door(app: FastAPI, settings: Settings) -> None:
    """Outermost layers (the last added runs first): Host allow-list, CORS, origin guard."""
    app.add_middleware(CrossOriginGuard, origins=settings.cors_origins)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, **cors_options(settings.cors_origins))
    if settings.allowed_hosts:
        app.add_middleware(HostAllowList, hosts=settings.allowed_hosts)
