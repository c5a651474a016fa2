"""A server killed while it builds an index comes back searchable and redoes the build."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.process import QuiverProcess, result

pytestmark = pytest.mark.integration

DIM = 64
POINTS = 24_000


def jobs(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = result(client.get("/collections/big/jobs"))
    return found


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_during_build_then_restart_redoes_the_job(quiver_process: QuiverProcess) -> None:
    vectors = np.random.default_rng(1).normal(size=(POINTS, DIM)).astype(np.float32)
    with httpx.Client(base_url=quiver_process.url, timeout=60) as client:
        body = {
            "vectors": {"size": DIM, "distance": "Euclid"},
            "hnsw_config": {"m": 32, "ef_construct": 400},
            "optimizers_config": {"indexing_threshold": POINTS, "default_segment_number": 4},
        }
        result(client.put("/collections/big", json=body))
        for start in range(0, POINTS, 2000):
            points = [
                {"id": start + i, "vector": v.tolist()}
                for i, v in enumerate(vectors[start : start + 2000])
            ]
            result(client.put("/collections/big/points?wait=true", json={"points": points}))
        wait_for(lambda: any(j["state"] == "running" for j in jobs(client)), 30, "a running build")
        running = next(j for j in jobs(client) if j["state"] == "running")
    quiver_process.kill()
    quiver_process.start()
    with httpx.Client(base_url=quiver_process.url, timeout=60) as client:
        hits = result(
            client.post(
                "/collections/big/points/query", json={"query": vectors[5].tolist(), "limit": 1}
            )
        )
        assert [p["id"] for p in hits["points"]] == [5]
        wait_for(lambda: result(client.get("/collections/big"))["status"] == "green", 240, "green")
        by_id = {j["id"]: j for j in jobs(client)}
        assert by_id[running["id"]]["state"] == "interrupted"
        redone = [j for j in by_id.values() if j["redo_of"] == running["id"]]
        assert [j["state"] for j in redone] == ["done"]
        info = result(client.get("/collections/big"))
        assert info["points_count"] == POINTS
        assert info["indexed_vectors_count"] == POINTS
        hits = result(
            client.post(
                "/collections/big/points/query", json={"query": vectors[77].tolist(), "limit": 1}
            )
        )
        assert [p["id"] for p in hits["points"]] == [77]
    quiver_process.stop()
    quiver_process.start()
    with httpx.Client(base_url=quiver_process.url, timeout=60) as client:
        before = len(jobs(client))
        assert result(client.get("/collections/big"))["status"] == "green"
        time.sleep(0.5)
        assert len(jobs(client)) == before
