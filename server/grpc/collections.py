"""``qdrant.Collections``: each RPC is the REST collection route of the same meaning.

Not served (``UNIMPLEMENTED``): aliases, cluster setup and shard keys, which Quiver's
REST API does not serve either; an alias row is one line once ``/aliases`` exists.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qdrant_client import grpc

from server.grpc import convert, replies
from server.grpc.rpc import Rpc, servicer

C = "/collections/{name}"

ROWS: dict[str, Rpc] = {
    "Get": Rpc("GET", C, replies.get_collection),
    "List": Rpc("GET", "/collections", replies.list_collections, params=lambda _: {}),
    "Create": Rpc("PUT", C, replies.collection_operation, convert.create_collection),
    "Update": Rpc("PATCH", C, replies.collection_operation, convert.update_collection),
    "Delete": Rpc("DELETE", C, replies.collection_operation),
    "CollectionExists": Rpc("GET", f"{C}/exists", replies.collection_exists),
}


def build(app: FastAPI) -> Any:
    return servicer(grpc.CollectionsServicer, "Collections", ROWS, app)
