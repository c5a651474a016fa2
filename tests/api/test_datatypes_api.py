"""Vector ``datatype`` over HTTP: float16 / uint8 values stored and searched as typed
(answers equal qdrant-client's local mode over the typed values, which local mode does
not apply itself), compact sealed graphs, turbo4 vectors held as their codes, a
restart, and Qdrant's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from index.datatypes import to_datatype, to_turbo
from index.flat import exact_search
from index.metrics import Distance
from tests.helpers.api import Api, make_client, upsert_vectors, wait_green
from tests.helpers.data import recall, wire_float32

DIM = 16
N = 300


def rows_for(datatype: str, n: int = N, seed: int = 3) -> np.ndarray:
    """Seeded rows as a client would send them (uint8: integers, some out of range)."""
    rng = np.random.default_rng(seed)
    if datatype == "uint8":
        return rng.integers(-5, 270, size=(n, DIM)).astype(np.float32)
    return rng.normal(size=(n, DIM)).astype(np.float32)


def create(api: Api, name: str, datatype: str, distance: str, **extra: Any) -> None:
    body = {
        "vectors": {"size": DIM, "distance": distance, "datatype": datatype} | extra,
        "optimizers_config": {"indexing_threshold": 100},
    }
    api.result("PUT", f"/collections/{name}", body)


def local_twin(name: str, distance: str, rows: np.ndarray) -> QdrantClient:
    """Local mode holding the typed rows (it ignores ``datatype``)."""
    client = QdrantClient(":memory:")
    client.create_collection(name, models.VectorParams(size=DIM, distance=distance))
    points = [models.PointStruct(id=i, vector=row.tolist()) for i, row in enumerate(rows)]
    client.upsert(name, points)
    return client


def answers(api: Api, name: str, query: np.ndarray) -> list[int]:
    body = {"query": query.tolist(), "limit": 10, "params": {"hnsw_ef": 300}}
    return [
        p["id"] for p in api.result("POST", f"/collections/{name}/points/query", body)["points"]
    ]


def stored(api: Api, name: str, ids: list[int]) -> list[tuple[float, ...]]:
    body = {"ids": ids, "with_vector": True}
    records = api.result("POST", f"/collections/{name}/points", body)
    return [wire_float32(r["vector"]) for r in sorted(records, key=lambda r: r["id"])]


@pytest.mark.parametrize(
    ("datatype", "distance", "width"),
    [("float16", "Dot", 2), ("float16", "Cosine", 2), ("uint8", "Euclid", 1)],
)
def test_typed_vectors_answer_as_local_mode_over_typed_values_from_a_compact_graph(
    api: Api, datatype: str, distance: str, width: int
) -> None:
    given = rows_for(datatype)
    create(api, "typed", datatype, distance)
    upsert_vectors(api, "typed", given, batch=N)
    info = wait_green(api, "typed")
    assert info["config"]["params"]["vectors"]["datatype"] == datatype
    memory = info["vectors_memory"][""]
    assert memory["points"] == N
    assert memory["bytes_per_vector"]["vectors"] == DIM * width
    prepared = (
        given / np.linalg.norm(given, axis=1, keepdims=True) if distance == "Cosine" else given
    )
    typed = to_datatype(prepared.astype(np.float32), datatype)  # type: ignore[arg-type]
    assert stored(api, "typed", [0, 1]) == [tuple(typed[0].tolist()), tuple(typed[1].tolist())]
    local = local_twin("typed", distance, typed)
    queries = to_datatype(rows_for(datatype, n=5, seed=9), datatype)  # type: ignore[arg-type]
    for query in queries:
        expected = [p.id for p in local.query_points("typed", query.tolist(), limit=10).points]
        assert answers(api, "typed", query) == expected


def test_multivector_values_are_stored_held_and_scored_as_float16(api: Api) -> None:
    config = {"comparator": "max_sim"}
    create(api, "multi", "float16", "Dot", multivector_config=config)
    rng = np.random.default_rng(4)
    sets = [rng.normal(size=(3, DIM)).astype(np.float32) for _ in range(120)]
    points = [{"id": i, "vector": s.tolist()} for i, s in enumerate(sets)]
    api.result("PUT", "/collections/multi/points?wait=true", {"points": points})
    memory = wait_green(api, "multi")["vectors_memory"][""]
    assert memory["points"] == 120
    assert memory["bytes_per_vector"]["tokens"] == 3 * DIM * 2  # float16 tokens, built
    record = api.result("POST", "/collections/multi/points", {"ids": [7], "with_vector": True})[0]
    typed = to_datatype(sets[7], "float16")
    assert [wire_float32(v) for v in record["vector"]] == [tuple(r) for r in typed.tolist()]
    local = QdrantClient(":memory:")
    params = models.VectorParams(
        size=DIM, distance="Dot", multivector_config=models.MultiVectorConfig(comparator="max_sim")
    )
    local.create_collection("multi", params)
    local.upsert(
        "multi",
        [
            models.PointStruct(id=i, vector=to_datatype(s, "float16").tolist())
            for i, s in enumerate(sets)
        ],
    )
    query = to_datatype(rng.normal(size=(2, DIM)).astype(np.float32), "float16")
    expected = [p.id for p in local.query_points("multi", query.tolist(), limit=10).points]
    body = {"query": query.tolist(), "limit": 10}
    found = api.result("POST", "/collections/multi/points/query", body)["points"]
    assert [p["id"] for p in found] == expected


def test_float16_segments_and_values_survive_a_restart(tmp_path: Path) -> None:
    given = rows_for("float16")
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "typed", "float16", "Euclid")
        upsert_vectors(api, "typed", given, batch=N)
        wait_green(api, "typed")
        before = answers(api, "typed", given[0])
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "typed")
        assert info["config"]["params"]["vectors"]["datatype"] == "float16"
        assert info["vectors_memory"][""]["bytes_per_vector"]["vectors"] == DIM * 2
        assert stored(api, "typed", [5]) == [tuple(to_datatype(given[5:6], "float16")[0].tolist())]
        assert answers(api, "typed", given[0]) == before


def test_float16_value_past_its_range_is_refused_and_nothing_written(api: Api) -> None:
    create(api, "typed", "float16", "Dot")
    vector = [1.0] * (DIM - 1) + [70000.0]
    status, body = api.put(
        "/collections/typed/points?wait=true", {"points": [{"id": 1, "vector": vector}]}
    )
    assert status == 400
    assert "too large for the vector's float16 datatype" in body["status"]["error"]
    assert api.result("POST", "/collections/typed/points/count", {})["count"] == 0


@pytest.mark.parametrize(
    ("vectors", "quantization", "status", "error"),
    [
        (
            {"datatype": "turbo16"},
            None,
            400,
            "Not supported by Quiver yet: vector: datatype 'turbo16'",
        ),
        (
            {"datatype": "turbo4", "distance": "Manhattan"},
            None,
            400,
            "datatype 'turbo4' with Manhattan distance",
        ),
        ({"datatype": "uint8", "distance": "Cosine"}, None, 400, "datatype 'uint8' with Cosine"),
        ({"datatype": "int4"}, None, 400, "vectors.VectorParamsIn.datatype"),
    ],
)
def test_datatypes_quiver_does_not_store_are_refused_by_name(
    api: Api, vectors: dict[str, Any], quantization: Any, status: int, error: str
) -> None:
    body: dict[str, Any] = {"vectors": {"size": DIM, "distance": "Dot"} | vectors}
    if quantization is not None:
        body["quantization_config"] = quantization
    answered, answer = api.put("/collections/refused", body)
    assert answered == status
    assert error in answer["status"]["error"], answer
    assert api.get("/collections/refused")[0] == 404


def test_named_dense_vector_added_with_a_turbo_datatype_is_refused(api: Api) -> None:
    api.result("PUT", "/collections/named", {"vectors": {"a": {"size": DIM, "distance": "Dot"}}})
    body = {"dense": {"size": DIM, "distance": "Dot", "datatype": "turbo8"}}
    status, answer = api.put("/collections/named/vectors/b", body)
    assert status == 400
    assert "datatype 'turbo8'" in answer["status"]["error"]
    body = {"dense": {"size": DIM, "distance": "Dot", "datatype": "int4"}}
    status, answer = api.put("/collections/named/vectors/b", body)
    assert status == 400
    assert "unknown variant `int4`" in answer["status"]["error"]


def turbo4_stored(rows: np.ndarray, distance: str) -> np.ndarray:
    """What a turbo4 vector holds for ``rows``: the decoded TurboQuant code of the
    prepared (Cosine: normalised) row."""
    prepared = rows / np.linalg.norm(rows, axis=1, keepdims=True) if distance == "Cosine" else rows
    return to_turbo(prepared.astype(np.float32), "turbo4")


def turbo4_recall(api: Api, name: str, stored_rows: np.ndarray, distance: str) -> float:
    """recall@10 of the server's answers against exact search over the stored values."""
    queries = rows_for("float32", n=20, seed=9)
    truth, _ = exact_search(stored_rows, queries, 10, Distance(distance))
    found = np.array([answers(api, name, query) for query in queries])
    return recall(found, truth)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_turbo4_vectors_are_their_codes_read_back_and_searched(api: Api, distance: str) -> None:
    given = rows_for("float32")
    create(api, "turbo", "turbo4", distance)
    upsert_vectors(api, "turbo", given, batch=N)
    expected = turbo4_stored(given, distance)
    assert stored(api, "turbo", [3]) == [wire_float32(expected[3].tolist())]  # appendable tail
    info = wait_green(api, "turbo")
    assert info["config"]["params"]["vectors"]["datatype"] == "turbo4"
    per_vector = info["vectors_memory"][""]["bytes_per_vector"]
    assert per_vector["originals"] == per_vector["originals_mapped"] == 0
    assert per_vector.get("stored_codes", 0) + per_vector.get("stored_codes_mapped", 0) == (
        DIM // 2 + 4  # 4-bit codes and a float32 norm, not DIM * 4 float32 bytes
    )
    assert stored(api, "turbo", [3, 4]) == [wire_float32(row.tolist()) for row in expected[3:5]]
    assert turbo4_recall(api, "turbo", expected, distance) >= 0.9


def test_turbo4_values_and_answers_survive_a_restart(tmp_path: Path) -> None:
    given, sets = rows_for("float32"), token_sets()
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "turbo", "turbo4", "Dot")
        upsert_vectors(api, "turbo", given, batch=N)
        wait_green(api, "turbo")
        before, values = answers(api, "turbo", given[0]), stored(api, "turbo", [0, 7])
        create_turbo4_multi(api, sets)
        multi_before = stored_tokens(api, 7)
    with make_client(tmp_path) as client:
        api = Api(client)
        wait_green(api, "turbo")
        assert stored(api, "turbo", [0, 7]) == values
        assert values == [wire_float32(turbo4_stored(given, "Dot")[i].tolist()) for i in (0, 7)]
        assert answers(api, "turbo", given[0]) == before
        wait_green(api, "multi")
        assert stored_tokens(api, 7) == multi_before
        assert_coded_as(multi_before, tokens_as_turbo4(sets[7]), sets[7])


def token_sets(n: int = 120, tokens: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [rng.normal(size=(tokens, DIM)).astype(np.float32) for _ in range(n)]


def create_turbo4_multi(api: Api, sets: list[np.ndarray], **extra: Any) -> None:
    """A turbo4 multi-vector collection ``multi`` holding ``sets`` (ids = positions)."""
    config = {"comparator": "max_sim"}
    body = {
        "vectors": {"size": DIM, "distance": "Dot", "datatype": "turbo4"}
        | {"multivector_config": config}
        | extra.pop("vectors", {}),
        "optimizers_config": {"indexing_threshold": 100},
    }
    api.result("PUT", "/collections/multi", body | extra)
    points = [{"id": i, "vector": s.tolist()} for i, s in enumerate(sets)]
    api.result("PUT", "/collections/multi/points?wait=true", {"points": points})


def stored_tokens(api: Api, point: int) -> list[tuple[float, ...]]:
    body = {"ids": [point], "with_vector": True}
    record = api.result("POST", "/collections/multi/points", body)[0]
    return [wire_float32(token) for token in record["vector"]]


def tokens_as_turbo4(tokens: np.ndarray) -> list[tuple[float, ...]]:
    """Each token coded alone with the dense turbo4 cast, as the wire renders it."""
    return [wire_float32(to_turbo(token[None, :], "turbo4")[0].tolist()) for token in tokens]


CODED_ATOL = 1e-6
"""How far a value the server coded in a batch may be from the same row coded alone: BLAS
may add a row's products in another order in a batch (AVX-512 kernels do), which moves
a float32 by an ulp or two. A value stored uncoded is off by the code's error instead,
~1e-2 here, which :func:`assert_coded_as` checks the data shows."""


def assert_coded_as(
    found: list[tuple[float, ...]], coded: list[tuple[float, ...]], raw: np.ndarray
) -> None:
    """``found`` holds ``coded`` (the rows ``raw`` coded alone), to a few ulps."""
    found_rows, coded_rows = np.asarray(found), np.asarray(coded)
    assert found_rows.shape == coded_rows.shape
    assert np.abs(coded_rows - raw).max() > 100 * CODED_ATOL  # the tolerance tells them apart
    np.testing.assert_allclose(found_rows, coded_rows, rtol=0, atol=CODED_ATOL)


@pytest.mark.parametrize(
    "extra",
    [{}, {"vectors": {"on_disk": True}}, {"index": {"type": "muvera"}}, {"shard_number": 2}],
    ids=["maxsim", "on_disk", "muvera", "sharded"],
)
def test_turbo4_multivector_tokens_are_their_codes_and_maxsim_ranks_them(
    api: Api, extra: dict[str, Any]
) -> None:
    """Each token of a turbo4 multi-vector is cast as a dense turbo4 row is and held
    as its code and norm; MaxSim scores the uncoded query against the decoded tokens
    in float32."""
    sets = token_sets()
    create_turbo4_multi(api, sets, **extra)
    assert_coded_as(stored_tokens(api, 7), tokens_as_turbo4(sets[7]), sets[7])  # appendable tail
    info = wait_green(api, "multi")
    assert info["config"]["params"]["vectors"]["datatype"] == "turbo4"
    per_vector = info["vectors_memory"][""]["bytes_per_vector"]
    held = per_vector.get("tokens", 0) + per_vector.get("tokens_mapped", 0)
    if "shard_number" not in extra:  # a sharded collection's info has no vectors_memory
        assert held == 3 * (DIM // 2 + 4)  # codes and norms in the built segment, not floats
    assert_coded_as(stored_tokens(api, 7), tokens_as_turbo4(sets[7]), sets[7])  # built segment
    query = np.random.default_rng(5).normal(size=(2, DIM)).astype(np.float32)
    decoded = [to_turbo(s, "turbo4") for s in sets]
    maxsim = np.array([(query @ tokens.T).max(axis=1).sum() for tokens in decoded])
    expected = np.argsort(-maxsim, kind="stable")[:10]
    body = {"query": query.tolist(), "limit": 10}
    found = api.result("POST", "/collections/multi/points/query", body)["points"]
    assert [p["id"] for p in found] == expected.tolist()
    scores = np.array([p["score"] for p in found])
    np.testing.assert_allclose(scores, maxsim[expected], rtol=1e-5)


def test_turbo4_vector_ignores_a_quantization_config_as_qdrant_does(api: Api) -> None:
    """Qdrant never builds a quantized overlay for a turbo4 vector: its codes are the
    storage already. Quiver accepts the config and builds the same codes-only index."""
    create(api, "turbo", "turbo4", "Euclid", quantization_config={"scalar": {"type": "int8"}})
    upsert_vectors(api, "turbo", rows_for("float32"), batch=N)
    per_vector = wait_green(api, "turbo")["vectors_memory"][""]["bytes_per_vector"]
    assert per_vector["originals"] == per_vector["originals_mapped"] == 0
    assert per_vector.get("stored_codes", 0) + per_vector.get("stored_codes_mapped", 0) > 0


def test_named_dense_vector_added_as_turbo4_holds_its_codes(api: Api) -> None:
    api.result("PUT", "/collections/named", {"vectors": {"a": {"size": DIM, "distance": "Dot"}}})
    body = {"dense": {"size": DIM, "distance": "Euclid", "datatype": "turbo4"}}
    api.result("PUT", "/collections/named/vectors/b", body)
    given = rows_for("float32", n=5)
    points = [{"id": i, "vector": {"a": r.tolist(), "b": r.tolist()}} for i, r in enumerate(given)]
    api.result("PUT", "/collections/named/points?wait=true", {"points": points})
    record = api.result("POST", "/collections/named/points", {"ids": [2], "with_vector": True})[0]
    assert wire_float32(record["vector"]["a"]) == wire_float32(given[2].tolist())
    coded = [wire_float32(to_turbo(given[2:3], "turbo4")[0].tolist())]
    assert_coded_as([wire_float32(record["vector"]["b"])], coded, given[2:3])
