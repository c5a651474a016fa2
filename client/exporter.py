"""``quiver export``: scroll a collection into a file.

* ``.jsonl`` / ``.ndjson``: one point per line, ``{"id", "vector", "payload"}``, exactly
  what ``quiver import`` reads back (any vector shape: named, multi-vectors).
* ``.npy``: one dense vector per point as a float32 matrix, plus a ``.payload.jsonl``
  beside it with ``{"id", "payload"}`` per row in the same order.

Files are written under a temporary name and renamed when complete, so an interrupted
export never leaves a file that looks whole.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np
import orjson
from tqdm import tqdm

from client.errors import CliError
from client.http import QuiverClient

NPY_HEADER_BYTES = 128
"""A fixed-size .npy (v1.0) header: written first with 0 rows, rewritten with the final
count, which any shape with fewer than ~40 digits in total fits."""


@dataclass(frozen=True)
class ExportOptions:
    collection: str
    out: Path
    vector: str | None = None
    payload_out: Path | None = None
    page_size: int = 1000
    progress: bool | None = None


def default_payload_path(out: Path) -> Path:
    return out.with_suffix(".payload.jsonl")


def export_collection(client: QuiverClient, options: ExportOptions, log: TextIO) -> int:
    """Write the collection to ``options.out``; returns the number of points written."""
    if options.page_size < 1:
        raise CliError("--page-size must be at least 1")
    suffix = options.out.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".npy"):
        raise CliError(f"{options.out}: export writes .jsonl, .ndjson or .npy files")
    info = client.collection_info(options.collection)
    total = client.count(options.collection)
    bar = tqdm(
        total=total,
        unit=" points",
        unit_scale=True,
        desc=f"export {options.collection}",
        file=log,
        dynamic_ncols=True,
        disable=None if options.progress is None else not options.progress,
    )
    with bar:
        if suffix == ".npy":
            vector, dim = _dense_vector(info, options.vector, options.collection)
            payload_out = options.payload_out or default_payload_path(options.out)
            return _export_npy(client, options, vector, dim, payload_out, bar)
        return _export_jsonl(client, options, bar)


def _pages(client: QuiverClient, options: ExportOptions, with_vector: Any) -> Any:
    offset = None
    while True:
        points, offset = client.scroll(options.collection, options.page_size, offset, with_vector)
        yield points
        if offset is None:
            return


def _export_jsonl(client: QuiverClient, options: ExportOptions, bar: Any) -> int:
    with _Staged(options.out) as file:
        written = 0
        with_vector = [options.vector] if options.vector else True
        for points in _pages(client, options, with_vector):
            for point in points:
                line = {
                    "id": point["id"],
                    "vector": point.get("vector"),
                    "payload": point.get("payload") or {},
                }
                file.write(orjson.dumps(line) + b"\n")
            written += len(points)
            bar.update(len(points))
    return written


def _export_npy(
    client: QuiverClient,
    options: ExportOptions,
    vector: str,
    dim: int,
    payload_out: Path,
    bar: Any,
) -> int:
    with _Staged(options.out) as matrix_file, _Staged(payload_out) as payload_file:
        matrix_file.write(_npy_header(0, dim))
        written = 0
        for points in _pages(client, options, [vector] if vector else True):
            block = np.empty((len(points), dim), dtype="<f4")
            for i, point in enumerate(points):
                block[i] = _vector_of(point, vector, dim)
                payload_file.write(
                    orjson.dumps({"id": point["id"], "payload": point.get("payload") or {}}) + b"\n"
                )
            matrix_file.write(block.tobytes())
            written += len(points)
            bar.update(len(points))
        matrix_file.seek(0)
        matrix_file.write(_npy_header(written, dim))
    return written


def _vector_of(point: dict[str, Any], vector: str, dim: int) -> Any:
    value = point.get("vector")
    if isinstance(value, dict):
        value = value.get(vector)
    if not isinstance(value, list) or len(value) != dim:
        got = f"{len(value)} values" if isinstance(value, list) else repr(value)
        raise CliError(
            f"point {point['id']} has no {dim}-d vector {vector!r} ({got}); "
            "export to .jsonl instead"
        )
    return value


def _dense_vector(info: dict[str, Any], wanted: str | None, collection: str) -> tuple[str, int]:
    """The vector a .npy export holds (``""`` for the unnamed one) and its size."""
    vectors = info.get("config", {}).get("params", {}).get("vectors", {})
    configured = {"": vectors} if "size" in vectors else vectors
    if wanted is None:
        if len(configured) != 1:
            raise CliError(
                f"collection {collection!r} has vectors {sorted(configured)}; "
                "choose one with --vector"
            )
        wanted = next(iter(configured))
    params = configured.get(wanted)
    if params is None:
        raise CliError(
            f"collection {collection!r} has no vector {wanted!r} (it has {sorted(configured)})"
        )
    if params.get("multivector_config"):
        raise CliError(f"vector {wanted!r} is a multi-vector; export it to .jsonl")
    return wanted, int(params["size"])


def _npy_header(rows: int, dim: int) -> bytes:
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}"
    header = text.ljust(NPY_HEADER_BYTES - 10 - 1) + "\n"
    if len(header) > NPY_HEADER_BYTES - 10:
        raise CliError(f"shape ({rows}, {dim}) does not fit a .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")


class _Staged:
    """A file written as ``<name>.part`` and renamed to ``<name>`` only on success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self._file: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        self._file = self.part.open("wb")
        return self._file

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        assert self._file is not None
        self._file.close()
        if exc_type is None:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)
