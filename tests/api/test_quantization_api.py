"""quantization_config over HTTP: create, PATCH (background rebuild), query knobs, info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, upsert_vectors, wait_green
from tests.helpers.api import search_ids as ids
from tests.helpers.data import embeddings

CONFIGS: dict[str, dict[str, Any]] = {
    "hnsw_sq8": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}},
    "hnsw_pq": {"product": {"compression": "x16"}},
    "hnsw_binary": {"binary": {"always_ram": True}},
    "hnsw_rabitq": {"rabitq": {}},
}
DIM = 384
pytestmark = pytest.mark.slow  # 3,000 384-d points indexed per test


def create(api: Api, name: str, quantization: Any = None, distance: str = "Cosine") -> None:
    body: dict[str, Any] = {
        "vectors": {"size": DIM, "distance": distance},
        "optimizers_config": {"indexing_threshold": 1000},
    }
    if quantization is not None:
        body["quantization_config"] = quantization
    api.result("PUT", f"/collections/{name}", body)


def upsert(api: Api, name: str, vectors: np.ndarray) -> None:
    upsert_vectors(api, name, vectors, payload=lambda i: {"even": i % 2 == 0})


def segment_kinds(api: Api, name: str) -> set[str]:
    return {
        s["index"]
        for s in api.result("GET", f"/collections/{name}/segments")
        if s["kind"] == "sealed"
    }


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    return embeddings(3000), embeddings(30, seed=12)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_quantized_collection_searches_with_high_recall_and_honours_filters(
    tmp_path: Path, kind: str, vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    xb, xq = vectors
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "q", CONFIGS[kind])
        upsert(api, "q", xb)
        info = wait_green(api, "q")
        assert segment_kinds(api, "q") == {kind}
        own = kind == "hnsw_rabitq"  # Quiver's kind, beside Qdrant's (qdrant-client parses it)
        reported = info["config"]["quiver_quantization_config" if own else "quantization_config"]
        assert reported == CONFIGS[kind]
        memory = info["vectors_memory"][""]
        assert memory["points"] == 3000
        assert memory["bytes_per_vector"]["codes"] <= DIM * 4 / (4 if kind == "hnsw_sq8" else 8)
        # originals are read from the memory-mapped segment file, not held in RAM
        assert memory["bytes_per_vector"]["originals"] == 0
        assert memory["bytes_per_vector"]["originals_mapped"] == DIM * 4
        hits = total = 0
        even = {"must": [{"key": "even", "match": {"value": True}}]}
        for q in xq:
            exact = ids(api, "q", q, params={"exact": True})
            hits += len(set(exact) & set(ids(api, "q", q)))
            total += 10
            assert ids(api, "q", q, params={"quantization": {"ignore": True}}) == exact
            assert all(i % 2 == 0 for i in ids(api, "q", q, filter=even))
            rough = ids(api, "q", q, params={"quantization": {"rescore": False, "oversampling": 2}})
            assert len(rough) == 10
        assert hits / total >= 0.95


def test_patch_switches_quantization_on_and_off_in_the_background(
    api: Api, vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    xb, xq = vectors
    create(api, "p")
    upsert(api, "p", xb[:2000])
    wait_green(api, "p")
    assert segment_kinds(api, "p") == {"hnsw"}
    api.result("PATCH", "/collections/p", {"quantization_config": CONFIGS["hnsw_sq8"]})
    wait_green(api, "p")
    assert segment_kinds(api, "p") == {"hnsw_sq8"}
    jobs = api.result("GET", "/collections/p/jobs")
    assert any(j["kind"] == "rebuild" and j["state"] == "done" for j in jobs)
    assert len(ids(api, "p", xq[0])) == 10
    api.result("PATCH", "/collections/p", {"quantization_config": "Disabled"})
    info = wait_green(api, "p")
    assert info["config"]["quantization_config"] is None
    assert segment_kinds(api, "p") == {"hnsw"}


def test_quantized_segments_reload_after_restart_without_rebuild(
    tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    xb, xq = vectors
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "r", CONFIGS["hnsw_pq"])
        upsert(api, "r", xb[:2000])
        wait_green(api, "r")
        before = [ids(api, "r", q) for q in xq[:5]]
        jobs_before = len(api.result("GET", "/collections/r/jobs"))
    with make_client(tmp_path) as client:
        api = Api(client)
        wait_green(api, "r")
        assert segment_kinds(api, "r") == {"hnsw_pq"}
        assert [ids(api, "r", q) for q in xq[:5]] == before
        assert len(api.result("GET", "/collections/r/jobs")) == jobs_before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scalar": {"type": "int4"}}, "int8"),
        ({"product": {"compression": "x3"}}, "compression"),
        ({"scalar": {"type": "int8"}, "binary": {}}, "exactly one"),
        ({"turbo": {"bits": "bits3"}}, "unknown variant `bits3`"),
        ({"scalar": {"type": "int8", "quantile": 2}}, "quantile"),
        ({"scalar": {"type": "int8", "unknown": 1}}, "unknown field"),
        ({"binary": {"encoding": "two_bits"}}, "two_bits"),
        ({"rabitq": {"bits": 12}}, "bits"),
    ],
)
def test_bad_quantization_config_is_a_400_and_creates_nothing(
    api: Api, body: dict[str, Any], message: str
) -> None:
    status, answer = api.put(
        "/collections/bad",
        {"vectors": {"size": 4, "distance": "Cosine"}, "quantization_config": body},
    )
    assert status == 400, answer
    assert message in answer["status"]["error"]
    assert api.result("GET", "/collections/bad/exists") == {"exists": False}


def test_rabitq_refuses_dot_and_patch_refuses_bad_config(api: Api) -> None:
    status, answer = api.put(
        "/collections/dot",
        {"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": {"rabitq": {}}},
    )
    assert status == 400 and "Dot" in answer["status"]["error"]
    create(api, "ok")
    status, answer = api.call("PATCH", "/collections/ok", {"quantization_config": {"product": {}}})
    assert status == 400 and "compression" in answer["status"]["error"]
    info = api.result("GET", "/collections/ok")
    assert info["config"]["quantization_config"] is None


def test_bad_query_quantization_params_are_rejected(api: Api) -> None:
    create(api, "k", CONFIGS["hnsw_sq8"])
    status, answer = api.post(
        "/collections/k/points/query",
        {"query": [0.1] * DIM, "params": {"quantization": {"oversampling": 0.5}}},
    )
    assert status == 422, answer
