"""``quantization_config.turbo`` (TurboQuant) over HTTP: Qdrant's shape and validations,
recall after re-ranking, the query knobs, and segments that reload after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import models

from index.flat import exact_search
from index.metrics import Distance
from tests.helpers.api import Api, make_client, upsert_vectors, wait_green
from tests.helpers.api import search_ids as ids
from tests.helpers.data import recall

DIM, N = 32, 600


def rows(n: int = N, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def create(api: Api, name: str, turbo: dict[str, Any], distance: str = "Cosine") -> None:
    body = {
        "vectors": {"size": DIM, "distance": distance},
        "optimizers_config": {"indexing_threshold": 100},
        "hnsw_config": {"full_scan_threshold": 10},  # KB: the codes answer, not a scan
        "quantization_config": {"turbo": turbo},
    }
    api.result("PUT", f"/collections/{name}", body)


def sealed_kinds(api: Api, name: str) -> set[str]:
    segments = api.result("GET", f"/collections/{name}/segments")
    return {s["index"] for s in segments if s["kind"] == "sealed"}


def turbo_recall(
    api: Api, name: str, queries: np.ndarray, truth: np.ndarray, **extra: Any
) -> float:
    found = np.array([ids(api, name, q, **extra) for q in queries])
    return recall(found, truth)


@pytest.mark.parametrize(
    ("bits", "distance"),
    [
        ("bits1", "Cosine"),
        ("bits1_5", "Dot"),
        ("bits2", "Euclid"),
        ("bits4", "Cosine"),
        ("bits8", "Dot"),
    ],
)
def test_turbo_collection_reaches_high_recall_after_rescoring(
    api: Api, bits: str, distance: str
) -> None:
    xb, xq = rows(), rows(20, seed=9)
    create(api, "t", {"bits": bits, "always_ram": True}, distance)
    upsert_vectors(api, "t", xb)
    info = wait_green(api, "t")
    assert sealed_kinds(api, "t") == {"hnsw_turbo"}
    assert info["config"]["quantization_config"] == {"turbo": {"bits": bits, "always_ram": True}}
    metric = Distance(distance)
    base = xb / np.linalg.norm(xb, axis=1, keepdims=True) if metric is Distance.COSINE else xb
    truth, _ = exact_search(base, xq, 10, metric)
    assert turbo_recall(api, "t", xq, truth) >= 0.9
    rough = turbo_recall(api, "t", xq, truth, params={"quantization": {"rescore": False}})
    assert rough < 1.0  # the codes' own ranking: an estimate, not the exact one
    exact = ids(api, "t", xq[0], params={"exact": True})
    assert ids(api, "t", xq[0], params={"quantization": {"ignore": True}}) == exact


def test_more_oversampling_finds_more_of_the_true_neighbours(api: Api) -> None:
    xb, xq = rows(), rows(20, seed=9)
    create(api, "o", {"bits": "bits1"})
    upsert_vectors(api, "o", xb)
    wait_green(api, "o")
    truth, _ = exact_search(xb / np.linalg.norm(xb, axis=1, keepdims=True), xq, 10, Distance.COSINE)
    knobs = [{"hnsw_ef": 16, "quantization": {"oversampling": o}} for o in (1.0, 8.0)]
    low, high = (turbo_recall(api, "o", xq, truth, params=p) for p in knobs)
    assert low < high, (low, high)


def test_qdrant_client_models_create_a_turbo_collection(api: Api) -> None:
    body = models.CreateCollection(
        vectors=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        quantization_config=models.TurboQuantization(
            turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS2)
        ),
    ).model_dump(mode="json", exclude_none=True)
    api.result("PUT", "/collections/client", body)
    info = models.CollectionInfo.model_validate(api.result("GET", "/collections/client"))
    assert info.config.quantization_config == models.TurboQuantization(
        turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS2)
    )


@pytest.mark.parametrize(
    ("turbo", "distance", "message"),
    [
        (
            {"bits": "bits3"},
            "Cosine",
            "Format error in JSON body: quantization_config.turbo.bits: unknown variant "
            "`bits3`, expected one of `bits1`, `bits1_5`, `bits2`, `bits4`, `bits8`",
        ),
        (
            {"bits": "bits4", "levels": 3},
            "Cosine",
            "unknown field(s) in `quantization_config.turbo`",
        ),
        ({"memory": "warm"}, "Cosine", "quantization_config.turbo.memory"),
        ({}, "Manhattan", "not Manhattan"),
    ],
)
def test_invalid_turbo_config_is_a_400_that_creates_nothing(
    api: Api, turbo: dict[str, Any], distance: str, message: str
) -> None:
    body = {"vectors": {"size": 4, "distance": distance}, "quantization_config": {"turbo": turbo}}
    status, answer = api.put("/collections/bad", body)
    assert status == 400, answer
    assert message in answer["status"]["error"]
    assert api.result("GET", "/collections/bad/exists") == {"exists": False}


def test_turbo_segments_reload_after_restart_without_rebuild(tmp_path: Path) -> None:
    xb, xq = rows(), rows(5, seed=9)
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "r", {"bits": "bits1_5"}, "Euclid")
        upsert_vectors(api, "r", xb)
        wait_green(api, "r")
        knobs = {"quantization": {"rescore": False}}
        before = [ids(api, "r", q, params=knobs) for q in xq]
        jobs_before = len(api.result("GET", "/collections/r/jobs"))
    with make_client(tmp_path) as client:
        api = Api(client)
        wait_green(api, "r")
        assert sealed_kinds(api, "r") == {"hnsw_turbo"}
        assert [ids(api, "r", q, params=knobs) for q in xq] == before
        assert len(api.result("GET", "/collections/r/jobs")) == jobs_before


def test_a_sparse_vector_with_a_turbo_datatype_is_qdrants_422(api: Api) -> None:
    body = {"sparse_vectors": {"text": {"index": {"datatype": "turbo4"}}}}
    status, answer = api.put("/collections/sparse", body)
    assert status == 422, answer
    assert answer["status"]["error"] == (
        "Validation error in JSON body: [sparse_vectors.text.index.datatype: "
        "sparse vectors do not support the `turbo4` datatype]"
    )
    assert api.result("GET", "/collections/sparse/exists") == {"exists": False}


def test_patch_turns_turbo_on_and_changes_its_bits_in_the_background(api: Api) -> None:
    api.result(
        "PUT",
        "/collections/p",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"indexing_threshold": 100},
        },
    )
    upsert_vectors(api, "p", rows())
    wait_green(api, "p")
    assert sealed_kinds(api, "p") == {"hnsw"}
    for bits in ("bits4", "bits2"):
        api.result("PATCH", "/collections/p", {"quantization_config": {"turbo": {"bits": bits}}})
        info = wait_green(api, "p")
        assert info["config"]["quantization_config"] == {"turbo": {"bits": bits}}
        assert sealed_kinds(api, "p") == {"hnsw_turbo"}
        codes = info["vectors_memory"][""]["bytes_per_vector"]["codes"]
        assert codes == -(-(DIM + 1) * int(bits[4:]) // 8)  # Dot: + the norm's coordinate


def test_qdrant_client_models_create_a_turbo4_datatype_collection(api: Api) -> None:
    body = models.CreateCollection(
        vectors=models.VectorParams(
            size=DIM, distance=models.Distance.COSINE, datatype=models.Datatype.TURBO4
        ),
    ).model_dump(mode="json", exclude_none=True)
    api.result("PUT", "/collections/client", body)
    info = models.CollectionInfo.model_validate(api.result("GET", "/collections/client"))
    vectors = info.config.params.vectors
    assert isinstance(vectors, models.VectorParams)
    assert vectors.datatype == models.Datatype.TURBO4
