"""Strict mode (``strict_mode_config``): every limit Qdrant 1.19 defines, allowed under
it, refused past it with Qdrant's status and message, and nothing written when refused.

Each API test runs on a single-node collection and on one split into two in-process
shards (the ``collection`` fixture), whose config carries the same strict mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from qdrant_client.http import models

from server.engine import strict_mode
from server.engine.filter_stats import condition_size, filter_conditions, unindexed_key
from server.engine.filters import parse_filter
from server.engine.rate_limit import RateLimits, TokenBucket
from server.errors import RateLimited, StrictModeViolation
from tests.helpers.api import Api, create_items, make_client

PATH = "/collections/items"
POINTS = f"{PATH}/points"


@pytest.fixture(params=[1, 2], ids=["single", "sharded"])
def collection(api: Api, request: pytest.FixtureRequest) -> str:
    """Ten 4-d points (``tests/helpers/api.py``), on one node or in two shards."""
    return create_items(api, shard_number=request.param)


def strict(api: Api, **limits: Any) -> None:
    """Turn strict mode on with ``limits`` (a PATCH, as a user would)."""
    api.result("PATCH", PATH, {"strict_mode_config": {"enabled": True, **limits}})


def refused(answer: tuple[int, Any], status: int, message: str) -> None:
    code, body = answer
    assert (code, body["status"]["error"]) == (status, message)


def count(api: Api) -> int:
    result: int = api.result("POST", f"{POINTS}/count", {"exact": False})["count"]
    return result


def limit_message(value: object, limit: object, name: str) -> str:
    return (
        f'Bad request: Limit exceeded {value} > {limit} for "{name}". '
        f'Help: Reduce the "{name}" parameter to or below {limit}.'
    )


QUERY = {"query": [1.0, 0.0, 0.0, 0.0]}


# -- the config -----------------------------------------------------------------------


FULL_CONFIG = {
    "enabled": True,
    "max_query_limit": 10,
    "max_timeout": 2,
    "unindexed_filtering_retrieve": False,
    "unindexed_filtering_update": False,
    "search_max_hnsw_ef": 3,
    "search_allow_exact": False,
    "search_max_oversampling": 1.5,
    "upsert_max_batchsize": 100,
    "search_max_batchsize": 5,
    "max_collection_vector_size_bytes": 1_000_000,
    "read_rate_limit": 1000,
    "write_rate_limit": 1000,
    "max_collection_payload_size_bytes": 1_000_000,
    "max_points_count": 1000,
    "filter_max_conditions": 10,
    "condition_max_size": 10,
    "multivector_config": {"colbert": {"max_vectors": 8}},
    "sparse_config": {"text": {"max_length": 100}},
    "max_payload_index_count": 4,
    "max_resident_memory_percent": 100,
}


def test_create_stores_every_field_and_info_parses_with_qdrant_client(tmp_path: Path) -> None:
    body = {"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": FULL_CONFIG}
    with make_client(tmp_path) as client:
        Api(client).result("PUT", PATH, body)
    with make_client(tmp_path) as client:  # persisted with the collection's config
        info = Api(client).result("GET", PATH)
    shown = info["config"]["strict_mode_config"]
    assert shown == FULL_CONFIG
    parsed = models.StrictModeConfigOutput.model_validate(shown)
    assert parsed.model_dump(exclude_none=True) == FULL_CONFIG
    models.CollectionInfo.model_validate(info)


def test_the_body_qdrant_client_sends_is_accepted(api: Api) -> None:
    sent = models.CreateCollection(
        vectors=models.VectorParams(size=4, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(**FULL_CONFIG),
    ).model_dump(mode="json", exclude_none=True)
    api.result("PUT", PATH, sent)
    assert api.result("GET", PATH)["config"]["strict_mode_config"] == FULL_CONFIG


def test_a_new_collection_shows_strict_mode_disabled(api: Api, collection: str) -> None:
    assert api.result("GET", PATH)["config"]["strict_mode_config"] == {"enabled": False}


def test_patch_changes_only_the_fields_it_gives(api: Api, collection: str) -> None:
    strict(api, max_query_limit=10, search_max_oversampling=1.5)
    api.result("PATCH", PATH, {"strict_mode_config": {"max_query_limit": 20}})
    shown = api.result("GET", PATH)["config"]["strict_mode_config"]
    assert shown == {"enabled": True, "max_query_limit": 20, "search_max_oversampling": 1.5}


def test_patch_turns_strict_mode_off_and_on(api: Api, collection: str) -> None:
    strict(api, max_query_limit=2)
    assert api.call("POST", f"{POINTS}/query", QUERY | {"limit": 3})[0] == 400
    api.result("PATCH", PATH, {"strict_mode_config": {"enabled": False}})
    assert len(api.result("POST", f"{POINTS}/query", QUERY | {"limit": 3})["points"]) == 3
    api.result("PATCH", PATH, {"strict_mode_config": {"enabled": True}})
    assert api.call("POST", f"{POINTS}/query", QUERY | {"limit": 3})[0] == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_query_limit", 0), ("read_rate_limit", 0), ("max_timeout", "2"), ("enabled", "yes")],
)
def test_a_bad_value_is_a_422_naming_the_field(
    api: Api, collection: str, field: str, value: Any
) -> None:
    code, body = api.call("PATCH", PATH, {"strict_mode_config": {field: value}})
    assert code == 422
    assert f"strict_mode_config.{field}" in body["status"]["error"]
    assert api.result("GET", PATH)["config"]["strict_mode_config"] == {"enabled": False}


def test_disabled_strict_mode_enforces_nothing(api: Api, collection: str) -> None:
    api.result("PATCH", PATH, {"strict_mode_config": {"enabled": False, "max_query_limit": 1}})
    assert len(api.result("POST", f"{POINTS}/query", QUERY | {"limit": 5})["points"]) == 5


# -- request limits ---------------------------------------------------------------------


def test_max_query_limit_on_query_search_and_scroll(api: Api, collection: str) -> None:
    strict(api, max_query_limit=5)
    assert len(api.result("POST", f"{POINTS}/query", QUERY | {"limit": 5})["points"]) == 5
    message = limit_message(6, 5, "limit")
    refused(api.call("POST", f"{POINTS}/query", QUERY | {"limit": 6}), 400, message)
    search = {"vector": [1.0, 0.0, 0.0, 0.0], "limit": 6}
    refused(api.call("POST", f"{POINTS}/search", search), 400, message)
    refused(api.call("POST", f"{POINTS}/scroll", {"limit": 6}), 400, message)
    recommend = {"positive": [1], "limit": 6}
    refused(api.call("POST", f"{POINTS}/recommend", recommend), 400, message)


def test_max_query_limit_covers_prefetches(api: Api, collection: str) -> None:
    strict(api, max_query_limit=5)
    body = QUERY | {"limit": 3, "prefetch": {"query": [0.0, 1.0, 0.0, 0.0], "limit": 7}}
    refused(api.call("POST", f"{POINTS}/query", body), 400, limit_message(7, 5, "limit"))


def test_groups_count_limit_times_group_size(api: Api, collection: str) -> None:
    strict(api, max_query_limit=15)
    body = QUERY | {"group_by": "city", "limit": 5, "group_size": 3}
    assert api.call("POST", f"{POINTS}/query/groups", body)[0] == 200
    body["group_size"] = 4
    refused(api.call("POST", f"{POINTS}/query/groups", body), 400, limit_message(20, 15, "limit"))


def test_matrix_counts_sample_times_limit(api: Api, collection: str) -> None:
    strict(api, max_query_limit=15)
    assert api.call("POST", f"{POINTS}/search/matrix/pairs", {"sample": 5, "limit": 3})[0] == 200
    answer = api.call("POST", f"{POINTS}/search/matrix/pairs", {"sample": 10, "limit": 2})
    refused(answer, 400, limit_message(20, 15, "limit"))


def test_facet_limit_and_exact(api: Api, collection: str) -> None:
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "city", "field_schema": "keyword"})
    strict(api, max_query_limit=2, search_allow_exact=False)
    assert len(api.result("POST", f"{PATH}/facet", {"key": "city", "limit": 2})["hits"]) == 2
    answer = api.call("POST", f"{PATH}/facet", {"key": "city", "limit": 3})
    refused(answer, 400, limit_message(3, 2, "limit"))
    answer = api.call("POST", f"{PATH}/facet", {"key": "city", "limit": 2, "exact": True})
    refused(answer, 400, "Bad request: Exact search disabled!. Help: Set exact=false.")


def test_max_timeout(api: Api, collection: str) -> None:
    strict(api, max_timeout=2)
    assert api.call("POST", f"{POINTS}/query?timeout=2", QUERY)[0] == 200
    answer = api.call("POST", f"{POINTS}/query?timeout=3", QUERY)
    refused(answer, 400, limit_message(3, 2, "timeout"))


def test_search_max_hnsw_ef(api: Api, collection: str) -> None:
    strict(api, search_max_hnsw_ef=64)
    assert api.call("POST", f"{POINTS}/query", QUERY | {"params": {"hnsw_ef": 64}})[0] == 200
    answer = api.call("POST", f"{POINTS}/query", QUERY | {"params": {"hnsw_ef": 65}})
    refused(answer, 400, limit_message(65, 64, "hnsw_ef"))


def test_search_allow_exact(api: Api, collection: str) -> None:
    strict(api, search_allow_exact=False)
    assert api.call("POST", f"{POINTS}/query", QUERY | {"params": {"exact": False}})[0] == 200
    answer = api.call("POST", f"{POINTS}/query", QUERY | {"params": {"exact": True}})
    refused(answer, 400, "Bad request: Exact search disabled!. Help: Set exact=false.")


def test_search_allow_exact_refuses_an_exact_count_as_qdrant(api: Api, collection: str) -> None:
    strict(api, search_allow_exact=False)
    assert count(api) == 10
    answer = api.call("POST", f"{POINTS}/count", {})  # Qdrant counts exactly by default
    refused(answer, 400, "Bad request: Exact search disabled!. Help: Set exact=false.")


def test_search_max_oversampling(api: Api, collection: str) -> None:
    strict(api, search_max_oversampling=2.0)
    ok_params = {"quantization": {"oversampling": 2.0}}
    assert api.call("POST", f"{POINTS}/query", QUERY | {"params": ok_params})[0] == 200
    params = {"quantization": {"oversampling": 2.5}}
    answer = api.call("POST", f"{POINTS}/query", QUERY | {"params": params})
    refused(answer, 400, limit_message(2.5, 2, "oversampling"))


def test_search_max_batchsize(api: Api, collection: str) -> None:
    strict(api, search_max_batchsize=2)
    searches = [QUERY, QUERY]
    assert api.call("POST", f"{POINTS}/query/batch", {"searches": searches})[0] == 200
    answer = api.call("POST", f"{POINTS}/query/batch", {"searches": [*searches, QUERY]})
    refused(answer, 400, limit_message(3, 2, "search batch size"))


# -- filters ---------------------------------------------------------------------------


CITY = {"must": [{"key": "city", "match": {"value": "Berlin"}}]}


def test_unindexed_filtering_retrieve(api: Api, collection: str) -> None:
    strict(api, unindexed_filtering_retrieve=False)
    message = (
        'Bad request: Index required but not found for "city" of one of the following '
        "types: [keyword]. Help: Create an index for this key or use a different filter."
    )
    refused(api.call("POST", f"{POINTS}/query", QUERY | {"filter": CITY}), 400, message)
    refused(api.call("POST", f"{POINTS}/scroll", {"filter": CITY}), 400, message)
    refused(api.call("POST", f"{POINTS}/count", {"filter": CITY, "exact": False}), 400, message)
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "city", "field_schema": "keyword"})
    assert len(api.result("POST", f"{POINTS}/scroll", {"filter": CITY})["points"]) == 5


def test_unindexed_range_names_both_numeric_index_types(api: Api, collection: str) -> None:
    strict(api, unindexed_filtering_retrieve=False)
    flt = {"must": [{"key": "n", "range": {"gte": 3}}]}
    code, body = api.call("POST", f"{POINTS}/scroll", {"filter": flt})
    assert code == 400
    assert 'not found for "n" of one of the following types: [float, integer]' in str(body)
    assert api.call("POST", f"{POINTS}/scroll", {"filter": {"must": [{"has_id": [1]}]}})[0] == 200


@pytest.mark.parametrize(
    ("options", "served", "unserved"),
    [
        ({"lookup": False}, {"range": {"gte": 3}}, {"match": {"value": 3}}),
        ({"range": False}, {"match": {"any": [3, 4]}}, {"range": {"lt": 3}}),
    ],
    ids=["lookup_false", "range_false"],
)
def test_an_integer_index_without_the_capability_counts_as_unindexed(
    api: Api, collection: str, options: dict[str, Any], served: Any, unserved: Any
) -> None:
    """Qdrant's integer ``lookup`` / ``range`` flags: the index answers only the kind of
    condition it was built for, so the other kind is an unindexed filter."""
    schema = {"type": "integer"} | options
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "n", "field_schema": schema})
    strict(api, unindexed_filtering_retrieve=False)
    ok = api.result("POST", f"{POINTS}/scroll", {"filter": {"must": [{"key": "n"} | served]}})
    assert ok["points"]
    code, body = api.call(
        "POST", f"{POINTS}/scroll", {"filter": {"must": [{"key": "n"} | unserved]}}
    )
    assert code == 400
    assert 'Index required but not found for "n"' in body["status"]["error"]


def test_a_facet_needs_an_integer_index_with_lookup(api: Api, collection: str) -> None:
    """An integer index with ``lookup: false`` keeps no value map, which facets read."""
    schema = {"type": "integer", "lookup": False}
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "n", "field_schema": schema})
    code, body = api.call("POST", f"{PATH}/facet", {"key": "n"})
    assert (code, body["status"]["error"].split(".")[0]) == (
        400,
        "Wrong input: No appropriate index for faceting: `n`",
    )
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "n", "field_schema": "integer"})
    assert len(api.result("POST", f"{PATH}/facet", {"key": "n", "limit": 3})["hits"]) == 3


def test_unindexed_filtering_update(api: Api, collection: str) -> None:
    strict(api, unindexed_filtering_update=False)
    answer = api.call("POST", f"{POINTS}/delete?wait=true", {"filter": CITY})
    assert answer[0] == 400 and '"city"' in answer[1]["status"]["error"]
    payload = {"payload": {"x": 1}, "filter": CITY}
    assert api.call("POST", f"{POINTS}/payload?wait=true", payload)[0] == 400
    assert count(api) == 10
    assert (
        api.result("POST", POINTS, {"ids": [1], "with_payload": True})[0]["payload"].get("x")
        is None
    )
    api.result("POST", f"{POINTS}/delete?wait=true", {"points": [1]})  # by id: no filter
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "city", "field_schema": "keyword"})
    api.result("POST", f"{POINTS}/delete?wait=true", {"filter": CITY})
    assert count(api) == 5


def test_unindexed_payload_in_a_formula(api: Api, collection: str) -> None:
    strict(api, unindexed_filtering_retrieve=False)
    formula = {"sum": ["$score", {"mult": [0.5, "n"]}]}
    body = {"prefetch": QUERY | {"limit": 5}, "query": {"formula": formula}}
    message = (
        'Bad request: Index required but not found for "n" of one of the following types: '
        "[float, integer]. Help: Create an index for this key or use a different formula "
        "expression."
    )
    refused(api.call("POST", f"{POINTS}/query", body), 400, message)
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "n", "field_schema": "integer"})
    assert len(api.result("POST", f"{POINTS}/query", body)["points"]) == 5


def test_filter_max_conditions(api: Api, collection: str) -> None:
    strict(api, filter_max_conditions=2)
    two = {"must": [{"key": "n", "range": {"gte": 1}}, {"key": "city", "match": {"value": "x"}}]}
    assert api.call("POST", f"{POINTS}/scroll", {"filter": two})[0] == 200
    three = {"must": two["must"], "should": [{"has_id": [1]}]}
    message = (
        "Bad request: Filter condition limit reached (3 > 2). "
        "Help: Reduce the amount of conditions of your filter."
    )
    refused(api.call("POST", f"{POINTS}/scroll", {"filter": three}), 400, message)


def test_condition_max_size(api: Api, collection: str) -> None:
    strict(api, condition_max_size=3)
    small = {"must": [{"key": "n", "match": {"any": [1, 2, 3]}}]}
    assert api.call("POST", f"{POINTS}/query", QUERY | {"filter": small})[0] == 200
    large = {"must": [{"key": "n", "match": {"any": [1, 2, 3, 4]}}]}
    message = (
        "Bad request: Condition size limit reached (4 > 3). "
        "Help: Reduce the size of your condition."
    )
    refused(api.call("POST", f"{POINTS}/query", QUERY | {"filter": large}), 400, message)


# -- writes and collection size ------------------------------------------------------


def points(first: int, n: int, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "points": [
            {"id": i, "vector": [1.0, 0.0, 0.0, float(i)], "payload": payload or {}}
            for i in range(first, first + n)
        ]
    }


def test_upsert_max_batchsize(api: Api, collection: str) -> None:
    strict(api, upsert_max_batchsize=3)
    api.result("PUT", f"{POINTS}?wait=true", points(100, 3))
    answer = api.call("PUT", f"{POINTS}?wait=true", points(200, 4))
    refused(answer, 400, limit_message(4, 3, "upsert limit"))
    batch = {"batch": {"ids": [300, 301, 302, 303], "vectors": [[1.0, 0, 0, 0]] * 4}}
    refused(api.call("PUT", f"{POINTS}?wait=true", batch), 400, limit_message(4, 3, "upsert limit"))
    assert count(api) == 13


def test_max_points_count(api: Api, collection: str) -> None:
    strict(api, max_points_count=11)
    api.result("PUT", f"{POINTS}?wait=true", points(100, 1))
    answer = api.call("PUT", f"{POINTS}?wait=true", points(200, 1))
    refused(answer, 400, "Bad request: Max points count limit of 11 reached!")
    assert count(api) == 11


def test_max_collection_vector_size_bytes(api: Api, collection: str) -> None:
    strict(api, max_collection_vector_size_bytes=161)  # ten 4-d float32 vectors: 160 bytes
    api.result("PUT", f"{POINTS}?wait=true", points(100, 1))
    answer = api.call("PUT", f"{POINTS}?wait=true", points(200, 1))
    refused(answer, 400, "Bad request: Max vector storage size limit of 0.00015354156MB reached!")
    assert count(api) == 11


def test_max_collection_payload_size_bytes(api: Api, collection: str) -> None:
    strict(api, max_collection_payload_size_bytes=100)
    answer = api.call("PUT", f"{POINTS}?wait=true", points(100, 1))
    refused(answer, 400, "Bad request: Max payload storage size limit of 0.00009536743MB reached!")
    answer = api.call("POST", f"{POINTS}/payload?wait=true", {"payload": {"x": 1}, "points": [1]})
    assert answer[0] == 400
    assert count(api) == 10
    api.result("PATCH", PATH, {"strict_mode_config": {"max_collection_payload_size_bytes": 10**6}})
    api.result("PUT", f"{POINTS}?wait=true", points(100, 1))


def test_max_payload_index_count(api: Api, collection: str) -> None:
    strict(api, max_payload_index_count=1)
    api.result("PUT", f"{PATH}/index?wait=true", {"field_name": "city", "field_schema": "keyword"})
    answer = api.call("PUT", f"{PATH}/index", {"field_name": "n", "field_schema": "integer"})
    message = (
        "Bad request: Collection already has the maximum number of payload indices (1). "
        "Help: Please delete an existing index before creating a new one."
    )
    refused(answer, 400, message)
    assert set(api.result("GET", PATH)["payload_schema"]) == {"city"}


def test_multivector_max_vectors(api: Api) -> None:
    config = {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    limits = {"enabled": True, "multivector_config": {"colbert": {"max_vectors": 2}}}
    body = {"vectors": {"colbert": config}, "strict_mode_config": limits}
    api.result("PUT", PATH, body)
    two = {"points": [{"id": 1, "vector": {"colbert": [[1.0, 0.0], [0.0, 1.0]]}}]}
    api.result("PUT", f"{POINTS}?wait=true", two)
    three = {"points": [{"id": 2, "vector": {"colbert": [[1.0, 0.0]] * 3}}]}
    message = "Bad request: Multivector 'colbert' has a limit of 2 vectors, but 3 were provided!"
    refused(api.call("PUT", f"{POINTS}?wait=true", three), 400, message)
    assert count(api) == 1


def test_sparse_max_length(api: Api) -> None:
    limits = {"enabled": True, "sparse_config": {"text": {"max_length": 2}}}
    api.result("PUT", PATH, {"sparse_vectors": {"text": {}}, "strict_mode_config": limits})
    two = {"points": [{"id": 1, "vector": {"text": {"indices": [1, 5], "values": [0.5, 0.5]}}}]}
    api.result("PUT", f"{POINTS}?wait=true", two)
    sparse = {"indices": [1, 2, 3], "values": [0.1, 0.2, 0.3]}
    message = "Bad request: Sparse vector 'text' has a limit of 2 indices, but 3 were provided!"
    answer = api.call(
        "PUT", f"{POINTS}?wait=true", {"points": [{"id": 2, "vector": {"text": sparse}}]}
    )
    refused(answer, 400, message)
    assert count(api) == 1


def ndjson(first: int, n: int) -> bytes:
    lines = [
        orjson.dumps({"id": i, "vector": [1.0, 0.0, 0.0, 0.0]}) for i in range(first, first + n)
    ]
    return b"\n".join(lines) + b"\n"


def bulk(api: Api, body: bytes, chunk_rows: int) -> tuple[int, Any]:
    response = api.client.post(
        f"{POINTS}/bulk",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"chunk_rows": chunk_rows},
    )
    return response.status_code, response.json()


def test_bulk_load_chunks_obey_upsert_max_batchsize(api: Api, collection: str) -> None:
    strict(api, upsert_max_batchsize=3)
    assert bulk(api, ndjson(100, 5), chunk_rows=3)[0] == 200
    refused(bulk(api, ndjson(200, 5), chunk_rows=4), 400, limit_message(4, 3, "upsert limit"))
    assert count(api) == 15


def test_bulk_load_is_refused_where_a_stream_cannot_be_checked(api: Api, collection: str) -> None:
    strict(api, write_rate_limit=100)
    code, body = bulk(api, ndjson(100, 2), chunk_rows=2)
    assert code == 400 and "Bulk loads are refused under strict mode" in body["status"]["error"]
    assert count(api) == 10


def test_no_graph_and_no_exact_search_refuses_a_full_scan(api: Api) -> None:
    body = {"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 0}}
    api.result("PUT", PATH, body | {"strict_mode_config": {"enabled": True}})
    api.result("PUT", f"{POINTS}?wait=true", points(1, 3, {"city": "Berlin"}))
    assert api.call("POST", f"{POINTS}/query", QUERY)[0] == 200
    strict(api, search_allow_exact=False)
    message = (
        "Bad request: Request is forbidden because global vector indexing is disabled "
        "(hnsw_config.m = 0). Help: Use tenant-specific filter, enable global vector "
        "indexing or enable strict mode `search_allow_exact` option"
    )
    refused(api.call("POST", f"{POINTS}/query", QUERY), 400, message)
    tenant = {"field_name": "city", "field_schema": {"type": "keyword", "is_tenant": True}}
    api.result("PUT", f"{PATH}/index?wait=true", tenant)
    by_tenant = QUERY | {"filter": CITY}
    answer = api.call("POST", f"{POINTS}/query", by_tenant)
    assert answer[0] == 400 and "hnsw_config.payload_m = 0" in answer[1]["status"]["error"]
    api.result("PATCH", PATH, {"hnsw_config": {"payload_m": 16}})
    assert len(api.result("POST", f"{POINTS}/query", by_tenant)["points"]) == 3
    assert api.call("POST", f"{POINTS}/scroll", {})[0] == 200  # no vector: no scan to refuse


# -- rate limits ------------------------------------------------------------------------


def test_read_rate_limit(api: Api, collection: str) -> None:
    strict(api, read_rate_limit=3)
    for _ in range(3):
        api.result("POST", POINTS, {"ids": [1]})
    response = api.client.post(POINTS, json={"ids": [1]})
    assert response.status_code == 429
    error = response.json()["status"]["error"]
    assert error.startswith(
        "Rate limiting exceeded: Read rate limit exceeded: Operation requires 1 tokens but only 0."
    )
    assert error.endswith("Retry after 20s")
    assert response.headers["Retry-After"] == "20"


def test_a_read_larger_than_the_bucket_is_refused_for_good(api: Api, collection: str) -> None:
    strict(api, read_rate_limit=3)
    response = api.client.post(POINTS, json={"ids": [1, 2, 3, 4]})
    assert response.status_code == 429
    assert response.json()["status"]["error"] == (
        "Rate limiting exceeded: Read rate limit exceeded, request larger than rate limiter "
        "capacity, please try to split your request"
    )
    assert "Retry-After" not in response.headers


def test_write_rate_limit_counts_points_and_writes_nothing_when_refused(
    api: Api, collection: str
) -> None:
    strict(api, write_rate_limit=5)
    api.result("PUT", f"{POINTS}?wait=true", points(100, 3))
    answer = api.call("PUT", f"{POINTS}?wait=true", points(200, 3))
    assert answer[0] == 429
    assert "Write rate limit exceeded: Operation requires 3 tokens but only 2." in str(answer[1])
    assert count(api) == 13
    api.result("PATCH", PATH, {"strict_mode_config": {"enabled": False}})
    api.result("PUT", f"{POINTS}?wait=true", points(200, 3))


def test_filtered_delete_costs_the_points_it_selects(api: Api, collection: str) -> None:
    strict(api, write_rate_limit=4)
    answer = api.call("POST", f"{POINTS}/delete?wait=true", {"filter": CITY})  # 5 points
    assert answer[0] == 429 and "request larger than rate limiter capacity" in str(answer[1])
    assert count(api) == 10


# -- the pieces, without a server -----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_per_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock=clock)
    bucket.take(60, "Read")
    with pytest.raises(RateLimited, match="Retry after 5s"):
        bucket.take(5, "Read")
    clock.now = 5.0
    bucket.take(5, "Read")


def test_a_new_rate_starts_a_full_bucket() -> None:
    limits, owner = RateLimits(), Clock()  # any object can own buckets
    limits.take(owner, "Write", 2, 2)
    with pytest.raises(RateLimited, match="Write rate limit exceeded: Operation requires 1"):
        limits.take(owner, "Write", 2, 1)
    limits.take(owner, "Write", 3, 3)  # the PATCHed rate: a new bucket, full
    limits.take(owner, "Read", 3, 3)  # reads and writes are counted apart


def test_filter_statistics_count_as_qdrant() -> None:
    flt = parse_filter(
        {
            "must": [{"key": "a", "match": {"any": ["x", "y", "z"]}}],
            "should": [
                {
                    "nested": {
                        "key": "items",
                        "filter": {"must": [{"key": "b", "range": {"gt": 1}}, {"has_id": [1, 2]}]},
                    }
                }
            ],
        }
    )
    assert flt is not None
    assert (filter_conditions(flt), condition_size(flt)) == (3, 3)
    assert unindexed_key(flt, {"a": {"type": "keyword"}}) == ("items[].b", ["float", "integer"])
    assert unindexed_key(flt, {"a": {"type": "integer"}}) == ("a", ["keyword"])


def test_resident_memory_limit() -> None:
    config = strict_mode.StrictModeConfig(max_resident_memory_percent=50)
    strict_mode.check_resident_memory(config, used_percent=50.0)
    with pytest.raises(StrictModeViolation, match="Resident memory usage is at 51%"):
        strict_mode.check_resident_memory(config, used_percent=51.0)
    assert 0.0 < strict_mode.resident_percent() < 100.0
