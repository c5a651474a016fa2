"""Collection snapshots in Qdrant's shapes: create, list, download, delete, recover.

Snapshots are always taken and recovered before the answer (``wait`` is accepted and
changes nothing). Recovery reads a ``file://`` location or a snapshot name; http(s)
locations are refused (this server does not download). An upload is streamed to a
temporary file in bounded chunks, never held in memory, and recovered from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from server.api import render
from server.api.deps import EngineDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.api.schemas import Wire
from server.engine.engine import validate_collection_name
from server.errors import BadRequest

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

router = APIRouter(tags=["snapshots"], route_class=OrjsonRoute)

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
    description = await run_cpu(request, engine.create_snapshot, name)
    return ok(request, render.snapshot_description(description))


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
    await run_cpu(request, engine.recover, name, archive, body.checksum)
    return ok(request, True)


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
    target = await run_cpu(request, engine.upload_path)
    try:
        await _receive_upload(request, target)
        await run_cpu(request, engine.recover, name, target, checksum)
    finally:
        target.unlink(missing_ok=True)
    return ok(request, True)


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
    return ok(request, await run_cpu(request, engine.delete_snapshot, name, snapshot_name))


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
