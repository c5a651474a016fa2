"""``qdrant.Points``: each RPC is the REST points route of the same meaning; search,
query and upsert take the numpy fast path (``fastpath.py``) for dense vectors.

Rows missing here answer ``UNIMPLEMENTED`` naming the method (see ``servicer``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qdrant_client import grpc

from server.grpc import convert, fastpath, replies
from server.grpc.rpc import Rpc, servicer

P = "/collections/{name}/points"


def _field(request: Any) -> dict[str, str]:
    return {"name": request.collection_name, "field_name": request.field_name}


def _vector_name(request: Any) -> dict[str, str]:
    return {"name": request.collection_name, "vector_name": request.vector_name}


ROWS: dict[str, Rpc] = {
    "Upsert": Rpc("PUT", P, replies.points_operation, convert.upsert, fast=fastpath.upsert),
    "Delete": Rpc("POST", f"{P}/delete", replies.points_operation, convert.delete_points),
    "Get": Rpc("POST", P, replies.get_points, convert.get_points),
    "UpdateVectors": Rpc("PUT", f"{P}/vectors", replies.points_operation, convert.update_vectors),
    "DeleteVectors": Rpc(
        "POST", f"{P}/vectors/delete", replies.points_operation, convert.delete_vectors
    ),
    "UpdateBatch": Rpc("POST", f"{P}/batch", replies.update_batch, convert.update_batch),
    "SetPayload": Rpc("POST", f"{P}/payload", replies.points_operation, convert.set_payload),
    "OverwritePayload": Rpc("PUT", f"{P}/payload", replies.points_operation, convert.set_payload),
    "DeletePayload": Rpc(
        "POST", f"{P}/payload/delete", replies.points_operation, convert.delete_payload
    ),
    "ClearPayload": Rpc(
        "POST", f"{P}/payload/clear", replies.points_operation, convert.clear_payload
    ),
    "CreateFieldIndex": Rpc(
        "PUT", "/collections/{name}/index", replies.points_operation, convert.field_index
    ),
    "DeleteFieldIndex": Rpc(
        "DELETE",
        "/collections/{name}/index/{field_name:path}",
        replies.points_operation,
        params=_field,
    ),
    "Scroll": Rpc("POST", f"{P}/scroll", replies.scroll, convert.scroll),
    "Count": Rpc("POST", f"{P}/count", replies.count, convert.count),
    "Search": Rpc(
        "POST",
        f"{P}/search",
        replies.search,
        lambda r: convert.search(r, convert.search_vector(r)),
        fast=fastpath.search,
    ),
    "SearchBatch": Rpc(
        "POST",
        f"{P}/search/batch",
        replies.search_batch,
        lambda r: {
            "searches": [convert.search(s, convert.search_vector(s)) for s in r.search_points]
        },
        fast=fastpath.search_batch,
    ),
    "Query": Rpc("POST", f"{P}/query", replies.query, convert.query, fast=fastpath.query),
    "QueryBatch": Rpc(
        "POST",
        f"{P}/query/batch",
        replies.query_batch,
        lambda r: {"searches": [convert.query(q) for q in r.query_points]},
        fast=fastpath.query_batch,
    ),
    "SearchGroups": Rpc("POST", f"{P}/search/groups", replies.search_groups, convert.search_groups),
    "RecommendGroups": Rpc(
        "POST", f"{P}/recommend/groups", replies.recommend_groups, convert.recommend_groups
    ),
    "CreateVectorName": Rpc(
        "PUT",
        "/collections/{name}/vectors/{vector_name}",
        replies.points_operation,
        convert.vector_name_config,
        params=_vector_name,
    ),
    "DeleteVectorName": Rpc(
        "DELETE",
        "/collections/{name}/vectors/{vector_name}",
        replies.points_operation,
        params=_vector_name,
    ),
    "Recommend": Rpc("POST", f"{P}/recommend", replies.recommend, convert.recommend),
    "RecommendBatch": Rpc(
        "POST",
        f"{P}/recommend/batch",
        replies.recommend_batch,
        lambda r: {"searches": [convert.recommend(s) for s in r.recommend_points]},
    ),
    "Discover": Rpc("POST", f"{P}/discover", replies.discover, convert.discover),
    "DiscoverBatch": Rpc(
        "POST",
        f"{P}/discover/batch",
        replies.discover_batch,
        lambda r: {"searches": [convert.discover(s) for s in r.discover_points]},
    ),
    "QueryGroups": Rpc("POST", f"{P}/query/groups", replies.query_groups, convert.query_groups),
    "Facet": Rpc("POST", "/collections/{name}/facet", replies.facet, convert.facet),
    "SearchMatrixPairs": Rpc(
        "POST", f"{P}/search/matrix/pairs", replies.matrix_pairs, convert.matrix
    ),
    "SearchMatrixOffsets": Rpc(
        "POST", f"{P}/search/matrix/offsets", replies.matrix_offsets, convert.matrix
    ),
}


def build(app: FastAPI) -> Any:
    return servicer(grpc.PointsServicer, "Points", ROWS, app)
