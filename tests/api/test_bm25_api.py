"""Server-side BM25 through the API: points and queries given as documents rank as BM25
computed independently here (numpy, Qdrant's idf over the live points), under upserts and
deletes; documents where Quiver cannot embed them are 400s that write nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server.engine.text.bm25 import bm25_encoder, token_index
from tests.helpers.api import Api
from tests.helpers.bm25 import CORPUS, MODEL, QUERIES, reference


def document(text: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"text": text, "model": MODEL} | ({"options": options} if options else {})


def create(api: Api, name: str = "docs") -> str:
    body = {
        "vectors": {"dense": {"size": 2, "distance": "Dot"}},
        "sparse_vectors": {"bm25": {"modifier": "idf"}},
    }
    api.result("PUT", f"/collections/{name}", body)
    return name


def upsert(api: Api, texts: dict[int, str], name: str = "docs") -> None:
    points = [
        {"id": i, "vector": {"bm25": document(text), "dense": [1.0, float(i)]}}
        for i, text in texts.items()
    ]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def search(api: Api, text: str, name: str = "docs", limit: int = 50) -> dict[int, float]:
    body = {"query": document(text), "using": "bm25", "limit": limit}
    hits = api.result("POST", f"/collections/{name}/points/query", body)["points"]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    return {hit["id"]: hit["score"] for hit in hits}


def assert_ranks_as_reference(api: Api, corpus: dict[int, str]) -> None:
    for query in QUERIES:
        got, want = search(api, query), reference(corpus, query)
        assert sorted(got) == sorted(want), query
        for i, score in want.items():
            assert got[i] == pytest.approx(score, rel=1e-5), (query, i)


def test_documents_rank_as_bm25_with_idf(api: Api) -> None:
    create(api)
    upsert(api, CORPUS)
    assert_ranks_as_reference(api, CORPUS)


def test_ranking_follows_upserts_and_deletes(api: Api) -> None:
    create(api)
    upsert(api, CORPUS)
    corpus = dict(CORPUS)
    changed = {2: "Sun and sea and sand", 11: "A quick brown dog chases a quick fox"}
    upsert(api, changed)
    corpus |= changed
    api.result("POST", "/collections/docs/points/delete?wait=true", {"points": [1, 7]})
    for gone in (1, 7):
        del corpus[gone]
    assert_ranks_as_reference(api, corpus)


def test_stored_vector_is_the_bm25_document_vector(api: Api) -> None:
    create(api)
    upsert(api, {1: CORPUS[1]})
    record = api.result("POST", "/collections/docs/points", {"ids": [1], "with_vector": True})
    stored = record[0]["vector"]["bm25"]
    expected = bm25_encoder(None).encode_documents([CORPUS[1]])[0]
    assert stored["indices"] == expected.indices.tolist()
    assert stored["values"] == pytest.approx(expected.values.tolist())
    assert token_index("fox") in stored["indices"]


def test_batch_form_takes_a_column_of_documents(api: Api) -> None:
    create(api)
    batch = {
        "ids": list(CORPUS),
        "vectors": {
            "bm25": [document(text) for text in CORPUS.values()],
            "dense": [[1.0, float(i)] for i in CORPUS],
        },
    }
    api.result("PUT", "/collections/docs/points?wait=true", {"batch": batch})
    assert_ranks_as_reference(api, CORPUS)


def test_bulk_ndjson_lines_may_carry_documents(api: Api) -> None:
    create(api)
    lines = b"\n".join(
        orjson.dumps({"id": i, "vector": {"bm25": document(text), "dense": [1.0, 0.0]}})
        for i, text in CORPUS.items()
    )
    response = api.client.post(
        "/collections/docs/points/bulk",
        content=lines,
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["accepted"] == len(CORPUS)
    assert_ranks_as_reference(api, CORPUS)


def test_bulk_rejects_a_row_with_a_bad_document_alone(api: Api) -> None:
    create(api)
    rows = [
        {"id": 1, "vector": {"bm25": document("quick fox")}},
        {"id": 2, "vector": {"bm25": {"text": "fox", "model": "unknown/model"}}},
        {"id": 3, "vector": {"dense": document("fox")}},
        {"id": 4, "vector": {"bm25": document("lazy dog")}},
    ]
    response = api.client.post(
        "/collections/docs/points/bulk",
        content=b"\n".join(orjson.dumps(row) for row in rows),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report = response.json()["result"]
    assert (report["accepted"], report["rejected"]) == (2, 2)
    errors = {error["row"]: error["error"] for error in report["errors"]}
    assert "unknown/model" in errors[1] and "no dense embedding model" in errors[2]
    assert search(api, "fox").keys() == {1}


def test_nearest_query_and_batch_query_take_documents(api: Api) -> None:
    create(api)
    upsert(api, CORPUS)
    nearest = {"query": {"nearest": document("quick fox")}, "using": "bm25", "limit": 50}
    single = api.result("POST", "/collections/docs/points/query", nearest)["points"]
    batch = api.result("POST", "/collections/docs/points/query/batch", {"searches": [nearest]})
    assert single == batch[0]["points"]
    assert {hit["id"] for hit in single} == set(reference(CORPUS, "quick fox"))


def test_hybrid_prefetch_of_a_document_and_a_dense_vector_fuses_both(api: Api) -> None:
    create(api)
    upsert(api, CORPUS)
    stages = [
        {"query": document("quick brown fox"), "using": "bm25", "limit": 20},
        {"query": [1.0, 0.5], "using": "dense", "limit": 20},
    ]
    body = {"prefetch": stages, "query": {"fusion": "rrf"}, "limit": 20}
    fused = api.result("POST", "/collections/docs/points/query", body)["points"]
    expected: dict[int, float] = {}
    for stage in stages:
        hits = api.result("POST", "/collections/docs/points/query", stage)["points"]
        for rank, hit in enumerate(hits):  # Qdrant's RRF, k = 2: 1 / (rank + 2)
            expected[hit["id"]] = expected.get(hit["id"], 0.0) + 1.0 / (rank + 2)
    assert {hit["id"]: hit["score"] for hit in fused} == pytest.approx(expected)


def test_document_options_reach_the_encoder(api: Api) -> None:
    create(api)
    options = {"language": "none", "k": 2.0}
    point = {"id": 1, "vector": {"bm25": document("The Dogs", options)}}
    api.result("PUT", "/collections/docs/points?wait=true", {"points": [point]})
    record = api.result("POST", "/collections/docs/points", {"ids": [1], "with_vector": True})
    expected = bm25_encoder(options).encode_documents(["The Dogs"])[0]
    assert record[0]["vector"]["bm25"]["indices"] == expected.indices.tolist()


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({"dense": document("dogs")}, "no dense embedding model"),
        ({"bm25": {"text": "dogs", "model": "openai/text-embedding-3"}}, "qdrant/bm25"),
        ({"bm25": document("dogs", {"k": -1})}, "`k`"),
        ({"bm25": document("dogs", {"tokenizer": "nope"})}, "tokenizer"),
        ({"other": document("dogs")}, "no sparse vector named 'other'"),
    ],
)
def test_bad_documents_are_400s_that_write_nothing(
    api: Api, vector: dict[str, Any], message: str
) -> None:
    create(api)
    points = [{"id": 1, "vector": {"bm25": document("fine")}}, {"id": 2, "vector": vector}]
    status, answer = api.put("/collections/docs/points?wait=true", {"points": points})
    assert status == 400, answer
    assert message in answer["status"]["error"]
    assert api.result("POST", "/collections/docs/points/count", {"exact": True})["count"] == 0


def test_a_query_document_for_a_dense_vector_is_a_400(api: Api) -> None:
    create(api)
    status, answer = api.post(
        "/collections/docs/points/query", {"query": document("dogs"), "using": "dense"}
    )
    assert status == 400
    assert "no dense embedding model" in answer["status"]["error"]
