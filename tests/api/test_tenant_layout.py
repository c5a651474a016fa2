"""Tenant layout (ADR 0020): rows grouped by the ``is_tenant`` field at build, and
per-value graphs from ``hnsw_config.payload_m`` (also with ``m: 0``), with answers
equal to a collection without either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.metrics import Distance
from server.engine.collection import Collection
from server.engine.config import CollectionConfig, VectorParams
from server.engine.sealed_segment import SealedSegment
from server.engine.tenant_layout import tenant_permutation
from tests.helpers.api import Api, make_client, wait_green

DIM = 16  # full_scan_threshold 10 KB = 160 rows of 16 floats: a value's graph needs more
N = 600
SIZES = {"t0": 300, "t1": 150, "t2": 90}  # the other 60 rows: tenants t3..t8
RECALL_BOUND = 0.9


def _tenants() -> list[str]:
    """Each row's tenant, shuffled (seeded) so that insertion order interleaves them."""
    names = [t for t, size in SIZES.items() for _ in range(size)]
    names += [f"t{3 + i % 6}" for i in range(N - len(names))]
    return [str(t) for t in np.random.default_rng(5).permutation(names)]


TENANTS = _tenants()
XB = np.random.default_rng(17).normal(size=(N + 300, DIM)).astype(np.float32)
KEYWORD = {"type": "keyword"}
TENANT = {"type": "keyword", "is_tenant": True}
COLLECTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({"m": 16}, KEYWORD),
    "ten": ({"m": 16}, TENANT),
    "pm": ({"m": 0, "payload_m": 16}, TENANT),
    "off": ({"m": 0, "payload_m": 16}, TENANT | {"enable_hnsw": False}),
}


def _fill(api: Api, name: str, hnsw: dict[str, Any], schema: dict[str, Any]) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Dot"},
        "hnsw_config": hnsw | {"ef_construct": 64, "full_scan_threshold": 10},
        "optimizers_config": {"indexing_threshold": 300, "default_segment_number": 1},
    }
    api.result("PUT", f"/collections/{name}", body)
    index = {"field_name": "tenant", "field_schema": schema}
    api.result("PUT", f"/collections/{name}/index?wait=true", index)
    _upsert(api, name, 0, N)
    wait_green(api, name)


def _upsert(api: Api, name: str, start: int, stop: int) -> None:
    points = [
        {"id": i, "vector": XB[i].tolist(), "payload": {"tenant": TENANTS[i % N], "i": i}}
        for i in range(start, stop)
    ]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with make_client(tmp_path_factory.mktemp("layout")) as client:
        api = Api(client)
        for name, (hnsw, schema) in COLLECTIONS.items():
            _fill(api, name, hnsw, schema)
        yield api


def _sealed(api: Api, name: str) -> list[SealedSegment]:
    collection = api.client.app.state.engine.get(name)  # type: ignore[attr-defined]
    assert isinstance(collection, Collection)
    return [s for s in collection._segments if isinstance(s, SealedSegment)]


def _query(api: Api, name: str, tenant: str, q: np.ndarray, **extra: Any) -> dict[str, Any]:
    body = {
        "query": q.tolist(),
        "limit": 10,
        "filter": {"must": [{"key": "tenant", "match": {"value": tenant}}]},
        "explain": True,
    } | extra
    answer: dict[str, Any] = api.result("POST", f"/collections/{name}/points/query", body)
    return answer


def _plan(answer: dict[str, Any]) -> dict[str, Any]:
    plans = [p for p in answer["explain"] if p["segment"] is not None and p["strategy"] != "none"]
    assert len(plans) == 1
    plan: dict[str, Any] = plans[0]
    return plan


def _hits(answer: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["id"], p["score"]) for p in answer["points"]]


def _assert_contiguous(segment: SealedSegment) -> None:
    index = segment.payload_indexes.fields["tenant"]
    rows: dict[str, list[int]] = {}
    for key, row in index.entries():
        rows.setdefault(key, []).append(row)
    for key, found in rows.items():
        assert found == list(range(found[0], found[0] + len(found))), key


def test_permutation_groups_tenants_stably() -> None:
    groups = [("b", np.array([1, 4])), ("a", np.array([0, 3]))]
    assert tenant_permutation(groups, 6).tolist() == [0, 3, 1, 4, 2, 5]


def test_each_tenant_is_one_range_and_ids_still_find_their_rows(api: Api) -> None:
    (segment,) = _sealed(api, "ten")
    _assert_contiguous(segment)
    (unordered,) = _sealed(api, "plain")
    with pytest.raises(AssertionError):
        _assert_contiguous(unordered)  # the data does interleave them
    for i in (0, 77, 599):
        point = api.result("GET", f"/collections/ten/points/{i}")
        assert point["payload"] == {"tenant": TENANTS[i], "i": i}
        assert np.allclose(point["vector"], XB[i], atol=1e-6)


def test_a_small_tenant_reads_its_range_with_the_answers_of_a_plain_collection(api: Api) -> None:
    for q in np.random.default_rng(3).normal(size=(5, DIM)).astype(np.float32):
        for tenant in ("t2", "t5"):
            laid_out = _query(api, "ten", tenant, q)
            plain = _query(api, "plain", tenant, q, params={"exact": True})
            assert "as one slice" in _plan(laid_out)["reason"]
            assert _hits(laid_out) == _hits(plain)


def test_a_big_tenant_walks_its_own_graph_when_m_is_zero(api: Api) -> None:
    hits = 0
    queries = np.random.default_rng(4).normal(size=(20, DIM)).astype(np.float32)
    for q in queries:
        answer = _query(api, "pm", "t0", q)
        plan = _plan(answer)
        assert (plan["strategy"], plan["payload_graph"]) == ("graph", "tenant=t0")
        truth = _query(api, "plain", "t0", q, params={"exact": True})
        hits += len({p for p, _ in _hits(answer)} & {p for p, _ in _hits(truth)})
    assert hits / (10 * len(queries)) >= RECALL_BOUND
    small = _plan(_query(api, "pm", "t1", queries[0]))  # 150 rows: no graph of its own
    assert (small["strategy"], small["payload_graph"]) == ("exact", None)


def test_enable_hnsw_false_builds_no_value_graph(api: Api) -> None:
    (segment,) = _sealed(api, "off")
    assert len(segment.value_graphs) == 0
    (built,) = _sealed(api, "pm")
    assert {key[2] for key in built.value_graphs.graphs} == {"t0"}
    plan = _plan(_query(api, "off", "t0", np.ones(DIM, dtype=np.float32)))
    assert (plan["strategy"], plan["payload_graph"]) == ("exact", None)


def test_unfiltered_queries_on_m_zero_scan_exactly(api: Api) -> None:
    q = np.random.default_rng(8).normal(size=DIM).astype(np.float32)
    body = {"query": q.tolist(), "limit": 5, "explain": True}
    answer = api.result("POST", "/collections/pm/points/query", body)
    exact = body | {"params": {"exact": True}}
    truth = api.result("POST", "/collections/plain/points/query", exact)
    assert _plan(answer)["strategy"] == "exact"
    assert _hits(answer) == _hits(truth)


def test_a_point_moved_into_a_tenant_after_the_build_is_found(api: Api) -> None:
    moved = next(i for i in range(N) if TENANTS[i] == "t4")
    body = {"payload": {"tenant": "t0"}, "points": [moved]}
    api.result("POST", "/collections/pm/points/payload?wait=true", body)
    answer = _query(api, "pm", "t0", XB[moved] * 10)
    assert _plan(answer)["payload_graph"] == "tenant=t0"
    assert answer["points"][0]["id"] == moved


def test_ranges_hold_after_deletes_and_a_merge(api: Api) -> None:
    gone = list(range(0, N, 7))
    for name in ("ten", "plain"):
        api.result("POST", f"/collections/{name}/points/delete?wait=true", {"points": gone})
        _upsert(api, name, N, N + 300)  # seals a second segment, merged into one
        wait_green(api, name)
    (segment,) = _sealed(api, "ten")
    _assert_contiguous(segment)
    q = np.random.default_rng(9).normal(size=DIM).astype(np.float32)
    for tenant in ("t1", "t6"):
        laid_out = _query(api, "ten", tenant, q)
        assert _hits(laid_out) == _hits(_query(api, "plain", tenant, q, params={"exact": True}))
        assert not {p for p, _ in _hits(laid_out)} & set(gone)


def test_value_graphs_are_read_back_after_a_restart(tmp_path: Path) -> None:
    for _ in range(2):
        with make_client(tmp_path) as client:
            api = Api(client)
            if "pm" not in [c["name"] for c in api.result("GET", "/collections")["collections"]]:
                _fill(api, "pm", *COLLECTIONS["pm"])
            (segment,) = _sealed(api, "pm")
            assert {key[2] for key in segment.value_graphs.graphs} == {"t0"}
            plan = _plan(_query(api, "pm", "t0", np.ones(DIM, dtype=np.float32)))
            assert plan["payload_graph"] == "tenant=t0"


def test_the_layout_follows_per_vector_payload_m_and_enable_hnsw() -> None:
    config = CollectionConfig(
        vectors={
            "a": VectorParams(size=16, distance=Distance.DOT, hnsw_config={"payload_m": 8}),
            "b": VectorParams(size=64, distance=Distance.DOT),
        },
        named_vectors=True,
        payload_schema={
            "tenant": TENANT,
            "n": {"type": "integer", "lookup": False},
            "k": {"type": "keyword", "enable_hnsw": False},
            "u": {"type": "uuid"},
        },
    )
    assert config.tenant_layout() == {
        "tenant": "tenant",
        "payload_graphs": {
            "fields": ["tenant", "u"],
            "vectors": {"a": {"m": 8, "min_rows": 160_000}},  # 10,000 KB of 64 B rows
            "ef_construct": 100,
        },
    }
    assert config.index_spec().layout == config.tenant_layout()
    no_schema = CollectionConfig(vectors=config.vectors, named_vectors=True)
    assert no_schema.tenant_layout() == {}
    assert "layout" not in no_schema.index_spec().to_manifest()
