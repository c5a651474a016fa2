"""Snapshots in Qdrant's shapes: of a collection, of one of its shards (``/shards/{i}``)
and of the whole storage (``/snapshots``): create, list, download, delete, recover
(``engine/snapshot_ops.py``; full-storage snapshots are recovered before start only).

With ``wait=false`` a create, delete or recovery answers Qdrant's ``202 accepted`` at
once and runs afterwards (``_answer``). Recovery reads a ``file://`` location or a
snapshot name; http(s) locations are refused (this server does not download). An
upload is streamed to a temporary file in bounded chunks, never held in memory, and
recovered from there.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask

from server.api import render
from server.api.deps import EngineDep, run_cpu
from server.api.envelope import accepted, ok
from server.api.routing import OrjsonRoute
from server.api.schemas import Wire
from server.engine import snapshot_ops
from server.engine.engine import Engine, validate_collection_name
from server.errors import BadRequest
from server.storage.snapshots import SnapshotDescription

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)
router = APIRouter(tags=["snapshots"], route_class=OrjsonRoute)
T = TypeVar("T")

Priority = Literal["no_sync", "snapshot", "replica"]
UPLOAD_FIELD = "snapshot"
FLUSH_BYTES = 1 << 20
"""Uploaded bytes are written to disk (in a worker thread) once this many are buffered."""


class SnapshotRecover(Wire):
    """Qdrant's ``SnapshotRecover``. ``priority`` only matters between replicas and
    ``api_key`` only for remote URLs; both are accepted and ignored."""

    location: str
    priority: Priority | None = None
    checksum: str | None = None
    api_key: str | None = None


@router.post("/collections/{name}/snapshots")
async def create_snapshot(
    request: Request, name: str, engine: EngineDep, wait: bool = True
) -> Response:
    engine.get(name)  # a 404 before an accepted answer
    return await _answer(request, wait, partial(engine.create_snapshot, name), _described)


@router.get("/collections/{name}/snapshots")
async def list_snapshots(request: Request, name: str, engine: EngineDep) -> Response:
    found = await run_cpu(request, engine.list_snapshots, name)
    return ok(request, [render.snapshot_description(d) for d in found])


@router.put("/collections/{name}/snapshots/recover")
async def recover_from_location(
    request: Request, name: str, body: SnapshotRecover, engine: EngineDep, wait: bool = True
) -> Response:
    validate_collection_name(name)
    archive = await run_cpu(request, engine.snapshot_location, name, body.location)
    work = partial(snapshot_ops.recover_collection, engine, name, archive, body.checksum)
    return await _answer(request, wait, work, _true)


@router.post("/collections/{name}/snapshots/upload")
async def recover_from_upload(
    request: Request,
    name: str,
    engine: EngineDep,
    wait: bool = True,
    priority: Priority | None = None,
    checksum: str | None = None,
) -> Response:
    validate_collection_name(name)
    recover = partial(snapshot_ops.recover_collection, engine, name)
    return await _recover_upload(request, engine, wait, recover, checksum)


@router.get("/collections/{name}/snapshots/{snapshot_name}")
async def download_snapshot(
    request: Request, name: str, snapshot_name: str, engine: EngineDep
) -> Response:
    path = await run_cpu(request, engine.snapshot_path, name, snapshot_name)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.delete("/collections/{name}/snapshots/{snapshot_name}")
async def delete_snapshot(
    request: Request, name: str, snapshot_name: str, engine: EngineDep, wait: bool = True
) -> Response:
    await run_cpu(request, engine.snapshot_path, name, snapshot_name)  # a 404 first
    work = partial(engine.delete_snapshot, name, snapshot_name)
    return await _answer(request, wait, work, _true)


# -- shard snapshots -------------------------------------------------------------

S = "/collections/{name}/shards/{shard_id}"


@router.post(f"{S}/snapshots")
async def create_shard_snapshot(
    request: Request, name: str, shard_id: int, engine: EngineDep, wait: bool = True
) -> Response:
    await run_cpu(request, snapshot_ops.list_shard_snapshots, engine, name, shard_id)  # 404s
    work = partial(snapshot_ops.create_shard_snapshot, engine, name, shard_id)
    return await _answer(request, wait, work, _described)


@router.get(f"{S}/snapshots")
async def list_shard_snapshots(
    request: Request, name: str, shard_id: int, engine: EngineDep
) -> Response:
    found = await run_cpu(request, snapshot_ops.list_shard_snapshots, engine, name, shard_id)
    return ok(request, [render.snapshot_description(d) for d in found])


@router.put(f"{S}/snapshots/recover")
async def recover_shard_from_location(
    request: Request,
    name: str,
    shard_id: int,
    body: SnapshotRecover,
    engine: EngineDep,
    wait: bool = True,
) -> Response:
    archive = await run_cpu(
        request, snapshot_ops.shard_location, engine, name, shard_id, body.location
    )
    work = partial(snapshot_ops.recover_shard, engine, name, shard_id, archive, body.checksum)
    return await _answer(request, wait, work, _true)


@router.post(f"{S}/snapshots/upload")
async def recover_shard_from_upload(
    request: Request,
    name: str,
    shard_id: int,
    engine: EngineDep,
    wait: bool = True,
    priority: Priority | None = None,
    checksum: str | None = None,
) -> Response:
    await run_cpu(request, snapshot_ops.list_shard_snapshots, engine, name, shard_id)  # 404s
    recover = partial(snapshot_ops.recover_shard, engine, name, shard_id)
    return await _recover_upload(request, engine, wait, recover, checksum)


@router.get(f"{S}/snapshots/{{snapshot_name}}")
async def download_shard_snapshot(
    request: Request, name: str, shard_id: int, snapshot_name: str, engine: EngineDep
) -> Response:
    found = snapshot_ops.shard_snapshot_path
    path = await run_cpu(request, found, engine, name, shard_id, snapshot_name)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.delete(f"{S}/snapshots/{{snapshot_name}}")
async def delete_shard_snapshot(
    request: Request,
    name: str,
    shard_id: int,
    snapshot_name: str,
    engine: EngineDep,
    wait: bool = True,
) -> Response:
    await run_cpu(request, snapshot_ops.shard_snapshot_path, engine, name, shard_id, snapshot_name)
    work = partial(snapshot_ops.delete_shard_snapshot, engine, name, shard_id, snapshot_name)
    return await _answer(request, wait, work, _true)


@router.get(f"{S}/snapshot")
async def stream_shard_snapshot(
    request: Request, name: str, shard_id: int, engine: EngineDep
) -> Response:
    """The shard's current state as a snapshot file, taken for this download only."""
    path = await run_cpu(request, snapshot_ops.stream_shard_snapshot, engine, name, shard_id)
    cleanup = BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True)
    return FileResponse(
        path, media_type="application/octet-stream", filename=path.name, background=cleanup
    )


# -- full-storage snapshots ------------------------------------------------------


@router.post("/snapshots")
async def create_full_snapshot(request: Request, engine: EngineDep, wait: bool = True) -> Response:
    return await _answer(
        request, wait, partial(snapshot_ops.create_full_snapshot, engine), _described
    )


@router.get("/snapshots")
async def list_full_snapshots(request: Request, engine: EngineDep) -> Response:
    found = await run_cpu(request, snapshot_ops.list_full_snapshots, engine)
    return ok(request, [render.snapshot_description(d) for d in found])


@router.get("/snapshots/{snapshot_name}")
async def download_full_snapshot(
    request: Request, snapshot_name: str, engine: EngineDep
) -> Response:
    path = await run_cpu(request, snapshot_ops.full_snapshot_path, engine, snapshot_name)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.delete("/snapshots/{snapshot_name}")
async def delete_full_snapshot(
    request: Request, snapshot_name: str, engine: EngineDep, wait: bool = True
) -> Response:
    await run_cpu(request, snapshot_ops.full_snapshot_path, engine, snapshot_name)  # a 404 first
    work = partial(snapshot_ops.delete_full_snapshot, engine, snapshot_name)
    return await _answer(request, wait, work, _true)


# -- wait=false, uploads ----------------------------------------------------------


def _described(description: SnapshotDescription) -> Any:
    return render.snapshot_description(description)


def _true(_: object) -> bool:
    return True


async def _answer(
    request: Request, wait: bool, work: Callable[[], T], answer: Callable[[T], Any]
) -> Response:
    """With ``wait`` (the default) run ``work`` and answer its result. Without it answer
    Qdrant's ``202 {"result": null, "status": "accepted"}`` at once and run ``work``
    afterwards, in a worker thread; a failure then is logged (nobody is waiting)."""
    if wait:
        return ok(request, answer(await run_cpu(request, work)))
    limiter: anyio.CapacityLimiter = request.app.state.cpu_limiter
    return accepted(request, BackgroundTask(_in_background, work, limiter))


async def _in_background(work: Callable[[], object], limiter: anyio.CapacityLimiter) -> None:
    try:
        await anyio.to_thread.run_sync(work, limiter=limiter)
    except Exception:
        log.exception("snapshot operation with wait=false failed")


async def _recover_upload(
    request: Request,
    engine: Engine,
    wait: bool,
    recover: Callable[[Path, str | None], None],
    checksum: str | None,
) -> Response:
    """Receive the uploaded archive into a temporary file, recover from it (now, or
    after answering when ``wait`` is false), then remove the file."""
    target = await run_cpu(request, engine.upload_path)
    try:
        await _receive_upload(request, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise

    def work() -> None:
        try:
            recover(target, checksum)
        finally:
            target.unlink(missing_ok=True)

    return await _answer(request, wait, work, _true)


async def _receive_upload(request: Request, target: Path) -> None:
    """Stream the ``snapshot`` part of a multipart/form-data body into ``target``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest(
            "Wrong input: upload the snapshot as multipart/form-data "
            f"with a `{UPLOAD_FIELD}` file field"
        )
    part = _UploadPart()
    parser = MultipartParser(boundary, part.callbacks())
    with open(target, "wb") as out:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if len(part.pending) >= FLUSH_BYTES:
                    await anyio.to_thread.run_sync(out.write, part.take())
            parser.finalize()
        except FormParserError as exc:
            raise BadRequest(f"Wrong input: malformed multipart body: {exc}") from exc
        await anyio.to_thread.run_sync(out.write, part.take())
    if part.error is not None:
        raise BadRequest(f"Wrong input: {part.error}")
    if not part.found:
        raise BadRequest(f"Wrong input: the multipart body has no `{UPLOAD_FIELD}` file field")


class _UploadPart:
    """Multipart callbacks that keep the bytes of the one part named ``snapshot``."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.found = False
        self.error: str | None = None
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._in_target = False

    def take(self) -> bytes:
        data = bytes(self.pending)
        self.pending.clear()
        return data

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._in_target = False

    def _header_end(self) -> None:
        if self._field.strip().lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") != UPLOAD_FIELD.encode():
            return
        if self.found:
            self.error = f"the multipart body has more than one `{UPLOAD_FIELD}` field"
            return
        self.found = self._in_target = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_target:
            self.pending += data[start:end]
