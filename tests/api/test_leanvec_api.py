"""LeanVec over HTTP: index config, training queries, background retrain, query knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import Api, make_client, wait_green
from tests.helpers.api import sealed_segments as sealed
from tests.helpers.api import search_ids as ids
from tests.helpers.api import upsert_vectors as upsert
from tests.helpers.data import embeddings, out_of_distribution


def create(
    api: Api, name: str, index: dict[str, Any], size: int = 384, distance: str = "Cosine"
) -> None:
    api.result(
        "PUT",
        f"/collections/{name}",
        {
            "vectors": {"size": size, "distance": distance},
            "optimizers_config": {"indexing_threshold": 1000},
            "index": index,
        },
    )


@pytest.mark.slow
def test_leanvec_collection_reaches_high_recall_and_reports_its_storage(api: Api) -> None:
    xb, xq = embeddings(3000), embeddings(20, seed=12)
    create(api, "lv", {"type": "leanvec", "dims": 96, "secondary": "float16", "rerank_factor": 4})
    upsert(api, "lv", xb)
    info = wait_green(api, "lv")
    assert {s["index"] for s in sealed(api, "lv")} == {"leanvec"}
    per_vector = info["vectors_memory"][""]["bytes_per_vector"]
    assert per_vector["codes"] == 96  # 8-bit primary: 1/16 of float32's 1,536 bytes
    assert per_vector["originals_mapped"] == 384 * 2 and per_vector["originals"] == 0
    hits = 0
    for q in xq:
        exact = ids(api, "lv", q, params={"exact": True})
        hits += len(set(exact) & set(ids(api, "lv", q)))
        assert len(ids(api, "lv", q, params={"rerank_factor": 1, "hnsw_ef": 32})) == 10
    assert hits / (10 * len(xq)) >= 0.9


def test_compressed_secondaries_survive_a_restart_without_rebuild(tmp_path: Path) -> None:
    xb, xq = embeddings(2000), embeddings(5, seed=12)
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "int8", {"type": "leanvec", "secondary": "int8"})
        upsert(api, "int8", xb)
        wait_green(api, "int8")
        before = [ids(api, "int8", q) for q in xq]
        jobs = len(api.result("GET", "/collections/int8/jobs"))
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "int8")
        assert info["indexed_vectors_count"] == 2000  # no point fell back to the exact tail
        assert len(api.result("GET", "/collections/int8/jobs")) == jobs
        assert [ids(api, "int8", q) for q in xq] == before


@pytest.mark.parametrize("solver", ["closed_form", "frank_wolfe"])
def test_training_queries_retrain_an_ood_collection_in_the_background(
    api: Api, solver: str
) -> None:
    data, train, held_out = out_of_distribution()
    index = {"type": "leanvec", "dims": 16, "variant": "ood", "ood_solver": solver}
    create(api, "ood", index, size=64, distance="Dot")
    assert api.result("GET", "/collections/ood")["config"]["index"]["ood_solver"] == solver
    upsert(api, "ood", data)
    wait_green(api, "ood")
    before = api.result("GET", "/collections/ood/jobs")
    answer = api.result(
        "POST", "/collections/ood/leanvec/training-queries", {"vectors": train.tolist()}
    )
    assert answer == {"vector": "", "training_queries": 1000, "retraining": True}
    wait_green(api, "ood")
    after = api.result("GET", "/collections/ood/jobs")
    rebuilt = [j for j in after if j not in before and j["kind"] == "rebuild"]
    assert rebuilt and all(j["state"] == "done" for j in rebuilt)
    counts = api.result("GET", "/collections/ood/leanvec/training-queries")
    assert counts[""]["given"] == 1000
    for q in held_out[:5]:
        assert len(ids(api, "ood", q)) == 10
    assert api.result("GET", "/collections/ood/leanvec/training-queries")[""]["seen"] >= 5


def test_served_queries_are_sampled_and_survive_a_restart(tmp_path: Path) -> None:
    data, _, held_out = out_of_distribution()
    with make_client(tmp_path) as client:
        api = Api(client)
        create(
            api, "seen", {"type": "leanvec", "dims": 16, "variant": "ood"}, size=64, distance="Dot"
        )
        upsert(api, "seen", data[:500])
        body = {"searches": [{"query": q.tolist(), "limit": 3} for q in held_out[:70]]}
        api.result("POST", "/collections/seen/points/query/batch", body)
    with make_client(tmp_path) as client:
        counts = Api(client).result("GET", "/collections/seen/leanvec/training-queries")
        assert counts[""] == {"given": 0, "seen": 70}


@pytest.mark.parametrize(
    ("create_body", "message"),
    [
        ({"index": {"type": "leanvec", "dims": 500}}, "dims"),
        ({"index": {"type": "leanvec", "variant": "ood"}, "distance": "Euclid"}, "ood"),
        (
            {"index": {"type": "leanvec"}, "quantization_config": {"binary": {}}},
            "quantization_config",
        ),
        ({"index": {"type": "leanvec", "primary_bits": 6}}, "primary_bits"),
        ({"index": {"type": "leanvec", "ood_solver": "newton"}}, "ood_solver"),
    ],
)
def test_bad_leanvec_configs_are_refused(
    api: Api, create_body: dict[str, Any], message: str
) -> None:
    body = {
        "vectors": {"size": 384, "distance": create_body.pop("distance", "Cosine")}
    } | create_body
    status, answer = api.put("/collections/bad", body)
    assert status in (400, 422), answer
    assert message in str(answer["status"]["error"])
    assert api.result("GET", "/collections/bad/exists") == {"exists": False}


def test_bad_training_queries_change_nothing(api: Api) -> None:
    create(api, "t", {"type": "leanvec", "variant": "ood"}, size=4, distance="Dot")
    for vectors in ([[1.0, 2.0]], [[1.0, float("nan"), 0.0, 0.0]]):
        status, answer = api.call(
            "POST",
            "/collections/t/leanvec/training-queries",
            content=_json({"vectors": vectors}),
            headers={"content-type": "application/json"},
        )
        assert status == 400, answer
    assert api.result("GET", "/collections/t/leanvec/training-queries")[""] == {
        "given": 0,
        "seen": 0,
    }
    assert api.result("GET", "/collections/t")["config"]["index"]["training_generation"] == 0


def _json(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()


def test_compressed_secondaries_return_and_rebuild_from_the_exact_vectors(api: Api) -> None:
    xb = embeddings(1500)
    create(api, "exact", {"type": "leanvec", "secondary": "int8"})
    upsert(api, "exact", xb)
    wait_green(api, "exact")
    got = api.result("POST", "/collections/exact/points", {"ids": [7], "with_vector": True})
    # the server re-normalises (Cosine): equal to float32 rounding; int8 would be off ~1e-3
    np.testing.assert_allclose(np.array(got[0]["vector"]), xb[7], atol=1e-6)
    api.result("PATCH", "/collections/exact", {"index": {"type": "hnsw"}})
    wait_green(api, "exact")
    assert {s["index"] for s in sealed(api, "exact")} == {"hnsw"}
    hits = api.result(
        "POST", "/collections/exact/points/query",
        {"query": xb[3].tolist(), "limit": 1, "with_vector": True},
    )["points"]  # fmt: skip
    assert hits[0]["id"] == 3
    np.testing.assert_allclose(np.array(hits[0]["vector"]), xb[3], atol=1e-6)
    assert hits[0]["score"] == pytest.approx(float(xb[3] @ xb[3]), abs=1e-6)
