"""REST results (the JSON a route answers) -> gRPC reply messages.

The inverse of ``convert.py``, through qdrant-client's ``RestToGrpc``: the REST model is
built from the route's JSON and converted, so what a gRPC client reads is what a REST
client reads. Scored points, which a search returns by the thousand, are built directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qdrant_client import grpc

from server.grpc.lean_client import Deferred

if TYPE_CHECKING:
    from qdrant_client.conversions.conversion import RestToGrpc as R2G
    from qdrant_client.http import models as rest
else:  # loaded by the first reply that converts (lean_client.py)
    R2G = Deferred("qdrant_client.conversions.conversion", "RestToGrpc")
    rest = Deferred("qdrant_client.http.models")


def payload_to_grpc(payload: dict[str, Any]) -> dict[str, grpc.Value]:
    """qdrant-client's payload conversion, imported at the first payload."""
    from qdrant_client.conversions.conversion import payload_to_grpc as convert

    return convert(payload)


def point_id(value: int | str) -> grpc.PointId:
    return grpc.PointId(num=value) if isinstance(value, int) else grpc.PointId(uuid=value)


def fill_scored(target: Any, hits: list[dict[str, Any]]) -> None:
    """Append ``render.scored_points``' dicts to a repeated ``ScoredPoint`` field, in
    place (a search returns them by the thousand: no intermediate messages)."""
    for hit in hits:
        point = target.add(score=hit["score"], version=hit.get("version") or 0)
        ident = hit["id"]
        if isinstance(ident, int):
            point.id.num = ident
        else:
            point.id.uuid = ident
        if hit.get("payload"):  # the converter's values are what the constructor reads
            point.MergeFrom(grpc.ScoredPoint(payload=payload_to_grpc(hit["payload"])))
        if hit.get("vector") is not None:
            point.vectors.CopyFrom(R2G.convert_vector_struct_output(_plain(hit["vector"])))
        if hit.get("order_value") is not None:
            point.order_value.CopyFrom(R2G.convert_order_value(hit["order_value"]))


def batch_results(target: Any, results: list[list[dict[str, Any]]]) -> None:
    for hits in results:
        fill_scored(target.add().result, hits)


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


def query(result: Any, time: float) -> grpc.QueryResponse:
    reply = grpc.QueryResponse(time=time)
    fill_scored(reply.result, result["points"])
    return reply


def query_batch(result: Any, time: float) -> grpc.QueryBatchResponse:
    reply = grpc.QueryBatchResponse(time=time)
    batch_results(reply.result, [r["points"] for r in result])
    return reply


def create_snapshot(result: Any, time: float) -> grpc.CreateSnapshotResponse:
    return grpc.CreateSnapshotResponse(snapshot_description=snapshot(result), time=time)


def list_snapshots(result: Any, time: float) -> grpc.ListSnapshotsResponse:
    found = [snapshot(item) for item in result]
    return grpc.ListSnapshotsResponse(snapshot_descriptions=found, time=time)


def delete_snapshot(result: Any, time: float) -> grpc.DeleteSnapshotResponse:
    return grpc.DeleteSnapshotResponse(time=time)


def query_groups(result: Any, time: float) -> grpc.QueryGroupsResponse:
    groups = R2G.convert_groups_result(rest.GroupsResult.model_validate(result))
    return grpc.QueryGroupsResponse(result=groups, time=time)


def facet(result: Any, time: float) -> grpc.FacetResponse:
    hits = [
        R2G.convert_facet_value_hit(rest.FacetValueHit.model_validate(h)) for h in result["hits"]
    ]
    return grpc.FacetResponse(hits=hits, time=time)


def matrix_pairs(result: Any, time: float) -> grpc.SearchMatrixPairsResponse:
    pairs = R2G.convert_search_matrix_pairs(rest.SearchMatrixPairsResponse.model_validate(result))
    return grpc.SearchMatrixPairsResponse(result=pairs, time=time)


def matrix_offsets(result: Any, time: float) -> grpc.SearchMatrixOffsetsResponse:
    model = rest.SearchMatrixOffsetsResponse.model_validate(result)
    return grpc.SearchMatrixOffsetsResponse(
        result=R2G.convert_search_matrix_offsets(model), time=time
    )


def search_groups(result: Any, time: float) -> grpc.SearchGroupsResponse:
    groups = R2G.convert_groups_result(rest.GroupsResult.model_validate(result))
    return grpc.SearchGroupsResponse(result=groups, time=time)


def update_batch(result: Any, time: float) -> grpc.UpdateBatchResponse:
    return grpc.UpdateBatchResponse(result=[update_result(r) for r in result], time=time)


def recommend_groups(result: Any, time: float) -> grpc.RecommendGroupsResponse:
    groups = R2G.convert_groups_result(rest.GroupsResult.model_validate(result))
    return grpc.RecommendGroupsResponse(result=groups, time=time)


def list_aliases(result: Any, time: float) -> grpc.ListAliasesResponse:
    aliases = [
        R2G.convert_alias_description(rest.AliasDescription.model_validate(a))
        for a in result["aliases"]
    ]
    return grpc.ListAliasesResponse(aliases=aliases, time=time)


def collection_cluster(result: Any, time: float) -> grpc.CollectionClusterInfoResponse:
    reply = R2G.convert_collection_cluster_info(rest.CollectionClusterInfo.model_validate(result))
    reply.time = time
    return reply


Reply = Callable[[Any, float], Any]
"""A REST route's result and its time -> the RPC's response message."""


def _filled(message: Any, fill: Callable[[Any, Any], None]) -> Reply:
    """The reply of an RPC whose ``result`` field ``fill`` writes: one list of scored
    points (``fill_scored``) or one per request of a batch (``batch_results``)."""

    def reply(result: Any, time: float) -> Any:
        built = message(time=time)
        fill(built.result, result)
        return built

    return reply


search = _filled(grpc.SearchResponse, fill_scored)
search_batch = _filled(grpc.SearchBatchResponse, batch_results)
recommend = _filled(grpc.RecommendResponse, fill_scored)
recommend_batch = _filled(grpc.RecommendBatchResponse, batch_results)
discover = _filled(grpc.DiscoverResponse, fill_scored)
discover_batch = _filled(grpc.DiscoverBatchResponse, batch_results)
