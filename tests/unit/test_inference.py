"""The inference step: documents in a request become BM25 sparse vectors in place; a
document where no model of Quiver's can embed it is a 400 that says why."""

from __future__ import annotations

from typing import Any

import pytest

from server.api.inference import (
    VectorNames,
    embed_point_vectors,
    embed_query,
    embed_query_requests,
    embed_upsert,
    embed_vector_columns,
    is_inference_object,
)
from server.api.schemas import QueryRequest
from server.engine.requests import VectorColumns
from server.engine.text.bm25 import bm25_encoder
from server.errors import InvalidDocument, InvalidTextOptions, UnsupportedFeature

NAMES = VectorNames(sparse=frozenset({"bm25"}), dense=frozenset({"dense"}))
UNNAMED = VectorNames(sparse=frozenset({"bm25"}), dense=frozenset({""}))


def doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, "model": "qdrant/bm25", **extra}


def expected_document(text: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    vector = bm25_encoder(options).encode_documents([text])[0]
    return {"indices": vector.indices.tolist(), "values": vector.values.tolist()}


def test_named_point_vectors_are_embedded_as_documents_in_place() -> None:
    points = [{"bm25": doc("Running dogs"), "dense": [1.0, 2.0]}, {"dense": [0.0, 1.0]}]
    embed_point_vectors(points, NAMES)
    assert points == [
        {"bm25": expected_document("Running dogs"), "dense": [1.0, 2.0]},
        {"dense": [0.0, 1.0]},
    ]


def test_each_document_keeps_its_own_options() -> None:
    options = {"language": "none", "k": 2.0}
    points = [{"bm25": doc("The dogs")}, {"bm25": doc("The dogs", options=options)}]
    embed_point_vectors(points, NAMES)
    assert points[0]["bm25"] == expected_document("The dogs")
    assert points[1]["bm25"] == expected_document("The dogs", options)
    assert points[0] != points[1]


def test_batch_columns_are_embedded_in_place() -> None:
    columns: dict[str | None, list[Any]] = {
        "bm25": [doc("cats"), {"indices": [1], "values": [2.0]}]
    }
    embed_vector_columns(columns, NAMES)
    assert columns["bm25"] == [expected_document("cats"), {"indices": [1], "values": [2.0]}]


def test_a_query_document_weighs_each_distinct_token_once() -> None:
    embedded = embed_query(doc("dogs dogs cats"), "bm25", NAMES)
    assert embedded["values"] == [1.0, 1.0]
    assert embedded["indices"] == sorted(expected_document("dogs cats")["indices"])


def test_a_query_that_is_no_document_is_returned_as_is() -> None:
    query = {"indices": [3], "values": [1.0]}
    assert embed_query(query, "bm25", NAMES) is query


def test_model_name_is_case_insensitive_and_bm25_is_an_alias() -> None:
    for model in ("Qdrant/BM25", "bm25"):
        embedded = embed_query({"text": "dogs", "model": model}, "bm25", NAMES)
        assert embedded["values"] == [1.0]


def test_an_unknown_model_is_a_400_naming_the_supported_ones() -> None:
    with pytest.raises(InvalidDocument) as raised:
        embed_point_vectors([{"bm25": {"text": "x", "model": "openai/ada"}}], NAMES)
    assert raised.value.status_code == 400
    assert "openai/ada" in raised.value.message and "qdrant/bm25" in raised.value.message


@pytest.mark.parametrize(("using", "names"), [("dense", NAMES), (None, UNNAMED), ("", UNNAMED)])
def test_a_document_for_a_dense_vector_is_a_400_about_dense_models(
    using: str | None, names: VectorNames
) -> None:
    with pytest.raises(InvalidDocument) as raised:
        embed_query(doc("dogs"), using, names)
    assert "no dense embedding model" in raised.value.message
    assert "bm25" in raised.value.message


def test_an_unnamed_point_document_is_a_400_about_dense_models() -> None:
    with pytest.raises(InvalidDocument, match="no dense embedding model"):
        embed_point_vectors([doc("dogs")], UNNAMED)


def test_a_query_document_without_using_is_a_400_asking_for_the_sparse_name() -> None:
    with pytest.raises(InvalidDocument, match=r"name the sparse vector.*bm25"):
        embed_query(doc("dogs"), None, NAMES)


def test_a_document_for_an_unknown_name_is_a_400_listing_the_sparse_names() -> None:
    with pytest.raises(InvalidDocument, match=r"no sparse vector named 'other'.*bm25"):
        embed_point_vectors([{"other": doc("dogs")}], NAMES)


def test_bad_options_are_a_400_and_nothing_is_replaced() -> None:
    points = [{"bm25": doc("dogs")}, {"bm25": doc("cats", options={"k": -1})}]
    with pytest.raises(InvalidTextOptions):
        embed_point_vectors(points, NAMES)
    assert points[0]["bm25"] == doc("dogs")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (doc("x", extra=1), InvalidDocument),
        (doc("x", options=[1]), InvalidDocument),
        ({"image": "http://x/y.png", "model": "qdrant/clip"}, UnsupportedFeature),
        ({"object": {"a": 1}, "model": "custom"}, UnsupportedFeature),
    ],
)
def test_malformed_documents_are_400s(document: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        embed_point_vectors([{"bm25": document}], NAMES)


def test_a_vector_named_text_is_not_mistaken_for_a_document() -> None:
    assert not is_inference_object({"text": [0.1, 0.2], "model": [0.3]})
    assert is_inference_object(doc("hello"))


def expected_query(text: str) -> dict[str, Any]:
    vector = bm25_encoder(None).encode_queries([text])[0]
    return {"indices": vector.indices.tolist(), "values": vector.values.tolist()}


def test_query_requests_embed_the_main_query_nearest_and_every_prefetch_level() -> None:
    dense_stage = {"query": [1.0, 0.0], "using": "dense"}
    nested = {"prefetch": {"query": doc("deep"), "using": "bm25"}, "query": doc("mid"),
              "using": "bm25"}  # fmt: skip
    requests = [
        QueryRequest(query=doc("top"), using="bm25", prefetch=[dense_stage, nested]),
        QueryRequest(query={"nearest": doc("near")}, using="bm25"),
    ]
    embed_query_requests(requests, NAMES)
    assert requests[0].query == expected_query("top")
    assert requests[0].prefetch[0] == {"query": [1.0, 0.0], "using": "dense"}
    assert requests[0].prefetch[1]["query"] == expected_query("mid")
    assert requests[0].prefetch[1]["prefetch"]["query"] == expected_query("deep")
    assert requests[1].query == {"nearest": expected_query("near")}


def test_a_fusion_query_over_document_prefetches_keeps_its_fusion() -> None:
    request = QueryRequest(query={"fusion": "rrf"}, prefetch=[{"query": doc("a"), "using": "bm25"}])
    embed_query_requests([request], NAMES)
    assert request.query == {"fusion": "rrf"}
    assert request.prefetch[0]["query"] == expected_query("a")


def test_a_prefetch_document_for_a_dense_vector_is_a_400() -> None:
    request = QueryRequest(
        query={"fusion": "rrf"}, prefetch=[{"query": doc("a"), "using": "dense"}]
    )
    with pytest.raises(InvalidDocument, match="no dense embedding model"):
        embed_query_requests([request], NAMES)


def test_upsert_embeds_either_form() -> None:
    columns = VectorColumns({"bm25": [doc("cats")]}, 1)
    embed_upsert(columns, NAMES)
    assert columns.columns["bm25"] == [expected_document("cats")]
    points = [{"bm25": doc("cats")}]
    embed_upsert(points, NAMES)
    assert points == [{"bm25": expected_document("cats")}]


def test_a_very_deep_prefetch_chain_is_walked_only_to_a_bound() -> None:
    deepest = {"query": doc("deep"), "using": "bm25"}
    stage: dict[str, Any] = deepest
    for _ in range(500):
        stage = {"prefetch": stage}
    request = QueryRequest(query={"fusion": "rrf"}, prefetch=stage)
    embed_query_requests([request], NAMES)  # the query parser refuses such depth itself
    assert deepest["query"] == doc("deep")
