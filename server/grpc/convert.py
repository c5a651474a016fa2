"""gRPC request messages -> the JSON bodies of the REST routes that serve them.

qdrant-client's ``GrpcToRest`` (the conversion its own ``prefer_grpc`` mode relies on)
turns each message part into the REST model; ``dump`` writes that model as the JSON the
route parses, so the route's validation is the only one. Dense vectors never go
element by element through Python: ``dense`` reads a ``DenseVector``'s packed floats
straight into numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf.message import Message
from pydantic import BaseModel
from qdrant_client import grpc

from server.grpc.lean_client import Deferred

if TYPE_CHECKING:
    from qdrant_client.conversions import conversion

    G2R = conversion.GrpcToRest
else:  # the REST models it builds on load at the first conversion (lean_client.py)
    G2R = Deferred("qdrant_client.conversions.conversion", "GrpcToRest")

Json = dict[str, Any]

FIELD_TYPES = {
    grpc.FieldType.FieldTypeKeyword: "keyword",
    grpc.FieldType.FieldTypeInteger: "integer",
    grpc.FieldType.FieldTypeFloat: "float",
    grpc.FieldType.FieldTypeGeo: "geo",
    grpc.FieldType.FieldTypeText: "text",
    grpc.FieldType.FieldTypeBool: "bool",
    grpc.FieldType.FieldTypeDatetime: "datetime",
    grpc.FieldType.FieldTypeUuid: "uuid",
}


def dump(model: Any) -> Any:
    """A REST model (or a list / plain value) as the JSON a route reads: unset is absent."""
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(model, list):
        return [dump(item) for item in model]
    if isinstance(model, dict):
        return {key: dump(value) for key, value in model.items()}
    return model


def optional(message: Message, field: str, convert: Any = None) -> Any:
    """A ``optional`` / message field converted, or None when the sender left it out."""
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    return dump(convert(value)) if convert is not None else value


def compact(body: Json) -> Json:
    return {key: value for key, value in body.items() if value is not None}


def dense(vector: grpc.DenseVector) -> np.ndarray:
    """A ``DenseVector``'s floats as float32, from its packed wire bytes (no per-float
    Python step): the message is field 1, length-delimited, little-endian floats."""
    raw = vector.SerializeToString()
    if not raw:
        return np.zeros(0, dtype=np.float32)
    start, shift, length = 1, 0, 0
    while True:
        byte = raw[start]
        length |= (byte & 0x7F) << shift
        start += 1
        shift += 7
        if byte < 0x80:
            break
    if raw[0] != 0x0A or start + length != len(raw):  # not one packed field: be safe
        return np.asarray(vector.data, dtype=np.float32)
    return np.frombuffer(raw, dtype="<f4", offset=start)


# ---- collections -------------------------------------------------------------------


def create_collection(request: grpc.CreateCollection) -> Json:
    return compact(
        {
            "vectors": optional(request, "vectors_config", G2R.convert_vectors_config),
            "hnsw_config": optional(request, "hnsw_config", G2R.convert_hnsw_config_diff),
            "wal_config": optional(request, "wal_config", G2R.convert_wal_config_diff),
            "optimizers_config": optional(
                request, "optimizers_config", G2R.convert_optimizers_config_diff
            ),
            "shard_number": optional(request, "shard_number"),
            "on_disk_payload": optional(request, "on_disk_payload"),
            "replication_factor": optional(request, "replication_factor"),
            "write_consistency_factor": optional(request, "write_consistency_factor"),
            "quantization_config": optional(
                request, "quantization_config", G2R.convert_quantization_config
            ),
            "sparse_vectors": optional(
                request, "sparse_vectors_config", G2R.convert_sparse_vector_config
            ),
            "strict_mode_config": optional(
                request, "strict_mode_config", G2R.convert_strict_mode_config
            ),
            "metadata": G2R.convert_payload(request.metadata) if request.metadata else None,
        }
    )


def update_collection(request: grpc.UpdateCollection) -> Json:
    body: Json = dump(G2R.convert_update_collection(request))
    return body


def field_index(request: grpc.CreateFieldIndexCollection) -> Json:
    schema: Any = FIELD_TYPES.get(request.field_type)
    if request.HasField("field_index_params"):
        schema = dump(G2R.convert_payload_schema_params(request.field_index_params))
    return compact({"field_name": request.field_name, "field_schema": schema})


def update_aliases(request: grpc.ChangeAliases) -> Json:
    return {"actions": [dump(G2R.convert_alias_operations(a)) for a in request.actions]}


def vector_name_config(request: grpc.CreateVectorNameRequest) -> Json:
    """A ``CreateVectorNameRequest`` as ``PUT /collections/{c}/vectors/{name}``'s body
    (qdrant-client has no converter for it): ``{"dense": ...}`` or ``{"sparse": ...}``."""
    kind = request.WhichOneof("vector_config")
    if kind == "dense_config":
        config: Any = request.dense_config
        return {"dense": _dense_config(config)}
    if kind == "sparse_config":
        sparse = request.sparse_config
        return {
            "sparse": compact(
                {
                    "modifier": optional(sparse, "modifier", G2R.convert_modifier),
                    "datatype": optional(sparse, "datatype", G2R.convert_datatype),
                }
            )
        }
    raise ValueError("CreateVectorNameRequest needs dense_config or sparse_config")


def _dense_config(config: grpc.DenseVectorCreationConfig) -> Json:
    return compact(
        {
            "size": config.size,
            "distance": dump(G2R.convert_distance(config.distance)),
            "multivector_config": optional(
                config, "multivector_config", G2R.convert_multivector_config
            ),
            "datatype": optional(config, "datatype", G2R.convert_datatype),
        }
    )


# ---- points ------------------------------------------------------------------------


def point_id(value: grpc.PointId) -> int | str:
    converted = G2R.convert_point_id(value)
    return converted if isinstance(converted, int) else str(converted)


def selector(request: Message, field: str = "points") -> Json:
    """A ``PointsSelector`` as the route's ``points`` (ids) or ``filter``."""
    if not request.HasField(field):
        return {}
    chosen = getattr(request, field)
    if chosen.WhichOneof("points_selector_one_of") == "points":
        return {"points": [point_id(i) for i in chosen.points.ids]}
    return {"filter": dump(G2R.convert_filter(chosen.filter))}


def upsert(request: grpc.UpsertPoints) -> Json:
    return compact(
        {
            "points": [dump(G2R.convert_point_struct(point)) for point in request.points],
            "update_filter": optional(request, "update_filter", G2R.convert_filter),
            "update_mode": update_mode(request),
        }
    )


def update_mode(request: grpc.UpsertPoints) -> str | None:
    if not request.HasField("update_mode"):
        return None
    mode: Any = request.update_mode
    return str(G2R.convert_update_mode(mode).value)


def delete_points(request: grpc.DeletePoints) -> Json:
    return selector(request)


def get_points(request: grpc.GetPoints) -> Json:
    return compact(
        {
            "ids": [point_id(i) for i in request.ids],
            "with_payload": with_payload(request),
            "with_vector": optional(request, "with_vectors", G2R.convert_with_vectors_selector),
        }
    )


def hit_fields(request: Any) -> Json:
    """What every RPC that answers scored points asks the same way: its filter, limit,
    payload and vector selection, and search params."""
    return {
        "filter": optional(request, "filter", G2R.convert_filter),
        "limit": request.limit,
        "with_payload": with_payload(request),
        "with_vector": optional(request, "with_vectors", G2R.convert_with_vectors_selector),
        "params": optional(request, "params", G2R.convert_search_params),
    }


def with_payload(request: Message) -> Any:
    if not request.HasField("with_payload"):
        return None
    return dump(G2R.convert_with_payload_selector(request.with_payload))


def set_payload(request: grpc.SetPayloadPoints) -> Json:
    body = {"payload": G2R.convert_payload(request.payload), **selector(request, "points_selector")}
    if request.HasField("key"):
        body["key"] = request.key
    return body


def delete_payload(request: grpc.DeletePayloadPoints) -> Json:
    return {"keys": list(request.keys), **selector(request, "points_selector")}


def clear_payload(request: grpc.ClearPayloadPoints) -> Json:
    return selector(request, "points")


def scroll(request: grpc.ScrollPoints) -> Json:
    return compact(
        {
            "filter": optional(request, "filter", G2R.convert_filter),
            "offset": optional(request, "offset", G2R.convert_point_id),
            "limit": optional(request, "limit"),
            "with_payload": with_payload(request),
            "with_vector": optional(request, "with_vectors", G2R.convert_with_vectors_selector),
            "order_by": optional(request, "order_by", G2R.convert_order_by),
        }
    )


def count(request: grpc.CountPoints) -> Json:
    return compact({"filter": optional(request, "filter", G2R.convert_filter)})


def search(request: grpc.SearchPoints, vector: Any) -> Json:
    """A ``SearchPoints`` as ``/points/search``'s body, with ``vector`` as given."""
    return compact(
        {
            "vector": vector,
            **hit_fields(request),
            "offset": optional(request, "offset"),
            "score_threshold": optional(request, "score_threshold"),
        }
    )


def search_vector(request: grpc.SearchPoints) -> Any:
    """The wire form of a search's vector: dense, or sparse when indices are given,
    named ``{"name", "vector"}`` when ``vector_name`` is set."""
    values = np.asarray(request.vector, dtype=np.float32)
    raw: Any = values.tolist()
    if request.HasField("sparse_indices"):
        raw = {"indices": list(request.sparse_indices.data), "values": raw}
    if request.HasField("vector_name"):
        return {"name": request.vector_name, "vector": raw}
    return raw


def query(request: grpc.QueryPoints) -> Json:
    return dump(G2R.convert_query_points(request))  # type: ignore[no-any-return]


QUERY_FIELDS = (
    "prefetch",
    "query",
    "using",
    "filter",
    "params",
    "score_threshold",
    "with_payload",
    "with_vectors",
    "lookup_from",
    "limit",
)


def query_groups(request: grpc.QueryPointGroups) -> Json:
    """The fields a ``QueryPointGroups`` shares with ``QueryPoints`` read as a query, plus
    the grouping."""
    shared = grpc.QueryPoints(collection_name=request.collection_name)
    shared.prefetch.extend(request.prefetch)
    source: Message = request
    for name in QUERY_FIELDS[1:]:
        if not source.HasField(name):
            continue
        value = getattr(source, name)
        if isinstance(value, Message):
            getattr(shared, name).CopyFrom(value)
        else:
            setattr(shared, name, value)
    body = query(shared)
    body["group_by"] = request.group_by
    body.update(
        compact(
            {
                "group_size": optional(request, "group_size"),
                "with_lookup": optional(request, "with_lookup", G2R.convert_with_lookup),
            }
        )
    )
    return body


def facet(request: grpc.FacetCounts) -> Json:
    return compact(
        {
            "key": request.key,
            "filter": optional(request, "filter", G2R.convert_filter),
            "limit": optional(request, "limit"),
            "exact": optional(request, "exact"),
        }
    )


def matrix(request: grpc.SearchMatrixPoints) -> Json:
    return compact(
        {
            "filter": optional(request, "filter", G2R.convert_filter),
            "sample": optional(request, "sample"),
            "limit": optional(request, "limit"),
            "using": optional(request, "using"),
        }
    )


def search_groups(request: grpc.SearchPointGroups) -> Json:
    return compact(
        {
            "vector": search_vector(request),
            **hit_fields(request),
            "score_threshold": optional(request, "score_threshold"),
            "group_by": request.group_by,
            "group_size": request.group_size,
            "with_lookup": optional(request, "with_lookup", G2R.convert_with_lookup),
        }
    )


def recommend(request: grpc.RecommendPoints) -> Json:
    """Qdrant's legacy ``RecommendPoints``: examples by id or by vector."""
    return by_example(request) | compact({"offset": optional(request, "offset")})


def recommend_groups(request: grpc.RecommendPointGroups) -> Json:
    """``RecommendPointGroups``: a ``RecommendPoints`` body (less ``offset``) plus the
    grouping, as ``/points/recommend/groups`` reads it."""
    grouping = {
        "group_by": request.group_by,
        "group_size": request.group_size,
        "with_lookup": optional(request, "with_lookup", G2R.convert_with_lookup),
    }
    return by_example(request) | compact(grouping)


def by_example(request: grpc.RecommendPoints | grpc.RecommendPointGroups) -> Json:
    """The fields ``RecommendPoints`` and ``RecommendPointGroups`` share."""
    positive = [point_id(i) for i in request.positive]
    positive += [dump(G2R.convert_vector(v)) for v in request.positive_vectors]
    negative = [point_id(i) for i in request.negative]
    negative += [dump(G2R.convert_vector(v)) for v in request.negative_vectors]
    strategy = optional(request, "strategy")
    return compact(
        {
            "positive": positive,
            "negative": negative,
            "strategy": None if strategy is None else _strategy(strategy),
            **hit_fields(request),
            "score_threshold": optional(request, "score_threshold"),
            "using": optional(request, "using"),
            "lookup_from": optional(request, "lookup_from", G2R.convert_lookup_location),
        }
    )


def _strategy(value: Any) -> str:
    return str(G2R.convert_recommend_strategy(value).value)


def discover(request: grpc.DiscoverPoints) -> Json:
    """Qdrant's legacy ``DiscoverPoints``: a target and context pairs, by id or vector."""
    target = None
    if request.HasField("target") and request.target.HasField("single"):
        target = _example(request.target.single)
    context = [
        {"positive": _example(pair.positive), "negative": _example(pair.negative)}
        for pair in request.context
    ]
    return compact(
        {
            "target": target,
            "context": context,
            **hit_fields(request),
            "offset": optional(request, "offset"),
            "using": optional(request, "using"),
            "lookup_from": optional(request, "lookup_from", G2R.convert_lookup_location),
        }
    )


def _example(example: grpc.VectorExample) -> Any:
    if example.WhichOneof("example") == "id":
        return point_id(example.id)
    return dump(G2R.convert_vector(example.vector))


def update_vectors(request: grpc.UpdatePointVectors) -> Json:
    return compact(
        {
            "points": [dump(G2R.convert_point_vectors(point)) for point in request.points],
            "update_filter": optional(request, "update_filter", G2R.convert_filter),
        }
    )


def delete_vectors(request: grpc.DeletePointVectors) -> Json:
    return {"vector": list(request.vectors.names), **selector(request, "points_selector")}


def update_batch(request: grpc.UpdateBatchPoints) -> Json:
    operations = [dump(G2R.convert_points_update_operation(op)) for op in request.operations]
    return {"operations": operations}
