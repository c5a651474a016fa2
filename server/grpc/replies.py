"""REST results (the JSON a route answers) -> gRPC reply messages.

The inverse of ``convert.py``, through qdrant-client's ``RestToGrpc``: the REST model is
built from the route's JSON and converted, so what a gRPC client reads is what a REST
client reads. Scored points, which a search returns by the thousand, are built directly.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc
from qdrant_client.conversions.conversion import RestToGrpc, payload_to_grpc
from qdrant_client.http import models as rest

R2G = RestToGrpc


def point_id(value: int | str) -> grpc.PointId:
    return grpc.PointId(num=value) if isinstance(value, int) else grpc.PointId(uuid=value)


def scored_point(hit: dict[str, Any]) -> grpc.ScoredPoint:
    """One of ``render.scored_points``' dicts as a message."""
    fields: dict[str, Any] = {"id": point_id(hit["id"]), "score": hit["score"]}
    fields["version"] = hit.get("version") or 0
    if hit.get("payload"):
        fields["payload"] = payload_to_grpc(hit["payload"])
    if hit.get("vector") is not None:
        fields["vectors"] = R2G.convert_vector_struct_output(_plain(hit["vector"]))
    if hit.get("order_value") is not None:
        fields["order_value"] = R2G.convert_order_value(hit["order_value"])
    return grpc.ScoredPoint(**fields)


def scored_points(hits: list[dict[str, Any]]) -> list[grpc.ScoredPoint]:
    return [scored_point(hit) for hit in hits]


def _plain(vector: Any) -> Any:
    """Numpy arrays (a fast path's results) as lists, which the converter reads."""
    if hasattr(vector, "tolist"):
        return vector.tolist()
    if isinstance(vector, dict):
        return {name: _plain(value) for name, value in vector.items()}
    return vector


def record(found: dict[str, Any]) -> grpc.RetrievedPoint:
    """One of ``render.records``' dicts as a message (no payload: an empty map, as
    Qdrant sends it)."""
    fields: dict[str, Any] = {"id": point_id(found["id"])}
    if found.get("payload"):
        fields["payload"] = payload_to_grpc(found["payload"])
    if found.get("vector") is not None:
        fields["vectors"] = R2G.convert_vector_struct_output(_plain(found["vector"]))
    if found.get("order_value") is not None:
        fields["order_value"] = R2G.convert_order_value(found["order_value"])
    return grpc.RetrievedPoint(**fields)


def records(found: list[dict[str, Any]]) -> list[grpc.RetrievedPoint]:
    return [record(item) for item in found]


def update_result(result: Any) -> grpc.UpdateResult:
    return R2G.convert_update_result(rest.UpdateResult.model_validate(result))


def collection_info(result: Any) -> grpc.CollectionInfo:
    return R2G.convert_collection_info(rest.CollectionInfo.model_validate(result))


def snapshot(result: Any) -> grpc.SnapshotDescription:
    return R2G.convert_snapshot_description(rest.SnapshotDescription.model_validate(result))


# ---- replies, one per response message: (REST result, seconds) -> message ----------


def collection_operation(result: Any, time: float) -> grpc.CollectionOperationResponse:
    return grpc.CollectionOperationResponse(result=bool(result), time=time)


def get_collection(result: Any, time: float) -> grpc.GetCollectionInfoResponse:
    return grpc.GetCollectionInfoResponse(result=collection_info(result), time=time)


def list_collections(result: Any, time: float) -> grpc.ListCollectionsResponse:
    names = [grpc.CollectionDescription(name=c["name"]) for c in result["collections"]]
    return grpc.ListCollectionsResponse(collections=names, time=time)


def collection_exists(result: Any, time: float) -> grpc.CollectionExistsResponse:
    exists = grpc.CollectionExists(exists=bool(result["exists"]))
    return grpc.CollectionExistsResponse(result=exists, time=time)


def points_operation(result: Any, time: float) -> grpc.PointsOperationResponse:
    return grpc.PointsOperationResponse(result=update_result(result), time=time)


def get_points(result: Any, time: float) -> grpc.GetResponse:
    return grpc.GetResponse(result=records(result), time=time)


def scroll(result: Any, time: float) -> grpc.ScrollResponse:
    reply = grpc.ScrollResponse(result=records(result["points"]), time=time)
    if result.get("next_page_offset") is not None:
        reply.next_page_offset.CopyFrom(point_id(result["next_page_offset"]))
    return reply


def count(result: Any, time: float) -> grpc.CountResponse:
    return grpc.CountResponse(result=grpc.CountResult(count=result["count"]), time=time)


def search(result: Any, time: float) -> grpc.SearchResponse:
    return grpc.SearchResponse(result=scored_points(result), time=time)


def search_batch(result: Any, time: float) -> grpc.SearchBatchResponse:
    batches = [grpc.BatchResult(result=scored_points(hits)) for hits in result]
    return grpc.SearchBatchResponse(result=batches, time=time)


def query(result: Any, time: float) -> grpc.QueryResponse:
    return grpc.QueryResponse(result=scored_points(result["points"]), time=time)


def query_batch(result: Any, time: float) -> grpc.QueryBatchResponse:
    batches = [grpc.BatchResult(result=scored_points(r["points"])) for r in result]
    return grpc.QueryBatchResponse(result=batches, time=time)


def create_snapshot(result: Any, time: float) -> grpc.CreateSnapshotResponse:
    return grpc.CreateSnapshotResponse(snapshot_description=snapshot(result), time=time)


def list_snapshots(result: Any, time: float) -> grpc.ListSnapshotsResponse:
    found = [snapshot(item) for item in result]
    return grpc.ListSnapshotsResponse(snapshot_descriptions=found, time=time)


def delete_snapshot(result: Any, time: float) -> grpc.DeleteSnapshotResponse:
    return grpc.DeleteSnapshotResponse(time=time)
