"""Multi-vector collections over HTTP: MaxSim exact search, MUVERA index, pooling, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.data import clustered_set

DIM = 16


def token_sets(n: int, seed: int, low: int = 2, high: int = 9) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((int(rng.integers(low, high)), DIM)).astype(np.float32)
        for _ in range(n)
    ]


def maxsim(query: np.ndarray, doc: np.ndarray, cosine: bool = True) -> float:
    if cosine:
        query = query / np.linalg.norm(query, axis=1, keepdims=True)
        doc = doc / np.linalg.norm(doc, axis=1, keepdims=True)
    return float((query.astype(np.float64) @ doc.astype(np.float64).T).max(axis=1).sum())


def create(api: Api, name: str = "mv", **extra: Any) -> None:
    body = {
        "vectors": {
            "size": DIM,
            "distance": "Cosine",
            "multivector_config": {"comparator": "max_sim"},
        }
    } | extra
    api.result("PUT", f"/collections/{name}", body)


def upsert(api: Api, name: str, docs: list[np.ndarray], first: int = 0, **payload: Any) -> None:
    for start in range(0, len(docs), 500):
        points = [
            {"id": first + start + i, "vector": d.tolist(), "payload": {"n": first + start + i}}
            for i, d in enumerate(docs[start : start + 500])
        ]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def query(api: Api, name: str, q: np.ndarray, **extra: Any) -> list[dict[str, Any]]:
    body = {"query": q.tolist(), "limit": 10} | extra
    points: list[dict[str, Any]] = api.result("POST", f"/collections/{name}/points/query", body)[
        "points"
    ]
    return points


def test_exact_maxsim_ranks_and_scores_like_numpy(api: Api) -> None:
    create(api)
    docs = token_sets(200, seed=1)
    upsert(api, "mv", docs)
    for q in token_sets(5, seed=2):
        found = query(api, "mv", q, limit=5)
        expected = sorted(range(len(docs)), key=lambda i: -maxsim(q, docs[i]))[:5]
        assert [p["id"] for p in found] == expected
        for point in found:
            assert point["score"] == pytest.approx(maxsim(q, docs[point["id"]]), rel=1e-4)


def clustered_docs(
    n_docs: int, n_queries: int, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    tokens, offsets, q_tokens, q_offsets = clustered_set(n_docs, n_queries, dim=32, seed=seed)
    docs = [tokens[offsets[i] : offsets[i + 1]] for i in range(n_docs)]
    queries = [q_tokens[q_offsets[i] : q_offsets[i + 1]] for i in range(n_queries)]
    return docs, queries


def create_muvera(api: Api, name: str, threshold: int = 600, **index: Any) -> None:
    api.result(
        "PUT",
        f"/collections/{name}",
        {
            "vectors": {
                "colbert": {
                    "size": 32,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "max_sim"},
                },
                "dense": {"size": 4, "distance": "Cosine"},
            },
            "optimizers_config": {"indexing_threshold": threshold},
            "hnsw_config": {"full_scan_threshold": 10},  # KB: filtered queries use MUVERA
            "index": {"type": "muvera"} | index,
        },
    )


def upsert_named(api: Api, name: str, docs: list[np.ndarray], first: int = 0) -> None:
    for start in range(0, len(docs), 500):
        points = [
            {
                "id": first + start + i,
                "vector": {"colbert": d.tolist(), "dense": [1.0, float(i % 7), 0.5, -1.0]},
                "payload": {"n": first + start + i, "even": (first + start + i) % 2 == 0},
            }
            for i, d in enumerate(docs[start : start + 500])
        ]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def ids_of(points: list[dict[str, Any]]) -> list[int]:
    return [p["id"] for p in points]


@pytest.mark.slow
def test_muvera_index_recalls_exact_maxsim_with_filters_and_explains(api: Api) -> None:
    docs, queries = clustered_docs(1500, 30)
    create_muvera(api, "mv")
    upsert_named(api, "mv", docs)
    info = wait_green(api, "mv")
    assert info["indexed_vectors_count"] == 1000 * 2  # two batches sealed, 500 still exact
    memory = info["vectors_memory"]["colbert"]
    assert {"tokens", "fde_codes", "fde_graph"} <= set(memory["bytes"])
    hits = 0
    for q in queries:
        approx = query(api, "mv", q, using="colbert")
        exact = query(api, "mv", q, using="colbert", params={"exact": True})
        hits += len(set(ids_of(approx)) & set(ids_of(exact)))
        # re-ranked scores are exact MaxSim scores
        by_id = {p["id"]: p["score"] for p in exact}
        for p in approx:
            if p["id"] in by_id:
                assert p["score"] == pytest.approx(by_id[p["id"]], rel=1e-5)
    assert hits / (10 * len(queries)) >= 0.9
    flt = {"must": [{"key": "even", "match": {"value": True}}]}
    answer = api.result(
        "POST",
        "/collections/mv/points/query",
        {
            "query": queries[0].tolist(),
            "using": "colbert",
            "filter": flt,
            "limit": 10,
            "explain": True,
        },
    )
    assert answer["points"] and all(p["id"] % 2 == 0 for p in answer["points"])
    strategies = {plan["strategy"] for plan in answer["explain"] if plan["segment"] is not None}
    assert strategies <= {"graph", "post_filter"} and strategies
    dense = query(api, "mv", np.array([1.0, 3.0, 0.5, -1.0]), using="dense", limit=3)
    assert len(dense) == 3


def test_muvera_segments_survive_a_restart_without_rebuilding(tmp_path: Path) -> None:
    docs, queries = clustered_docs(900, 5, seed=3)
    with make_client(tmp_path) as client:
        api = Api(client)
        create_muvera(api, "mv", threshold=400, inner="flat", secondary="float16")
        upsert_named(api, "mv", docs)
        wait_green(api, "mv")
        before = [ids_of(query(api, "mv", q, using="colbert")) for q in queries]
        jobs = len(api.result("GET", "/collections/mv/jobs"))
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "mv")
        assert info["points_count"] == 900
        assert [ids_of(query(api, "mv", q, using="colbert")) for q in queries] == before
        assert len(api.result("GET", "/collections/mv/jobs")) == jobs
        # float16 storage re-ranks, but the vectors read back are the exact ones written
        point = api.result("GET", "/collections/mv/points/5")
        np.testing.assert_array_equal(np.array(point["vector"]["colbert"], np.float32), docs[5])


def test_points_of_a_multi_vector_collection_behave_like_dense_ones(api: Api) -> None:
    create(api, optimizers_config={"indexing_threshold": 50})
    docs = token_sets(120, seed=4)
    upsert(api, "mv", docs)
    wait_green(api, "mv")
    point = api.result("GET", "/collections/mv/points/7")
    stored = np.array(point["vector"])
    assert stored.shape == docs[7].shape
    np.testing.assert_allclose(
        stored, docs[7] / np.linalg.norm(docs[7], axis=1, keepdims=True), rtol=1e-6
    )
    scroll = api.result("POST", "/collections/mv/points/scroll", {"limit": 3, "with_vector": True})
    assert [p["id"] for p in scroll["points"]] == [0, 1, 2]
    assert len(scroll["points"][1]["vector"]) == len(docs[1])
    # overwrite a sealed point, delete another: the query sees the new state
    target = token_sets(1, seed=5)[0]
    api.result(
        "PUT",
        "/collections/mv/points?wait=true",
        {"points": [{"id": 3, "vector": target.tolist()}]},
    )
    api.result("POST", "/collections/mv/points/delete?wait=true", {"points": [4]})
    found = query(api, "mv", target, limit=120)
    assert found[0]["id"] == 3 and found[0]["score"] == pytest.approx(
        maxsim(target, target), rel=1e-5
    )
    assert 4 not in ids_of(found) and len(found) == 119
    # query by id uses the stored set and excludes the point itself
    by_id = api.result("POST", "/collections/mv/points/query", {"query": 3, "limit": 1})["points"]
    assert by_id[0]["id"] != 3
    count = api.result(
        "POST",
        "/collections/mv/points/count",
        {"filter": {"must": [{"key": "n", "range": {"lt": 10}}]}},
    )
    assert count["count"] == 8  # 4 deleted, 3 overwritten without a payload


def test_pooling_keeps_fewer_vectors_per_point(api: Api) -> None:
    create(api, multivector={"pool_factor": 2})
    docs = token_sets(3, seed=6, low=9, high=10)
    upsert(api, "mv", docs)
    stored = api.result("GET", "/collections/mv/points/0")["vector"]
    assert len(stored) == 5  # ceil(9 / 2)
    assert api.result("GET", "/collections/mv")["config"]["multivector"]["pool_factor"] == 2
    api.result("PATCH", "/collections/mv", {"multivector": {"max_tokens_per_doc": 2}})
    upsert(api, "mv", docs[:1])
    assert len(api.result("GET", "/collections/mv/points/0")["vector"]) == 2


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ([], "non-empty list of vectors"),
        ([[1.0] * DIM] * 5, "more than the collection's limit of 4"),
        ([[1.0] * DIM, [1e39] * DIM], "NaN or infinity"),  # JSON has no NaN: overflow
        ([[1.0] * DIM, [1.0] * (DIM - 1)], "dim"),
        ([[1.0] * DIM, ["a"] * DIM], "valid number"),
    ],
)
def test_bad_multi_vectors_are_refused_and_change_nothing(
    api: Api, vector: Any, message: str
) -> None:
    create(api, multivector={"max_vectors_per_point": 4})
    good = {"id": 1, "vector": [[0.5] * DIM]}
    status, answer = api.put(
        "/collections/mv/points?wait=true", {"points": [good, {"id": 2, "vector": vector}]}
    )
    assert 400 <= status < 500, answer
    assert message in answer["status"]["error"]
    assert api.result("POST", "/collections/mv/points/count", {})["count"] == 0
    status, answer = api.post("/collections/mv/points/query", {"query": vector})
    assert 400 <= status < 500 and answer["status"]["error"], answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "vectors": {
                    "size": 4,
                    "distance": "Euclid",
                    "multivector_config": {"comparator": "max_sim"},
                }
            },
            "Euclid",
        ),
        (
            {
                "vectors": {
                    "size": 4,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "sum"},
                }
            },
            "max_sim",
        ),
        (
            {
                "vectors": {
                    "size": 4,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "max_sim"},
                },
                "index": {"type": "muvera", "secondary": "int8"},
            },
            "float16",
        ),
        (
            {
                "vectors": {
                    "size": 4,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "max_sim"},
                },
                "index": {"type": "muvera", "k_sim": 10, "repetitions": 64, "d_proj": 64},
            },
            "final_dim",
        ),
        (
            {
                "vectors": {
                    "size": 4,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "max_sim"},
                },
                "index": {"type": "muvera"},
                "quantization_config": {"scalar": {"type": "int8"}},
            },
            "Disabled",
        ),
    ],
)
def test_bad_multi_vector_configs_are_refused(api: Api, body: dict[str, Any], message: str) -> None:
    status, answer = api.put("/collections/bad", body)
    assert status == 400, answer
    assert message in answer["status"]["error"]
    assert api.get("/collections/bad/exists")[1]["result"]["exists"] is False


def test_a_dense_query_on_a_multi_vector_and_the_reverse_are_refused(api: Api) -> None:
    """A plain vector for a multi-vector is one row (as in Qdrant), so it must have the
    multi-vector's dimension; a multi-vector for a dense vector is refused."""
    create_muvera(api, "mv")
    status, answer = api.post(
        "/collections/mv/points/query", {"query": [1.0, 0, 0, 0], "using": "colbert"}
    )
    assert status == 400 and "expected dim" in answer["status"]["error"]
    status, answer = api.post(
        "/collections/mv/points/query", {"query": [[1.0, 0, 0, 0]], "using": "dense"}
    )
    assert status == 400 and "multi-vector" in answer["status"]["error"]
