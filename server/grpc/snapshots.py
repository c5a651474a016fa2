"""``qdrant.Snapshots``: a collection's snapshots and full-storage snapshots, as the
REST snapshot routes serve them (a full snapshot's RPCs wait, as ``/snapshots`` does
by default)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qdrant_client import grpc

from server.grpc import replies
from server.grpc.rpc import Rpc, servicer

S = "/collections/{name}/snapshots"


def _snapshot(request: Any) -> dict[str, str]:
    return {"name": request.collection_name, "snapshot_name": request.snapshot_name}


ROWS: dict[str, Rpc] = {
    "Create": Rpc("POST", S, replies.create_snapshot, body=lambda _: {}),
    "List": Rpc("GET", S, replies.list_snapshots),
    "Delete": Rpc("DELETE", f"{S}/{{snapshot_name}}", replies.delete_snapshot, params=_snapshot),
    "CreateFull": Rpc(
        "POST", "/snapshots", replies.create_snapshot, body=lambda _: {}, params=lambda _: {}
    ),
    "ListFull": Rpc("GET", "/snapshots", replies.list_snapshots, params=lambda _: {}),
    "DeleteFull": Rpc(
        "DELETE",
        "/snapshots/{snapshot_name}",
        replies.delete_snapshot,
        params=lambda r: {"snapshot_name": r.snapshot_name},
    ),
}


def build(app: FastAPI) -> Any:
    return servicer(grpc.SnapshotsServicer, "Snapshots", ROWS, app)
