"""Chroma-style model check of a collection over the in-process API: upserts, deletes,
restarts and waits for the build worker, against a dict of what was written.

The collection is configured so that the whole segment lifecycle runs on tiny data:
an ``indexing_threshold`` of 24 points seals the appendable segment after a few
writes and the worker builds an HNSW graph for it; ``default_segment_number: 2`` merges
sealed segments; ``deleted_threshold: 0.1`` (with the smallest ``vacuum_min_vector_number``
the API takes, 100, reached by block writes of up to 120 points) vacuums them. After
every step the contents equal the model, ``exact`` answers equal a numpy brute force
over the model, and the approximate answers recall that brute force's top-k.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.helpers.api import Api, make_client, sealed_segments, wait_green
from tests.helpers.data import wire_float32
from tests.helpers.strategies import point_ids, vectors

DIM = 32
MAX_ID = 255
K = 10
RECALL_TARGET = 0.9
"""Averaged over the probe queries; HNSW with ef 128 on segments of at most a few
hundred points finds the exact top 10 almost always."""
NAME = "machine"
COLLECTION = {
    "vectors": {"size": DIM, "distance": "Euclid"},
    # 10 KB: a segment of 80+ points (80 * 32 * 4 bytes) is searched through its graph
    "hnsw_config": {"m": 8, "ef_construct": 32, "full_scan_threshold": 10},
    "optimizers_config": {
        "indexing_threshold": 24,
        "default_segment_number": 2,
        "deleted_threshold": 0.1,
        "vacuum_min_vector_number": 100,
    },
}
PROBES = np.random.default_rng(2026).normal(size=(3, DIM)).astype(np.float32)
seeds = st.integers(0, 2**32 - 1)


def seeded_vectors(seed: int, count: int) -> list[list[float]]:
    """``count`` gaussian vectors as the server stores them (float32 values)."""
    rows = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return [[float(x) for x in row] for row in rows]


def oracle_top(
    model: dict[int, list[float]], query: np.ndarray
) -> tuple[list[int], dict[int, float]]:
    """The ids of the model's ``K`` nearest points (Euclid) and every point's distance."""
    ids = np.array(sorted(model), dtype=np.int64)
    xb = np.array([model[i] for i in ids], dtype=np.float64)
    distances = np.sqrt(((xb - query.astype(np.float64)) ** 2).sum(axis=1))
    order = np.argsort(distances, kind="stable")[:K]
    return [int(i) for i in ids[order]], dict(zip(ids.tolist(), distances.tolist(), strict=True))


class CollectionMachine(RuleBasedStateMachine):
    """Writes go to the server and to ``model``; invariants compare the two."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name)
        self.client: TestClient | None = None
        self.api = self._open()
        self.api.result("PUT", f"/collections/{NAME}", COLLECTION)
        self.model: dict[int, tuple[list[float], dict[str, Any]]] = {}
        self.job_kinds: set[str] = set()
        self.strategies: set[str] = set()
        """The planner's choices for the approximate queries (``graph`` = HNSW searched)."""

    def _open(self) -> Api:
        self.client = make_client(self.path, idle_seal_s=0)
        return Api(self.client.__enter__())

    def _close(self) -> None:
        if self.client is not None:
            self.client.__exit__(None, None, None)
            self.client = None

    def _upsert(self, ids: list[int], vectors: list[list[float]], tag: int) -> None:
        points = [
            {"id": i, "vector": v, "payload": {"i": i, "tag": tag}}
            for i, v in zip(ids, vectors, strict=True)
        ]
        self.api.result("PUT", f"/collections/{NAME}/points?wait=true", {"points": points})
        for point in points:
            self.model[point["id"]] = (point["vector"], point["payload"])

    def _delete(self, ids: list[int]) -> None:
        body = {"points": ids}
        self.api.result("POST", f"/collections/{NAME}/points/delete?wait=true", body)
        for i in ids:
            self.model.pop(i, None)

    # -- rules -----------------------------------------------------------------

    @rule(ids=st.lists(point_ids(MAX_ID), min_size=1, max_size=8, unique=True), seed=seeds)
    def upsert(self, ids: list[int], seed: int) -> None:
        self._upsert(ids, seeded_vectors(seed, len(ids)), seed)

    @rule(
        points=st.lists(
            st.tuples(point_ids(MAX_ID), vectors(DIM)), min_size=1, max_size=3,
            unique_by=lambda point: point[0],
        )
    )  # fmt: skip
    def upsert_drawn(self, points: list[tuple[int, list[float]]]) -> None:
        """Vectors Hypothesis picks: zeros, repeats and ties the seeded ones never make."""
        self._upsert([i for i, _ in points], [v for _, v in points], -1)

    @rule(first=point_ids(MAX_ID), size=st.integers(24, 120), seed=seeds)
    def upsert_block(self, first: int, size: int, seed: int) -> None:
        """One request: sealed whole once the appendable reaches the threshold."""
        ids = list(range(first, min(first + size, MAX_ID + 1)))
        self._upsert(ids, seeded_vectors(seed, len(ids)), seed)

    @rule(ids=st.lists(point_ids(MAX_ID), max_size=8))
    def delete(self, ids: list[int]) -> None:
        self._delete(ids)

    @rule(first=point_ids(MAX_ID), size=st.integers(10, 60))
    def delete_range(self, first: int, size: int) -> None:
        self._delete(list(range(first, min(first + size, MAX_ID + 1))))

    @rule()
    def restart(self) -> None:
        self._close()
        self.api = self._open()

    @rule()
    def wait_for_the_build_worker(self) -> None:
        wait_green(self.api, NAME)
        for job in self.api.result("GET", f"/collections/{NAME}/jobs"):
            assert job["state"] in ("done", "interrupted"), job
            self.job_kinds.add(job["kind"])
        sealed = sealed_segments(self.api, NAME)
        assert all(s["index"] == "hnsw" for s in sealed), sealed
        if currently_in_test_context():  # --hypothesis-show-statistics lists these
            for kind in sorted(self.job_kinds):
                event(f"job kind seen: {kind}")
            event(f"sealed segments after a wait: {min(len(sealed), 3)}")

    # -- invariants ------------------------------------------------------------

    @invariant()
    def contents_match_the_model(self) -> None:
        assert self.api.result("POST", f"/collections/{NAME}/points/count", {}) == {
            "count": len(self.model)
        }
        body = {"limit": 1000, "with_payload": True, "with_vector": True}
        records = self.api.result("POST", f"/collections/{NAME}/points/scroll", body)["points"]
        assert [r["id"] for r in records] == sorted(self.model)
        for record in records:
            vector, payload = self.model[record["id"]]
            assert list(wire_float32(record["vector"])) == vector
            assert record["payload"] == payload

    @invariant()
    def exact_search_equals_the_brute_force(self) -> None:
        vectors = {i: v for i, (v, _) in self.model.items()}
        for query in PROBES:
            hits = self._query(query, exact=True)
            if not vectors:
                assert hits == []
                continue
            expected, distance = oracle_top(vectors, query)
            assert len(hits) == len(expected)
            for hit, want in zip(hits, expected, strict=True):
                assert abs(hit["score"] - distance[hit["id"]]) <= 1e-3 * (1 + distance[hit["id"]])
                # ids may differ only where distances tie (within float32 noise)
                assert hit["id"] == want or abs(distance[hit["id"]] - distance[want]) < 1e-4

    @invariant()
    def approximate_search_recalls_the_brute_force(self) -> None:
        vectors = {i: v for i, (v, _) in self.model.items()}
        if not vectors:
            return
        found = 0
        for query in PROBES:
            hits = self._query(query, exact=False)
            expected, distance = oracle_top(vectors, query)
            assert len(hits) == len(expected)
            assert all(hit["id"] in vectors for hit in hits)
            kth = distance[expected[-1]]
            found += sum(distance[hit["id"]] <= kth + 1e-4 for hit in hits)
        recall = found / (len(PROBES) * len(expected))
        assert recall >= RECALL_TARGET, recall

    def _query(self, query: np.ndarray, *, exact: bool) -> list[dict[str, Any]]:
        body = {"query": query.tolist(), "limit": K, "params": {"exact": exact}, "explain": True}
        answer = self.api.result("POST", f"/collections/{NAME}/points/query", body)
        self.strategies.update(plan["strategy"] for plan in answer["explain"] if not exact)
        hits: list[dict[str, Any]] = answer["points"]
        return hits

    def teardown(self) -> None:
        self._close()
        self.tmp.cleanup()


TestCollectionMachine = pytest.mark.slow(CollectionMachine.TestCase)  # ~20-40 s
TestCollectionMachine.settings = settings(
    max_examples=10, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


def test_the_machine_seals_builds_merges_and_vacuums() -> None:
    """One fixed run of the rules reaches every optimiser job, so the random runs can."""
    machine = CollectionMachine()
    try:
        machine.upsert_block(0, 120, seed=1)  # sealed whole: an index job
        machine.upsert_block(120, 100, seed=2)  # a second sealed segment
        machine.upsert(list(range(220, 250)), seed=3)  # a third: merged down to two
        machine.upsert_drawn([(250, [0.0] * DIM), (251, [0.0] * DIM)])  # a tie
        machine.wait_for_the_build_worker()
        machine.delete_range(0, 30)  # a quarter of the first segment: vacuumed
        machine.wait_for_the_build_worker()
        machine.restart()
        machine.wait_for_the_build_worker()
        machine.contents_match_the_model()
        machine.exact_search_equals_the_brute_force()
        machine.approximate_search_recalls_the_brute_force()
        assert {"index", "merge", "vacuum"} <= machine.job_kinds, machine.job_kinds
        assert "graph" in machine.strategies, machine.strategies
        assert sealed_segments(machine.api, NAME)
    finally:
        machine.teardown()
