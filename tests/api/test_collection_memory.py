"""``GET /collections/{name}`` reports the whole per-collection memory (issue 24): the
indexes plus the per-row bookkeeping around them, in parts and per point."""

from __future__ import annotations

from tests.helpers.api import Api, wait_green
from tests.helpers.indexing import create, data, upsert


def test_collection_memory_sums_the_indexes_and_the_bookkeeping(api: Api) -> None:
    create(api, "mem", threshold=100)
    upsert(api, "mem", data(300))
    info = wait_green(api, "mem")
    memory = info["memory"]
    index_bytes = sum(sum(m["bytes"].values()) for m in info["vectors_memory"].values())
    assert memory["points"] == info["points_count"] == 300
    assert memory["bytes"]["index"] == index_bytes > 0
    assert memory["total_bytes"] == sum(memory["bytes"].values())
    assert memory["bytes_per_point"] == round(memory["total_bytes"] / 300, 1)


def test_sealed_rows_cost_arrays_not_python_objects(api: Api) -> None:
    create(api, "lean", threshold=100)
    upsert(api, "lean", data(300))
    parts = wait_green(api, "lean")["memory"]["bytes"]
    sealed = sum(
        1 for s in api.result("GET", "/collections/lean/segments") if s["kind"] == "sealed"
    )
    assert sealed >= 1
    # ids (value, sorted key, row order) ~20 B, version 8 B, live 1 B a row; no payloads kept
    assert parts["ids"] <= 20 * 300 and parts["versions"] <= 8 * 300
    assert parts["payloads"] < 1024
