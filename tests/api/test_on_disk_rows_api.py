"""``on_disk: true`` beyond the HNSW graph: an exact (``flat`` / ``m: 0``) dense vector
keeps its rows, a multi-vector (exact MaxSim or MUVERA) its tokens, and a sparse vector
(``index.on_disk``) its rows and posting lists in the sealed segment's memory-mapped file
(``*_mapped`` in ``vectors_memory``), answering as the same data held in memory does,
across a restart; ``uint8`` multi-vectors take one byte a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green

DIM = 8
N = 200
RNG = np.random.default_rng(19)
ROWS = RNG.normal(size=(N, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(4, DIM)).astype(np.float32)
MULTI = {"multivector_config": {"comparator": "max_sim"}}


def integer_sets(seed: int, count: int) -> list[np.ndarray]:
    """Token sets of 1..4 integer tokens (exact as uint8 and as float32)."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, size=(int(rng.integers(1, 5)), DIM)).astype(np.float32)
        for _ in range(count)
    ]


SETS = integer_sets(20, N)
SET_QUERIES = integer_sets(21, 4)
TOKENS = sum(len(s) for s in SETS)


def create(
    api: Api, name: str, vectors: dict[str, Any], points: list[dict[str, Any]], **extra: Any
) -> None:
    body = {"vectors": vectors, "optimizers_config": {"indexing_threshold": 100}} | extra
    api.result("PUT", f"/collections/{name}", body)
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def dense_points() -> list[dict[str, Any]]:
    return [{"id": i, "vector": row.tolist()} for i, row in enumerate(ROWS)]


def multi_points() -> list[dict[str, Any]]:
    return [{"id": i, "vector": tokens.tolist()} for i, tokens in enumerate(SETS)]


def answers(api: Api, name: str, queries: list[Any]) -> list[list[tuple[int, float]]]:
    out = []
    for query in queries:
        body = {"query": query.tolist(), "limit": 10}
        found = api.result("POST", f"/collections/{name}/points/query", body)["points"]
        out.append([(p["id"], p["score"]) for p in found])
    return out


def memory(api: Api, name: str) -> dict[str, int]:
    info = wait_green(api, name)
    assert info["segments_count"] >= 2  # sealed and built, beside the appendable
    bytes_: dict[str, int] = info["vectors_memory"][""]["bytes"]
    return bytes_


@pytest.mark.parametrize(
    ("vector", "extra"),
    [({}, {"index": {"type": "flat"}}), ({"hnsw_config": {"m": 0}}, {})],
    ids=["flat-collection", "m0-vector"],
)
def test_on_disk_exact_rows_are_mapped_and_answer_as_in_memory(
    api: Api, vector: dict[str, Any], extra: dict[str, Any]
) -> None:
    params = {"size": DIM, "distance": "Euclid"} | vector
    create(api, "disk", params | {"on_disk": True}, dense_points(), **extra)
    create(api, "ram", params, dense_points(), **extra)
    disk, ram = memory(api, "disk"), memory(api, "ram")
    assert disk["vectors_mapped"] == N * DIM * 4 and disk["vectors"] == 0
    assert "vectors_mapped" not in ram and ram["vectors"] >= N * DIM * 4
    assert answers(api, "disk", list(QUERIES)) == answers(api, "ram", list(QUERIES))


@pytest.mark.parametrize(
    "extra",
    [{}, {"index": {"type": "muvera"}}, {"index": {"type": "flat"}}],
    ids=["maxsim", "muvera", "flat-collection"],
)
def test_on_disk_multi_vector_tokens_are_mapped(api: Api, extra: dict[str, Any]) -> None:
    params = {"size": DIM, "distance": "Dot"} | MULTI
    create(api, "disk", params | {"on_disk": True}, multi_points(), **extra)
    create(api, "ram", params, multi_points(), **extra)
    disk, ram = memory(api, "disk"), memory(api, "ram")
    assert disk["tokens_mapped"] == TOKENS * DIM * 4 and disk["tokens"] == 0
    assert ram["tokens"] == TOKENS * DIM * 4 and "tokens_mapped" not in ram
    assert answers(api, "disk", SET_QUERIES) == answers(api, "ram", SET_QUERIES)


@pytest.mark.parametrize("extra", [{}, {"index": {"type": "muvera"}}], ids=["maxsim", "muvera"])
def test_uint8_multi_vector_tokens_take_one_byte_and_score_as_float32(
    api: Api, extra: dict[str, Any]
) -> None:
    params = {"size": DIM, "distance": "Dot"} | MULTI
    create(api, "narrow", params | {"datatype": "uint8"}, multi_points(), **extra)
    create(api, "wide", params, multi_points(), **extra)
    assert memory(api, "narrow")["tokens"] == TOKENS * DIM
    assert memory(api, "wide")["tokens"] == TOKENS * DIM * 4
    assert answers(api, "narrow", SET_QUERIES) == answers(api, "wide", SET_QUERIES)


def test_mapped_rows_and_uint8_tokens_survive_a_restart(tmp_path: Path) -> None:
    vectors = {
        "dense": {"size": DIM, "distance": "Euclid", "on_disk": True, "hnsw_config": {"m": 0}},
        "multi": {"size": DIM, "distance": "Dot", "on_disk": True, "datatype": "uint8"} | MULTI,
    }
    points = [
        {"id": i, "vector": {"dense": row.tolist(), "multi": tokens.tolist()}}
        for i, (row, tokens) in enumerate(zip(ROWS, SETS, strict=True))
    ]

    def state(api: Api) -> tuple[dict[str, Any], list[Any]]:
        info = wait_green(api, "both")["vectors_memory"]
        found = []
        for name, query in (("dense", QUERIES[0]), ("multi", SET_QUERIES[0])):
            body = {"query": query.tolist(), "using": name, "limit": 10}
            hits = api.result("POST", "/collections/both/points/query", body)["points"]
            found.append([(p["id"], p["score"]) for p in hits])
        return {n: info[n]["bytes"] for n in vectors}, found

    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "both", vectors, points)
        before = state(api)
    with make_client(tmp_path) as client:
        after = state(Api(client))
    assert after == before
    memory_after = after[0]
    assert memory_after["dense"]["vectors_mapped"] == N * DIM * 4
    assert memory_after["multi"]["tokens_mapped"] == TOKENS * DIM  # uint8, mapped
    assert memory_after["multi"]["tokens"] == 0


def sparse_points(seed: int, count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    points = []
    for i in range(count):
        terms = sorted(rng.choice(300, size=int(rng.integers(1, 10)), replace=False).tolist())
        values = np.round(rng.random(len(terms)), 3).tolist()
        points.append({"id": i, "vector": {"words": {"indices": terms, "values": values}}})
    return points


def test_on_disk_sparse_rows_and_postings_are_mapped_across_a_restart(tmp_path: Path) -> None:
    points, queries = sparse_points(30, N), sparse_points(31, 4)

    def state(api: Api, name: str) -> tuple[dict[str, int], list[Any]]:
        memory = wait_green(api, name)["vectors_memory"]["words"]["bytes"]
        found = []
        for query in queries:
            body = {"query": query["vector"]["words"], "using": "words", "limit": 10}
            hits = api.result("POST", f"/collections/{name}/points/query", body)["points"]
            found.append([(p["id"], p["score"]) for p in hits])
        return memory, found

    with make_client(tmp_path) as client:
        api = Api(client)
        for name, on_disk in (("disk", True), ("ram", False)):
            sparse = {"words": {"modifier": "idf", "index": {"on_disk": on_disk}}}
            create(api, name, {}, points, sparse_vectors=sparse)
        (disk, before), (ram, expected) = state(api, "disk"), state(api, "ram")
        assert before == expected and all(before)
        assert disk["rows"] == 0 and disk["rows_mapped"] > 0 and disk["postings_mapped"] > 0
        assert ram["rows"] > 0 and "rows_mapped" not in ram
    with make_client(tmp_path) as client:
        api = Api(client)
        disk, after = state(api, "disk")
        assert after == before
        assert disk["rows"] == 0 and disk["rows_mapped"] > 0


def test_patching_on_disk_rebuilds_multi_and_sparse_vectors_mapped(api: Api) -> None:
    vectors = {"multi": {"size": DIM, "distance": "Dot"} | MULTI}
    sparse_points_ = sparse_points(32, N)
    points = [
        {"id": i, "vector": {"multi": tokens.tolist()} | sparse_points_[i]["vector"]}
        for i, tokens in enumerate(SETS)
    ]
    create(api, "moved", vectors, points, sparse_vectors={"words": {}})
    before = wait_green(api, "moved")["vectors_memory"]
    assert "tokens_mapped" not in before["multi"]["bytes"]
    assert "rows_mapped" not in before["words"]["bytes"]
    patch = {
        "vectors": {"multi": {"on_disk": True}},
        "sparse_vectors": {"words": {"index": {"on_disk": True}}},
    }
    api.result("PATCH", "/collections/moved", patch)
    after = wait_green(api, "moved")
    memory = after["vectors_memory"]
    assert memory["multi"]["bytes"]["tokens_mapped"] == TOKENS * DIM * 4
    assert memory["words"]["bytes"]["rows_mapped"] > 0 and memory["words"]["bytes"]["rows"] == 0
    assert after["config"]["params"]["sparse_vectors"]["words"]["index"]["on_disk"] is True


def test_uint8_tokens_of_the_appendable_tail_take_one_byte(api: Api) -> None:
    params = {"size": DIM, "distance": "Dot"} | MULTI
    for name, datatype in (("narrow", "uint8"), ("wide", "float32")):
        body = {"vectors": params | {"datatype": datatype}}  # default threshold: no build
        api.result("PUT", f"/collections/{name}", body)
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": multi_points()})
    narrow, wide = (api.result("GET", f"/collections/{n}")["memory"] for n in ("narrow", "wide"))
    assert narrow["bytes"]["appendable_vectors"] * 4 == wide["bytes"]["appendable_vectors"]
    assert answers(api, "narrow", SET_QUERIES) == answers(api, "wide", SET_QUERIES)
    got = api.result("POST", "/collections/narrow/points", {"ids": [3], "with_vector": True})
    assert got[0]["vector"] == SETS[3].tolist()


def test_on_disk_tail_rows_are_mapped_across_a_restart(tmp_path: Path) -> None:
    """Rows no index file holds yet (the appendable tail: indexing off here) live in a
    memory-mapped scratch file for an ``on_disk`` vector, not the heap, and answer as
    the same rows in memory do, before and after a restart (rebuilt from the log)."""
    params = {"size": DIM, "distance": "Euclid"}
    off = {"optimizers_config": {"indexing_threshold": 0}}

    def tail(api: Api, name: str) -> dict[str, int]:
        memory: dict[str, int] = wait_green(api, name)["memory"]["bytes"]
        return memory

    with make_client(tmp_path) as client:
        api = Api(client)
        for name, disk in (("disk", True), ("ram", False)):
            vectors = params | {"on_disk": disk}
            api.result("PUT", f"/collections/{name}", {"vectors": vectors} | off)
            api.result("PUT", f"/collections/{name}/points?wait=true", {"points": dense_points()})
        before = answers(api, "disk", list(QUERIES))
        assert before == answers(api, "ram", list(QUERIES))
        disk, ram = tail(api, "disk"), tail(api, "ram")
        assert disk["appendable_vectors_mapped"] >= N * DIM * 4 and disk["appendable_vectors"] == 0
        assert "appendable_vectors_mapped" not in ram and ram["appendable_vectors"] >= N * DIM * 4
        total = wait_green(api, "disk")["memory"]["total_bytes"]
        assert total == sum(v for k, v in disk.items() if not k.endswith("_mapped"))
    with make_client(tmp_path) as client:
        api = Api(client)
        assert answers(api, "disk", list(QUERIES)) == before
        assert tail(api, "disk")["appendable_vectors_mapped"] >= N * DIM * 4


SCALAR = {"scalar": {"type": "int8"}}


@pytest.mark.parametrize(
    ("vector", "collection", "mapped", "heap"),
    [
        ({"on_disk": True}, {}, {"codes_mapped", "originals_mapped"}, {"graph"}),
        ({"on_disk": True, "quantization_config": {"scalar": {"type": "int8", "always_ram": True}}},
         {}, {"originals_mapped"}, {"codes", "graph"}),
        ({}, {"hnsw_config": {"on_disk": True}}, {"graph_mapped", "originals_mapped"}, {"codes"}),
        ({"on_disk": True, "hnsw_config": {"on_disk": True}}, {},
         {"graph_mapped", "codes_mapped", "originals_mapped"}, set()),
    ],
    ids=["on_disk", "always_ram", "hnsw_on_disk", "both"],
)  # fmt: skip
def test_quantized_codes_and_graph_follow_on_disk_and_always_ram(
    api: Api, vector: dict[str, Any], collection: dict[str, Any], mapped: set[str], heap: set[str]
) -> None:
    """Qdrant's rule: originals mapped (always, here), codes with the vector's
    ``on_disk`` unless ``always_ram``, the graph's links with ``hnsw_config.on_disk``."""
    params = {"size": DIM, "distance": "Euclid"}
    quantized = {"quantization_config": SCALAR}
    create(api, "disk", params | vector, dense_points(), **quantized, **collection)
    create(api, "ram", params, dense_points(), **quantized)
    disk = memory(api, "disk")
    assert {k for k, v in disk.items() if k.endswith("_mapped") and v > 0} == mapped
    for part in heap:
        assert disk[part] > 0
    assert disk.get("codes", 0) == 0 or "codes_mapped" not in mapped
    assert answers(api, "disk", list(QUERIES)) == answers(api, "ram", list(QUERIES))


@pytest.mark.parametrize(
    ("vector", "extra", "points", "queries", "mapped"),
    [
        ({"size": DIM, "distance": "Dot"} | MULTI, {"index": {"type": "muvera"}}, multi_points,
         SET_QUERIES, {"fde_graph_mapped", "fde_codes_mapped"}),
        ({"size": DIM, "distance": "Cosine", "on_disk": True}, {"index": {"type": "leanvec"}},
         dense_points, list(QUERIES), {"codes_mapped", "graph_mapped", "originals_mapped"}),
        ({"size": DIM, "distance": "Cosine", "on_disk": True}, {"index": {"type": "muvera"}},
         dense_points, list(QUERIES), {"codes_mapped", "graph_mapped", "originals_mapped"}),
    ],
    ids=["muvera", "leanvec", "muvera-dense"],
)  # fmt: skip
def test_hnsw_on_disk_maps_muvera_and_leanvec_graphs(
    api: Api, vector: dict[str, Any], extra: dict[str, Any], points: Any, queries: Any,
    mapped: set[str],
) -> None:  # fmt: skip
    """The collection's ``hnsw_config.on_disk`` reaches MUVERA's encodings graph and
    LeanVec's graph (its codes too, with the vector's ``on_disk``), and a ``muvera``
    collection's dense vectors (its inner 8-bit code graph)."""
    create(api, "disk", vector, points(), hnsw_config={"on_disk": True}, **extra)
    create(api, "ram", vector | {"on_disk": False}, points(), **extra)
    disk = memory(api, "disk")
    assert {k for k, v in disk.items() if k.endswith("_mapped") and v > 0} == mapped
    assert answers(api, "disk", queries) == answers(api, "ram", queries)
