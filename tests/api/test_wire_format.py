"""Details of Qdrant's wire format (issue 17, item 8): float32 values written as float32,
a plain vector given for a multi-vector."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import Api

MULTI = {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}


def test_scores_and_vectors_are_written_as_float32_as_qdrant_writes_them(api: Api) -> None:
    """0.15 is stored as the float32 nearest to it; Qdrant writes that as ``0.15``, its
    float64 reading would be ``0.15000000596046448``."""
    body = {"vectors": {"d": {"size": 2, "distance": "Dot"}, "m": MULTI}}
    body["sparse_vectors"] = {"s": {}}
    api.result("PUT", "/collections/f", body)
    vector = {"d": [0.15, 0.3], "m": [[0.15, 0.7]], "s": {"indices": [3], "values": [0.15]}}
    api.result("PUT", "/collections/f/points?wait=true", {"points": [{"id": 1, "vector": vector}]})
    for path, request in [
        ("points/query", {"query": [1.0, 0.0], "using": "d", "with_vector": True}),
        ("points/scroll", {"with_vector": True}),
        ("points", {"ids": [1], "with_vector": True}),
        ("points/search/matrix/offsets", {"using": "d", "sample": 1, "limit": 1}),
    ]:
        response = api.client.post(f"/collections/f/{path}", json=request)
        assert response.status_code == 200, response.text
        assert b"0.15000000596046448" not in response.content, path
        assert b"0.15" in response.content or path.startswith("points/search"), path
    hit = api.result("POST", "/collections/f/points/query", {"query": [1.0, 0.0], "using": "d"})
    assert hit["points"][0]["score"] == 0.15
    record: dict[str, Any] = api.result("GET", "/collections/f/points/1")
    assert record["vector"] == vector


def test_a_plain_vector_for_a_multi_vector_is_one_row_as_in_qdrant(api: Api) -> None:
    """Qdrant expands a single dense vector into a multi-vector of one (upsert and query);
    qdrant-client's local mode fails on both (a TypeError, and "Dense vector m is not
    found"), so the server is the reference here."""
    api.result("PUT", "/collections/m", {"vectors": {"m": MULTI}})
    point = {"id": 1, "vector": {"m": [0.5, 0.25]}}
    api.result("PUT", "/collections/m/points?wait=true", {"points": [point]})
    assert api.result("GET", "/collections/m/points/1")["vector"] == {"m": [[0.5, 0.25]]}
    query = {"query": [1.0, 0.0], "using": "m"}
    assert api.result("POST", "/collections/m/points/query", query)["points"][0]["score"] == 0.5
    status, answer = api.put("/collections/m/points", {"points": [{"id": 2, "vector": {"m": []}}]})
    assert status == 400, answer
