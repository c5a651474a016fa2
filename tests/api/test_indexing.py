"""Sealed segments, background index builds, vacuum, merge, restart without rebuild."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.hnsw_faiss import HnswIndex
from server.engine import build_worker
from tests.helpers.api import Api, make_client, search_ids, wait_green
from tests.helpers.indexing import DIM, create, data, upsert


def test_segments_are_sealed_indexed_and_searched_with_high_recall(api: Api) -> None:
    create(api, "ix")
    xb = data(2000)
    upsert(api, "ix", xb)
    info = wait_green(api, "ix")
    segments = api.result("GET", "/collections/ix/segments")
    sealed = [s for s in segments if s["kind"] == "sealed"]
    assert sealed and all(s["index"] == "hnsw" for s in sealed)
    assert info["indexed_vectors_count"] == sum(s["points"] for s in sealed)
    assert info["points_count"] == 2000
    jobs = api.result("GET", "/collections/ix/jobs")
    assert {j["kind"] for j in jobs} >= {"index"}
    assert all(j["state"] == "done" and j["progress"] == 1.0 for j in jobs)
    queries = data(30, seed=9)
    hits = 0
    for q in queries:
        exact = search_ids(api, "ix", q, params={"exact": True})
        approx = search_ids(api, "ix", q)
        hits += len(set(exact) & set(approx))
    assert hits / (10 * len(queries)) >= 0.95


def test_deleted_and_overwritten_points_in_sealed_segments(api: Api) -> None:
    create(api, "del")
    xb = data(1000)
    upsert(api, "del", xb)
    wait_green(api, "del")
    api.result(
        "POST", "/collections/del/points/delete?wait=true", {"points": list(range(0, 1000, 2))}
    )
    moved = np.full((1, DIM), 100.0, dtype=np.float32)
    upsert(api, "del", moved, start=1)
    for q in data(10, seed=5):
        found = search_ids(api, "del", q, limit=20)
        assert all(i % 2 == 1 for i in found)
        assert len(found) == 20
    assert search_ids(api, "del", moved[0], limit=1) == [1]
    assert api.result("POST", "/collections/del/points/count", {})["count"] == 500


def test_vacuum_compacts_segment_past_deleted_threshold(api: Api) -> None:
    optimizers = {
        "indexing_threshold": 1000,
        "deleted_threshold": 0.2,
        "vacuum_min_vector_number": 100,
        "default_segment_number": 2,
    }
    create(api, "vac", optimizers_config=optimizers)
    upsert(api, "vac", data(1000))
    wait_green(api, "vac")
    api.result("POST", "/collections/vac/points/delete?wait=true", {"points": list(range(300))})
    wait_green(api, "vac")
    kinds = [j["kind"] for j in api.result("GET", "/collections/vac/jobs")]
    assert "vacuum" in kinds
    sealed = [s for s in api.result("GET", "/collections/vac/segments") if s["kind"] == "sealed"]
    assert [(s["points"], s["rows"]) for s in sealed] == [(700, 700)]


def test_small_segments_are_merged_down_to_the_target(api: Api) -> None:
    create(api, "mrg", threshold=200)
    upsert(api, "mrg", data(1000))
    wait_green(api, "mrg")
    sealed = [s for s in api.result("GET", "/collections/mrg/segments") if s["kind"] == "sealed"]
    assert len(sealed) <= 2
    assert sum(s["points"] for s in sealed) == 1000
    assert "merge" in {j["kind"] for j in api.result("GET", "/collections/mrg/jobs")}


def test_restart_reuses_saved_indexes_without_rebuilding(tmp_path: Path) -> None:
    xb = data(1200)
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "keep")
        upsert(api, "keep", xb)
        wait_green(api, "keep")
        before = [search_ids(api, "keep", q) for q in xb[:5]]
        jobs_before = len(api.result("GET", "/collections/keep/jobs"))
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "keep")
        assert info["points_count"] == 1200
        assert len(api.result("GET", "/collections/keep/jobs")) == jobs_before
        assert [search_ids(api, "keep", q) for q in xb[:5]] == before


def test_corrupt_index_file_is_rebuilt_from_stored_points(tmp_path: Path) -> None:
    xb = data(600)
    with make_client(tmp_path) as client:
        api = Api(client)
        create(api, "bad", threshold=600)
        upsert(api, "bad", xb)
        wait_green(api, "bad")
    index_files = list((tmp_path / "collections" / "bad" / "segments").glob("*/*.index"))
    assert index_files
    for path in index_files:
        path.write_bytes(b"garbage")
    with make_client(tmp_path) as client:
        api = Api(client)
        info = wait_green(api, "bad")
        assert info["points_count"] == 600
        assert any(j["kind"] == "index" for j in api.result("GET", "/collections/bad/jobs")[-1:])
        assert search_ids(api, "bad", xb[7], limit=1) == [7]


def test_patch_hnsw_config_rebuilds_in_background(api: Api) -> None:
    create(api, "pt", threshold=500)
    upsert(api, "pt", data(1000))
    wait_green(api, "pt")
    api.result("PATCH", "/collections/pt", {"hnsw_config": {"m": 8}})
    wait_green(api, "pt")
    kinds = [j["kind"] for j in api.result("GET", "/collections/pt/jobs")]
    assert "rebuild" in kinds
    api.result("PATCH", "/collections/pt", {"index": {"type": "flat"}})
    wait_green(api, "pt")
    sealed = [s for s in api.result("GET", "/collections/pt/segments") if s["kind"] == "sealed"]
    assert sealed and all(s["index"] == "flat" for s in sealed)
    assert api.result("GET", "/collections/pt")["config"]["index"]["type"] == "flat"


def test_cancelled_job_holds_work_back_until_config_changes(api: Api) -> None:
    optimizers = {"indexing_threshold": 1000, "default_segment_number": 50}
    create(api, "cx", optimizers_config=optimizers, index={"type": "flat"})
    upsert(api, "cx", data(5000))
    wait_green(api, "cx")
    # switching five segments to a slow-to-build graph queues five rebuilds at once;
    # the worker runs one at a time, so the last is still queued when we look
    slow = {"index": {"type": "hnsw"}, "hnsw_config": {"m": 48, "ef_construct": 500}}
    api.result("PATCH", "/collections/cx", slow)
    jobs = api.result("GET", "/collections/cx/jobs")
    queued = [j for j in jobs if j["state"] == "queued"]
    assert queued, jobs
    job_id = queued[-1]["id"]
    assert api.result("POST", f"/jobs/{job_id}/cancel")["state"] in ("cancelled", "running")
    deadline = time.monotonic() + 60
    while api.result("GET", f"/jobs/{job_id}")["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert api.result("GET", f"/jobs/{job_id}")["state"] == "cancelled"
    while (
        api.result("GET", "/collections/cx")["status"] == "yellow" and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert api.result("GET", "/collections/cx")["status"] == "grey"
    api.result("PATCH", "/collections/cx", {"hnsw_config": {"m": 8, "ef_construct": 64}})
    wait_green(api, "cx")
    assert api.result("GET", f"/jobs/{job_id}")["state"] == "cancelled"
    assert api.get("/jobs/nope")[0] == 404


def test_queries_during_rebuilds_never_fail_or_come_up_short(api: Api) -> None:
    create(api, "live", threshold=400)
    upsert(api, "live", data(1200))
    wait_green(api, "live")
    errors: list[Any] = []
    stop = threading.Event()

    def query_loop() -> None:
        queries = data(20, seed=11)
        while not stop.is_set():
            for q in queries:
                status, answer = api.post(
                    "/collections/live/points/query", {"query": q.tolist(), "limit": 10}
                )
                if status != 200 or len(answer["result"]["points"]) != 10:
                    errors.append((status, answer))

    thread = threading.Thread(target=query_loop)
    thread.start()
    try:
        api.result("PATCH", "/collections/live", {"hnsw_config": {"m": 12}})
        upsert(api, "live", data(300, seed=4), start=5000)
        api.result(
            "POST", "/collections/live/points/delete?wait=true", {"points": list(range(0, 600))}
        )
        wait_green(api, "live")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    new_point = data(300, seed=4)[17]
    assert search_ids(api, "live", new_point, limit=1) == [5017]


def test_idle_tail_of_an_indexed_collection_is_sealed_and_indexed(tmp_path: Path) -> None:
    with make_client(tmp_path, idle_seal_s=0.3) as client:
        api = Api(client)
        create(api, "tail", threshold=200)
        create(api, "small", threshold=200)
        upsert(api, "tail", data(250))  # one request: sealed whole
        upsert(api, "tail", data(100, seed=4), start=250)  # a tail over 200 / 4
        upsert(api, "small", data(60))  # never reached the threshold: stays exact
        # the idle check runs once a second: green before it only means "nothing queued"
        deadline = time.monotonic() + 30
        while (info := wait_green(api, "tail"))["indexed_vectors_count"] < 350:
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        segments = api.result("GET", "/collections/tail/segments")  # read once indexed
        assert info["indexed_vectors_count"] == 350, segments
        assert sum(s["points"] for s in segments if s["kind"] == "appendable") == 0
        assert api.result("GET", "/collections/small")["indexed_vectors_count"] == 0
        query = data(1, seed=5)[0]
        assert search_ids(api, "tail", query) == search_ids(
            api, "tail", query, params={"exact": True}
        )


def test_tail_below_a_quarter_threshold_is_left_exact(tmp_path: Path) -> None:
    with make_client(tmp_path, idle_seal_s=0.2) as client:
        api = Api(client)
        create(api, "tail", threshold=200)
        upsert(api, "tail", data(250))  # one request: sealed whole
        upsert(api, "tail", data(30, seed=4), start=250)  # a tail under 200 / 4
        wait_green(api, "tail")
        time.sleep(1.5)
        assert wait_green(api, "tail")["indexed_vectors_count"] == 250


def failing_hnsw_builds(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every HNSW build raises (as a build the backend rejects would); returns the list
    of the attempts' ``time.monotonic()``."""
    attempts: list[float] = []

    def refuse(self: HnswIndex, vectors: np.ndarray) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("simulated build failure")

    monkeypatch.setattr(HnswIndex, "add", refuse)
    return attempts


def wait_for(attempts: list[float], count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(attempts) < count:
        assert time.monotonic() < deadline, f"{len(attempts)} of {count} attempts"
        time.sleep(0.01)


def test_a_failing_build_backs_off_turns_red_and_waits_for_a_config_change(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_worker, "RETRY_BASE_S", 0.2, raising=False)
    attempts = failing_hnsw_builds(monkeypatch)
    create(api, "broken", threshold=100, optimizers_config={"indexing_threshold": 100})
    upsert(api, "broken", data(150))  # one request: one sealed segment, one index job
    deadline = time.monotonic() + 20
    while api.result("GET", "/collections/broken")["status"] != "red":
        assert time.monotonic() < deadline, f"never red after {len(attempts)} attempts"
        time.sleep(0.05)
    time.sleep(2.0)  # a retrying worker would go on trying meanwhile
    info = api.result("GET", "/collections/broken")
    assert len(attempts) == build_worker.MAX_TRIES
    assert info["status"] == "red"
    assert "simulated build failure" in info["optimizer_status"]["error"]
    jobs = api.result("GET", "/collections/broken/jobs")
    assert [j["state"] for j in jobs] == ["failed"] * build_worker.MAX_TRIES
    assert search_ids(api, "broken", data(1, seed=9)[0], limit=3)  # still served exactly
    monkeypatch.undo()  # the backend works again; a config change releases the segment
    api.result("PATCH", "/collections/broken", {"hnsw_config": {"ef_construct": 64}})
    assert wait_green(api, "broken")["indexed_vectors_count"] == 150


def test_retries_wait_longer_each_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_worker, "RETRY_BASE_S", 0.4, raising=False)
    attempts = failing_hnsw_builds(monkeypatch)
    create(api, "slow", threshold=100, optimizers_config={"indexing_threshold": 100})
    upsert(api, "slow", data(150))
    wait_for(attempts, 1)
    assert api.result("GET", "/collections/slow")["status"] == "yellow"  # a retry is pending
    wait_for(attempts, 3)
    first_pause, second_pause = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert first_pause >= 0.4 and second_pause >= 0.8  # doubling (load only adds to them)
    assert build_worker.retry_pause(30) == build_worker.RETRY_CAP_S


def test_job_history_is_bounded_per_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_worker, "JOB_HISTORY", 4, raising=False)
    with make_client(tmp_path) as client:
        api = Api(client)
        optimizers = {"indexing_threshold": 20, "default_segment_number": 50}
        create(api, "many", optimizers_config=optimizers, index={"type": "flat"})
        for start in range(0, 200, 20):  # ten sealed segments, ten index jobs
            upsert(api, "many", data(20, seed=start), start=start)
            wait_green(api, "many")
        assert len(api.result("GET", "/collections/many/jobs")) == 4
    monkeypatch.setattr(build_worker, "JOB_HISTORY", 100)
    with make_client(tmp_path) as client:  # the job table was pruned too
        assert len(Api(client).result("GET", "/collections/many/jobs")) == 4
