"""The common errors in Qdrant 1.19's exact status and words (from its source and its
OpenAPI tests): clients and tests written against Qdrant match on these strings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api, create_items

P = "/collections/items"
QUERY = [1.0, 0.0, 0.0, 0.0]

CASES: list[tuple[str, str, str, Any, int, str]] = [
    ("missing collection", "GET", "/collections/nope", None, 404,
     "Not found: Collection `nope` doesn't exist!"),
    ("missing collection, query", "POST", "/collections/nope/points/query", {"query": QUERY},
     404, "Not found: Collection `nope` doesn't exist!"),
    ("missing point", "GET", f"{P}/points/999", None, 404,
     "Not found: No point with id 999 found"),
    ("wrong vector size, upsert", "PUT", f"{P}/points?wait=true",
     {"points": [{"id": 1, "vector": [1.0, 2.0, 3.0]}]}, 400,
     "Wrong input: Vector dimension error: expected dim: 4, got 3"),
    ("wrong vector size, query", "POST", f"{P}/points/query", {"query": [1.0, 2.0, 3.0]}, 400,
     "Wrong input: Vector dimension error: expected dim: 4, got 3"),
    ("wrong vector name, query", "POST", f"{P}/points/query", {"query": QUERY, "using": "zz"},
     400, "Wrong input: Not existing vector name error: zz"),
    ("wrong vector name, upsert", "PUT", f"{P}/points?wait=true",
     {"points": [{"id": 1, "vector": {"zz": QUERY}}]}, 400,
     "Wrong input: Not existing vector name error: zz"),
    ("duplicate collection", "PUT", P, {"vectors": {"size": 4, "distance": "Dot"}}, 409,
     "Wrong input: Collection `items` already exists!"),
    ("limit 0, search", "POST", f"{P}/points/search", {"vector": QUERY, "limit": 0}, 422,
     "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]"),
    ("limit 0, query", "POST", f"{P}/points/query", {"query": QUERY, "limit": 0}, 422,
     "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]"),
    ("limit 0, scroll", "POST", f"{P}/points/scroll", {"limit": 0}, 422,
     "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]"),
    ("negative limit", "POST", f"{P}/points/search", {"vector": QUERY, "limit": -1}, 400,
     "Format error in JSON body: invalid value: integer `-1`, expected usize"),
    ("missing limit", "POST", f"{P}/points/search", {"vector": QUERY}, 400,
     "Format error in JSON body: missing field `limit`"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])  # fmt: skip
def test_common_errors_read_as_qdrants(
    api: Api, method: str, path: str, body: Any, status: int, message: str
) -> None:
    create_items(api)
    before = api.result("POST", f"{P}/points/scroll", {"limit": 100, "with_vector": True})
    got, answer = api.call(method, path, body)
    assert (got, answer["status"]) == (status, {"error": message})
    assert api.result("POST", f"{P}/points/scroll", {"limit": 100, "with_vector": True}) == before


@pytest.mark.parametrize(
    "flt",
    [{"must": [{"key": "a", "bogus": 1}]}, {"must": "x"}, {"should": [3]}],
)
def test_a_malformed_filter_is_a_format_error_naming_where(api: Api, flt: Any) -> None:
    create_items(api)
    status, answer = api.call("POST", f"{P}/points/query", {"query": QUERY, "filter": flt})
    assert status == 400
    error = answer["status"]["error"]
    assert error.startswith("Format error in JSON body: filter: ")
    assert next(iter(flt)) in error  # the clause at fault is named


def test_a_bad_query_parameter_names_the_query_parameters(api: Api) -> None:
    status, answer = api.get("/telemetry?details_level=-1")
    assert status == 422
    assert answer["status"]["error"] == (
        "Validation error in query parameters: "
        "[details_level: value -1 invalid, must be 0 or larger]"
    )
