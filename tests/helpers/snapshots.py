"""Snapshot helpers shared by the snapshot tests: create, download, recover, upload,
the state a recovery must reproduce, and re-packing an archive member by member."""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

import numpy as np
import orjson

from tests.helpers.api import Api, wait_green

DIM = 16


def take_snapshot(api: Api, name: str) -> dict[str, Any]:
    description: dict[str, Any] = api.result("POST", f"/collections/{name}/snapshots?wait=true")
    return description


def download(api: Api, name: str, snapshot: str) -> bytes:
    response = api.client.get(f"/collections/{name}/snapshots/{snapshot}")
    assert response.status_code == 200, response.text
    return response.content


def recover(api: Api, name: str, location: str, **extra: Any) -> tuple[int, Any]:
    return api.put(f"/collections/{name}/snapshots/recover", {"location": location} | extra)


def upload(api: Api, name: str, data: bytes, query: str = "") -> tuple[int, Any]:
    response = api.client.post(
        f"/collections/{name}/snapshots/upload{query}",
        files={"snapshot": ("upload.snapshot", data, "application/octet-stream")},
    )
    return response.status_code, response.json()


def state(api: Api, name: str) -> dict[str, Any]:
    """Everything recovery must reproduce: points with vectors and payloads, the
    config, the payload indexes (with their point counts), the point count."""
    body = {"limit": 10_000, "with_payload": True, "with_vector": True}
    points = api.result("POST", f"/collections/{name}/points/scroll", body)["points"]
    info = api.result("GET", f"/collections/{name}")
    return {
        "points": sorted(points, key=lambda p: str(p["id"])),
        "config": info["config"],
        "payload_schema": info["payload_schema"],
        "points_count": info["points_count"],
    }


def member_offset(data: bytes, member: str) -> tuple[int, int]:
    """Where a member's bytes start in an archive, and how many there are."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        info = tar.getmember(member)
        return info.offset_data, info.size


def rebuilt_archive(data: bytes, change: Any) -> bytes:
    """The archive's members re-packed after ``change(name, bytes)`` (None drops one)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as source,
        tarfile.open(fileobj=out, mode="w") as target,
    ):
        for member in source.getmembers():
            extracted = source.extractfile(member)
            assert extracted is not None
            content = change(member.name, extracted.read())
            if content is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(content)
            target.addfile(info, io.BytesIO(content))
    return out.getvalue()


def indexed_archive(api: Api, name: str) -> bytes:
    """A snapshot of a collection with one sealed, indexed segment."""
    xb = np.random.default_rng(3).normal(size=(300, DIM)).astype(np.float32)
    config = {
        "vectors": {"size": DIM, "distance": "Euclid"},
        "optimizers_config": {"indexing_threshold": 200},
    }
    api.result("PUT", f"/collections/{name}", config)
    points = [{"id": i, "vector": v.tolist()} for i, v in enumerate(xb)]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
    wait_green(api, name)
    return download(api, name, take_snapshot(api, name)["name"])


def resigned(data: bytes, change: Any) -> bytes:
    """``rebuilt_archive`` with ``snapshot.json`` listing the changed members' real
    checksums, so only what ``change`` did to their content can be wrong."""
    files: dict[str, dict[str, Any]] = {}

    def change_and_sign(name: str, content: bytes) -> bytes | None:
        if name == "snapshot.json":
            return orjson.dumps(orjson.loads(content) | {"files": files})
        changed: bytes = change(name, content)
        files[name] = {"sha256": hashlib.sha256(changed).hexdigest(), "size": len(changed)}
        return changed

    return rebuilt_archive(data, change_and_sign)
