"""Sparse vectors through the bulk endpoint (NDJSON and Arrow) and in sharded
collections: the same points and the same answers as a plain upsert on one shard."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc
import pytest

from tests.helpers.api import Api, wait_green

NDJSON = {"content-type": "application/x-ndjson"}
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}
BODY = {
    "vectors": {"d": {"size": 2, "distance": "Dot"}},
    "sparse_vectors": {"s": {"modifier": "idf"}},
}


def points(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        size = int(rng.integers(1, 6))
        terms = sorted(rng.choice(40, size, replace=False).tolist())
        values = np.round(rng.uniform(0.1, 3.0, size), 3).tolist()
        vector: dict[str, Any] = {"d": [float(i), 1.0]}
        if i % 7:
            vector["s"] = {"indices": terms, "values": values}
        out.append({"id": i, "vector": vector, "payload": {"g": i % 3}})
    return out


def post_bulk(api: Api, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = api.client.post(f"/collections/{name}/points/bulk", content=body, headers=headers)
    return response.status_code, response.json()


def arrow_of(given: list[dict[str, Any]]) -> bytes:
    sparse = [p["vector"].get("s") for p in given]
    kind = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])
    dense = np.array([p["vector"]["d"] for p in given], dtype=np.float32)
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([p["id"] for p in given]),
            "vector.d": pa.FixedSizeListArray.from_arrays(pa.array(dense.ravel()), 2),
            "vector.s": pa.array(sparse, type=kind),
            "g": pa.array([p["payload"]["g"] for p in given]),
        }
    )
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def everything(api: Api, name: str) -> list[dict[str, Any]]:
    body = {"limit": 1000, "with_vector": True, "with_payload": True}
    found: list[dict[str, Any]] = api.result("POST", f"/collections/{name}/points/scroll", body)[
        "points"
    ]
    return found


def answers(api: Api, name: str) -> list[Any]:
    out = []
    for query in (
        {"indices": [1, 5, 9], "values": [1.0, 0.5, 2.0]},
        {"indices": [3], "values": [1.0]},
    ):
        for flt in (None, {"must": [{"key": "g", "match": {"value": 1}}]}):
            body = {"query": query, "using": "s", "limit": 7, "filter": flt}
            hits = api.result("POST", f"/collections/{name}/points/query", body)["points"]
            out.append([(h["id"], round(h["score"], 4)) for h in hits])
    return out


def test_ndjson_and_arrow_load_sparse_vectors_as_an_upsert_does(api: Api) -> None:
    given = points(60)
    for name in ("plain", "nd", "ar"):
        api.result("PUT", f"/collections/{name}", BODY)
    api.result("PUT", "/collections/plain/points?wait=true", {"points": given})
    text = b"".join(orjson.dumps(p) + b"\n" for p in given)
    assert post_bulk(api, "nd", text, NDJSON)[0] == 200
    status, answer = post_bulk(api, "ar", arrow_of(given), ARROW)
    assert status == 200, answer
    assert answer["result"]["accepted"] == 60
    want = everything(api, "plain")
    assert everything(api, "nd") == want
    assert everything(api, "ar") == want
    assert answers(api, "ar") == answers(api, "plain")


def test_bad_sparse_arrow_rows_are_rejected_alone(api: Api) -> None:
    api.result("PUT", "/collections/ar", BODY)
    given = points(6)
    given[1]["vector"]["s"] = {"indices": [1, 1], "values": [1.0, 2.0]}
    given[2]["vector"]["s"] = {"indices": [1, 2], "values": [1.0, float("nan")]}
    given[3]["vector"]["s"] = {"indices": [4, 2], "values": [1.0, 0.5]}  # fine, unsorted
    status, answer = post_bulk(api, "ar", arrow_of(given), ARROW)
    assert status == 200, answer
    assert [e["row"] for e in answer["result"]["errors"]] == [1, 2]
    got = api.result("POST", "/collections/ar/points", {"ids": [1, 2, 3], "with_vector": ["s"]})
    assert [p["id"] for p in got] == [3]
    assert got[0]["vector"]["s"] == {"indices": [2, 4], "values": [0.5, 1.0]}


@pytest.mark.parametrize("shards", [3])
def test_sharded_sparse_search_with_idf_equals_one_shard(api: Api, shards: int) -> None:
    given = points(80, seed=3)
    api.result("PUT", "/collections/one", BODY)
    api.result("PUT", "/collections/many", BODY | {"shard_number": shards})
    for name in ("one", "many"):
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": given})
        api.result("POST", f"/collections/{name}/points/delete?wait=true", {"points": [1, 2, 3]})
    assert answers(api, "many") == answers(api, "one")
    assert everything(api, "many") == everything(api, "one")
    by_id = {"query": 10, "using": "s", "limit": 5}
    one = api.result("POST", "/collections/one/points/query", by_id)["points"]
    many = api.result("POST", "/collections/many/points/query", by_id)["points"]
    assert [(h["id"], round(h["score"], 4)) for h in one] == [
        (h["id"], round(h["score"], 4)) for h in many
    ]


def test_merged_and_vacuumed_segments_answer_as_one_appendable(api: Api) -> None:
    """Seals, merges (one segment wanted) and a vacuum (a quarter deleted) rebuild the
    sparse indexes from the segments' rows; answers and idf stay those of an unsealed
    copy."""
    given = points(150, seed=5)
    sealing = {
        "indexing_threshold": 10,
        "default_segment_number": 1,
        "deleted_threshold": 0.1,
        "vacuum_min_vector_number": 100,
    }
    api.result("PUT", "/collections/flat", BODY)
    api.result("PUT", "/collections/sealed", BODY | {"optimizers_config": sealing})
    for name in ("flat", "sealed"):
        for start in range(0, 150, 25):
            batch = {"points": given[start : start + 25]}
            api.result("PUT", f"/collections/{name}/points?wait=true", batch)
        wait_green(api, name)
        doomed = list(range(0, 150, 4))
        api.result("POST", f"/collections/{name}/points/delete?wait=true", {"points": doomed})
        wait_green(api, name)
    segments = api.result("GET", "/collections/sealed/segments")
    sealed = [s for s in segments if s["kind"] == "sealed"]
    assert len(sealed) == 1 and sealed[0]["rows"] == sealed[0]["points"] == 112, segments
    assert answers(api, "sealed") == answers(api, "flat")
    assert everything(api, "sealed") == everything(api, "flat")
