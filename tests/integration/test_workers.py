"""Multi-process serving (``QUIVER_WORKERS=2``, ADR 0013) against real processes.

Every request opens a fresh connection, so the kernel spreads them over the owner
and the reader (``x-quiver-worker`` says who answered). After each acknowledged
write the next read, whichever worker takes it, must show it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client.models import PointStruct

from server.engine.segment_rows import ROWS_FILE
from tests.helpers.process import QuiverProcess, free_port, result, server_env

pytestmark = pytest.mark.integration

SEED = 2_020
DIM = 4
ROUNDS = 8
READS_PER_WRITE = 4
WAIT_S = 60.0  # a busy 2-core machine: a worker's start can take many seconds
START_TIMEOUT_S = 60.0  # two processes start on a busy 2-core machine


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[QuiverProcess]:
    server = QuiverProcess(
        tmp_path / "data", tmp_path / "logs", server_env() | {"QUIVER_WORKERS": "2"}
    )
    server.start(START_TIMEOUT_S)
    yield server
    server.stop()


_FRESH_CONNECTIONS = httpx.Client(timeout=WAIT_S, limits=httpx.Limits(max_keepalive_connections=0))


def call(server: QuiverProcess, method: str, path: str, body: object = None) -> httpx.Response:
    """One request on a connection of its own (so any worker may take it)."""
    return _FRESH_CONNECTIONS.request(method, server.url + path, json=body)


def retrieve(server: QuiverProcess, ids: list[int]) -> tuple[set[int], str]:
    response = call(server, "POST", "/collections/c/points", {"ids": ids})
    return {point["id"] for point in result(response)}, response.headers["x-quiver-worker"]


def query_all(server: QuiverProcess, **full: object) -> tuple[list[object], str]:
    """A plain query for every point (the direct lane's on either worker; with ``full``
    keys, the full route's), its hits and the worker that answered."""
    body = {"query": [1.0] * DIM, "limit": ROUNDS * 10} | full
    response = call(server, "POST", "/collections/c/points/query", body)
    hits = [(p["id"], p["score"]) for p in result(response)["points"]]
    return hits, response.headers["x-quiver-worker"]


def upsert(server: QuiverProcess, rng: np.random.Generator, ids: list[int]) -> None:
    points = [{"id": i, "vector": rng.random(DIM).tolist(), "payload": {"i": i}} for i in ids]
    result(call(server, "PUT", "/collections/c/points?wait=true", {"points": points}))


def create(server: QuiverProcess, indexing_threshold: int | None = None) -> None:
    body: dict[str, object] = {"vectors": {"size": DIM, "distance": "Dot"}}
    if indexing_threshold is not None:
        body["optimizers_config"] = {"indexing_threshold": indexing_threshold}
    assert result(call(server, "PUT", "/collections/c", body)) is True


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def test_every_acknowledged_upsert_and_delete_is_in_the_next_read(
    workers: QuiverProcess,
) -> None:
    rng = np.random.default_rng(SEED)
    create(workers)
    alive: set[int] = set()
    answered_by: set[str] = set()
    for round_ in range(ROUNDS):
        new = [round_ * 10 + k for k in range(5)]
        upsert(workers, rng, new)
        alive |= set(new)
        if round_ % 3 == 2:
            gone = sorted(alive)[::4]
            body = {"points": gone}
            result(call(workers, "POST", "/collections/c/points/delete?wait=true", body))
            alive -= set(gone)
        for _ in range(READS_PER_WRITE):
            found, worker = retrieve(workers, list(range(ROUNDS * 10)))
            assert found == alive, f"round {round_}, worker {worker}"
            hits, by = query_all(workers)  # the direct lane's read, positive scores: all
            assert {hit[0] for hit in hits} == alive, f"round {round_}, query, worker {by}"
            answered_by |= {worker, by}
    answered_by.add(_reader_answers(workers, alive))
    assert answered_by == {"0", "1"}
    _reader_queries_as_the_full_route(workers)


def _reader_queries_as_the_full_route(server: QuiverProcess) -> None:
    """Queries until the reader answers one in the lane: the same hits as the full
    route's (``lookup_from`` keeps a body off the lane)."""
    expected, _ = query_all(server, lookup_from=None)
    deadline = time.monotonic() + WAIT_S
    while True:
        hits, worker = query_all(server)
        assert [hit[0] for hit in hits] == [hit[0] for hit in expected], f"worker {worker}"
        assert [hit[1] for hit in hits] == pytest.approx([hit[1] for hit in expected])
        if worker == "1":
            return
        assert time.monotonic() < deadline, "the reader never answered a query itself"


def _reader_answers(server: QuiverProcess, alive: set[int]) -> str:
    """Read until the reader answers from its own view (it reloads after writes);
    its answer must hold the same points."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found, worker = retrieve(server, list(range(ROUNDS * 10)))
        assert found == alive, f"worker {worker}"
        if worker == "1":
            return worker
    raise AssertionError("the reader never answered a read itself")


def _built(server: QuiverProcess, rng: np.random.Generator) -> int:
    """300 points indexed into sealed segments; the owner's generation after the build."""
    create(server, indexing_threshold=100)
    upsert(server, rng, list(range(300)))
    deadline = time.monotonic() + WAIT_S
    while True:
        info = call(server, "GET", "/collections/c")
        if result(info)["status"] == "green" and all(
            job["state"] != "running" and job["state"] != "queued"
            for job in result(call(server, "GET", "/collections/c/jobs"))
        ):
            return int(info.headers["x-quiver-generation"])  # after the build's bump
        assert time.monotonic() < deadline, "the build did not finish"


def test_a_built_segment_reaches_the_reader(workers: QuiverProcess) -> None:
    rng = np.random.default_rng(SEED + 1)
    built = _built(workers, rng)
    deadline = time.monotonic() + WAIT_S
    query = {"query": rng.random(DIM).tolist(), "limit": 5}
    expected = result(call(workers, "POST", "/collections/c/points/query", query))["points"]
    while time.monotonic() < deadline:
        response = call(workers, "POST", "/collections/c/points/query", query)
        assert [p["id"] for p in result(response)["points"]] == [p["id"] for p in expected]
        if response.headers["x-quiver-worker"] == "1":
            assert int(response.headers["x-quiver-generation"]) >= built
            return
    raise AssertionError("the reader never answered with a view loaded after the build")


def test_the_owner_and_the_reader_map_a_built_graph_and_its_rows_from_the_segment_files(
    workers: QuiverProcess,
) -> None:
    """Shared through the page cache, not copied into each worker (ADR 0013)."""
    rng = np.random.default_rng(SEED + 3)
    _built(workers, rng)
    query = {"query": rng.random(DIM).tolist(), "limit": 5}
    deadline = time.monotonic() + WAIT_S
    answered = ""
    while answered != "1":  # the reader answered from a view loaded after the build
        assert time.monotonic() < deadline, "the reader never answered a query itself"
        response = call(workers, "POST", "/collections/c/points/query", query)
        answered = response.headers["x-quiver-worker"]
    segments = str(workers.data_dir.resolve() / "collections" / "c" / "segments")
    rows_files: list[set[tuple[str, str]]] = []
    for pid in children(workers.pid):
        maps = [line.split() for line in Path(f"/proc/{pid}/maps").read_text().splitlines()]
        mapped = {line[-1] for line in maps if segments in line[-1]}
        assert any(path.endswith(".index") for path in mapped), f"worker {pid}: {mapped}"
        # the ids and versions too: one file (same inode) the owner wrote, in both
        rows_files.append({(line[4], line[-1]) for line in maps if line[-1].endswith(ROWS_FILE)})
    assert len(rows_files) == 2 and len(rows_files[0]) == 1 and rows_files[0] == rows_files[1]


def test_a_crashed_worker_restarts_and_kill_9_keeps_acknowledged_writes(
    workers: QuiverProcess,
) -> None:
    rng = np.random.default_rng(SEED + 2)
    create(workers)
    upsert(workers, rng, list(range(6)))
    for victim in sorted(children(workers.pid)):  # the owner (forked first), then the reader
        os.kill(victim, signal.SIGKILL)
        _wait_for_new_worker(workers, victim)
    for start in range(6, 60, 6):
        upsert(workers, rng, list(range(start, start + 6)))
    kids = children(workers.pid)
    workers.kill()  # SIGKILL to the supervisor: the workers die with it
    deadline = time.monotonic() + WAIT_S
    while any(_alive(pid) for pid in kids):
        assert time.monotonic() < deadline, "a worker outlived the killed supervisor"
        time.sleep(0.05)
    workers.start(START_TIMEOUT_S)
    found, _ = retrieve(workers, list(range(60)))
    assert found == set(range(60))


def _wait_for_new_worker(server: QuiverProcess, victim: int) -> None:
    """Until a new process took the victim's place and both workers answer reads."""
    deadline = time.monotonic() + WAIT_S
    answered: set[str] = set()
    while answered != {"0", "1"}:
        assert time.monotonic() < deadline, f"not both workers answer: {answered}"
        kids = children(server.pid)
        if len(kids) == 2 and victim not in kids:
            with contextlib.suppress(httpx.TransportError):
                response = call(server, "POST", "/collections/c/points", {"ids": [0]})
                if response.status_code == 200:  # 503 while the owner restarts
                    answered.add(response.headers["x-quiver-worker"])
        else:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_grpc_upsert_is_in_the_next_rest_read_on_any_worker(tmp_path: Path) -> None:
    """gRPC's fast upsert reaches the engine without an HTTP answer of the owner's: the
    reader sees the collection's operation id move instead."""
    grpc_port = free_port()
    env = server_env() | {"QUIVER_WORKERS": "2", "QUIVER_GRPC_PORT": str(grpc_port)}
    server = QuiverProcess(tmp_path / "data", tmp_path / "logs", env)
    server.start(START_TIMEOUT_S)
    client = QdrantClient(url=server.url, grpc_port=grpc_port, prefer_grpc=True,
                          check_compatibility=False, timeout=30)  # fmt: skip
    try:
        rng = np.random.default_rng(SEED + 4)
        create(server)
        alive: set[int] = set()
        for round_ in range(ROUNDS // 2):
            points = [PointStruct(id=round_, vector=rng.random(DIM).tolist())]
            client.upsert("c", points, wait=True)
            alive.add(round_)
            for _ in range(READS_PER_WRITE):
                assert retrieve(server, list(range(ROUNDS)))[0] == alive
        _reader_answers(server, alive)
    finally:
        client.close()
        server.stop()


def test_an_alias_switch_is_in_the_next_read_on_any_worker(workers: QuiverProcess) -> None:
    """No point changes, so no operation id moves: only the generation tells the reader."""
    rng = np.random.default_rng(SEED + 5)
    body = {"vectors": {"size": DIM, "distance": "Dot"}}
    holds = {"a": {1}, "b": {2}}
    for name, ids in holds.items():
        assert result(call(workers, "PUT", f"/collections/{name}", body)) is True
        points = [{"id": i, "vector": rng.random(DIM).tolist()} for i in ids]
        result(call(workers, "PUT", f"/collections/{name}/points?wait=true", {"points": points}))
    for switch, target in enumerate(["a", "b", "a", "b", "a", "b"]):
        create = {"create_alias": {"collection_name": target, "alias_name": "x"}}
        actions = [create] if switch == 0 else [{"delete_alias": {"alias_name": "x"}}, create]
        result(call(workers, "POST", "/collections/aliases", {"actions": actions}))
        for _ in range(READS_PER_WRITE):
            response = call(workers, "POST", "/collections/x/points", {"ids": [1, 2]})
            assert {point["id"] for point in result(response)} == holds[target], (
                f"switch {switch}, worker {response.headers['x-quiver-worker']}"
            )
        _wait_until_reader_answers(workers, "/collections/x/points")


def _wait_until_reader_answers(server: QuiverProcess, path: str) -> None:
    """Reads until the reader answers one itself (its view reloaded), so the next switch
    finds it current, the case where a missed generation bump would show."""
    deadline = time.monotonic() + WAIT_S
    while call(server, "POST", path, {"ids": [1, 2]}).headers["x-quiver-worker"] != "1":
        assert time.monotonic() < deadline, "the reader never answered a read itself"
