"""``qdrant.Collections``: each RPC is the REST collection route of the same meaning.

Not served (``UNIMPLEMENTED``): cluster setup and shard keys, which Quiver's REST API
does not serve either.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qdrant_client import grpc

from server.grpc import convert, replies
from server.grpc.rpc import Rpc, servicer, timeout_param

C = "/collections/{name}"

ROWS: dict[str, Rpc] = {
    "Get": Rpc("GET", C, replies.get_collection),
    "List": Rpc("GET", "/collections", replies.list_collections, params=lambda _: {}),
    "Create": Rpc("PUT", C, replies.collection_operation, convert.create_collection),
    "Update": Rpc("PATCH", C, replies.collection_operation, convert.update_collection),
    "Delete": Rpc("DELETE", C, replies.collection_operation),
    "CollectionExists": Rpc("GET", f"{C}/exists", replies.collection_exists),
    "UpdateAliases": Rpc(
        "POST",
        "/collections/aliases",
        replies.collection_operation,
        convert.update_aliases,
        params=lambda _: {},
        query=timeout_param,
    ),
    "ListAliases": Rpc("GET", "/aliases", replies.list_aliases, params=lambda _: {}),
    "ListCollectionAliases": Rpc("GET", f"{C}/aliases", replies.list_aliases),
    "CollectionClusterInfo": Rpc("GET", f"{C}/cluster", replies.collection_cluster),
}


def build(app: FastAPI) -> Any:
    return servicer(grpc.CollectionsServicer, "Collections", ROWS, app)
