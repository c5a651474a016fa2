"""Durability under ``kill -9``: what the server acknowledged is there after a restart.

A writer thread sends requests with ``?wait=true`` while the test SIGKILLs the
server at seeded random moments, often mid-request. After each restart on the
same data folder:

* every acknowledged write is present, with exactly the vectors and payloads sent
  (Dot distance, so vectors come back unnormalised and compare bit for bit);
* a request that was in flight is all-or-nothing: the state equals the one before
  it or the one after it, never a mix;
* the server answers normally: counts, scrolls and searches agree with the model.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.data import wire_float32
from tests.helpers.process import QuiverProcess
from tests.helpers.process import result as _result

pytestmark = pytest.mark.integration

SEED = 7_340_112
DIM = 16
BATCH_SIZE = 100
ROUNDS = 5
MIXED_ROUNDS = 4
MAX_REQUESTS_PER_ROUND = 5_000
MAX_PAGES = 1_000
COLLECTION = "crashy"
TEXT_ALPHABET = list('abcdefghijXYZ0123 éüß漢字🙂"\\/')

PointId = int | str
Point = tuple[tuple[float, ...], dict[str, Any]]
Model = dict[PointId, Point]


# -- small REST helpers --------------------------------------------------------


def create_dot_collection(client: httpx.Client, name: str = COLLECTION) -> None:
    body = {"vectors": {"size": DIM, "distance": "Dot"}}
    assert _result(client.put(f"/collections/{name}", json=body)) is True


def fetch_all(client: httpx.Client, name: str = COLLECTION) -> Model:
    """The whole collection by scroll, following ``next_page_offset`` (bounded)."""
    state: Model = {}
    offset: PointId | None = None
    for _ in range(MAX_PAGES):
        body = {"limit": 1000, "offset": offset, "with_payload": True, "with_vector": True}
        page = _result(client.post(f"/collections/{name}/points/scroll", json=body))
        for record in page["points"]:
            assert record["id"] not in state, f"scroll returned {record['id']!r} twice"
            state[record["id"]] = (wire_float32(record["vector"]), record["payload"])
        offset = page["next_page_offset"]
        if offset is None:
            return state
    raise AssertionError("scroll did not finish")


def count(client: httpx.Client, name: str = COLLECTION) -> int:
    result = _result(client.post(f"/collections/{name}/points/count", json={"exact": True}))
    return int(result["count"])


def retrieve(client: httpx.Client, ids: list[PointId], name: str = COLLECTION) -> Model:
    body = {"ids": ids, "with_payload": True, "with_vector": True}
    records = _result(client.post(f"/collections/{name}/points", json=body))
    return {r["id"]: (wire_float32(r["vector"]), r["payload"]) for r in records}


def random_text(rng: np.random.Generator, length: int = 12) -> str:
    return "".join(rng.choice(TEXT_ALPHABET, length))


def random_vector(rng: np.random.Generator) -> tuple[float, ...]:
    """float32-representable values, so the stored float32 comes back exactly."""
    return tuple(float(x) for x in rng.normal(size=DIM).astype(np.float32))


def assert_search_agrees_with_model(client: httpx.Client, model: Model, seed: int) -> None:
    """The server's exact top 10 for a query is the Dot top 10 of the model."""
    rng = np.random.default_rng(seed)
    query = random_vector(rng)
    body = {"query": list(query), "limit": 10, "params": {"exact": True}}
    points = _result(client.post(f"/collections/{COLLECTION}/points/query", json=body))["points"]
    ids = list(model)
    if not ids:
        assert points == []
        return
    scores = np.asarray([model[i][0] for i in ids], dtype=np.float64) @ np.asarray(query)
    order = np.argsort(-scores, kind="stable")[:10]
    assert [p["id"] for p in points] == [ids[int(i)] for i in order]
    np.testing.assert_allclose([p["score"] for p in points], scores[order], rtol=1e-4, atol=1e-4)


# -- a writer that runs until the server dies ---------------------------------


@dataclass
class WriterLog:
    """What one writer thread saw: acknowledged requests, the one left in flight, errors."""

    acked: list[Any] = field(default_factory=list)
    in_flight: Any = None
    errors: list[str] = field(default_factory=list)


def run_writer(
    url: str,
    next_request: Callable[[], tuple[str, str, dict[str, Any], Any]],
    on_ack: Callable[[Any], None],
    log: WriterLog,
    stop: threading.Event,
) -> None:
    """Send requests one after another until ``stop``, a transport error or a bad status.

    ``next_request`` returns (method, path, body, tag); ``tag`` identifies the
    request in ``log`` and is handed to ``on_ack`` once the server says 200.
    """
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for _ in range(MAX_REQUESTS_PER_ROUND):
            if stop.is_set():
                return
            method, path, body, tag = next_request()
            log.in_flight = tag
            try:
                response = client.request(method, path, params={"wait": "true"}, json=body)
            except httpx.TransportError:
                return  # the server died under us; ``tag`` stays in flight
            if response.status_code != 200:
                log.errors.append(f"{method} {path} -> {response.status_code}: {response.text}")
                return
            on_ack(tag)
            log.acked.append(tag)
            log.in_flight = None


def _ignore(_tag: Any) -> None:
    """An ``on_ack`` for writers whose log is all the test needs."""


def kill_while_writing(
    server: QuiverProcess, delay: float, writers: Sequence[Callable[[threading.Event], None]]
) -> None:
    """Start the writers, SIGKILL the server after ``delay`` seconds, wait for the writers."""
    stop = threading.Event()
    threads = [threading.Thread(target=w, args=(stop,), daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    time.sleep(delay)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a writer did not notice the server died"


# -- test 1: batches of fresh points ------------------------------------------------


@dataclass(frozen=True)
class PointBatch:
    number: int
    ids: list[PointId]
    vectors: list[tuple[float, ...]]
    payloads: list[dict[str, Any]]

    def body(self) -> dict[str, Any]:
        return {
            "points": [
                {"id": i, "vector": list(v), "payload": p}
                for i, v, p in zip(self.ids, self.vectors, self.payloads, strict=True)
            ]
        }

    def as_model(self) -> Model:
        return {i: (v, p) for i, v, p in zip(self.ids, self.vectors, self.payloads, strict=True)}


def make_batch(number: int) -> PointBatch:
    """Batch ``number``'s points, derived from the seed alone; every fifth id is a UUID."""
    rng = np.random.default_rng([SEED, number])
    ids: list[PointId] = [
        str(uuid.UUID(int=number * BATCH_SIZE + j + 1)) if j % 5 == 4 else number * BATCH_SIZE + j
        for j in range(BATCH_SIZE)
    ]
    vectors = [random_vector(rng) for _ in ids]
    payloads = [
        {"batch": number, "j": j, "text": random_text(rng), "score": float(rng.random())}
        for j in range(BATCH_SIZE)
    ]
    return PointBatch(number, ids, vectors, payloads)


class BatchSource:
    """Hands out batch numbers to concurrent writers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self.sent: dict[int, PointBatch] = {}

    def next_request(self) -> tuple[str, str, dict[str, Any], Any]:
        with self._lock:
            number = self._next
            self._next += 1
        batch = make_batch(number)
        self.sent[number] = batch
        return "PUT", f"/collections/{COLLECTION}/points", batch.body(), number


def verify_batches(
    client: httpx.Client,
    source: BatchSource,
    acked: set[int],
    unresolved: set[int],
) -> set[int]:
    """Check the restarted server; returns the unresolved batches found fully applied."""
    applied: set[int] = set()
    for number in sorted(unresolved):
        batch = source.sent[number]
        found = retrieve(client, batch.ids)
        assert len(found) in (0, BATCH_SIZE), (
            f"batch {number} was partly applied: {len(found)} of {BATCH_SIZE} points"
        )
        if found:
            assert found == batch.as_model(), f"in-flight batch {number} stored wrongly"
            applied.add(number)
    present = acked | applied
    expected: Model = {}
    for number in sorted(present):
        expected |= source.sent[number].as_model()
    assert count(client) == len(expected)
    actual = fetch_all(client)
    missing = sorted(set(expected) - set(actual), key=str)
    assert not missing, f"{len(missing)} acknowledged points lost, e.g. {missing[:5]}"
    assert set(actual) == set(expected), "points from unacknowledged batches are present"
    wrong = [i for i in expected if actual[i] != expected[i]]
    assert not wrong, f"{len(wrong)} points differ from what was sent, e.g. {wrong[:5]}"
    assert_search_agrees_with_model(client, expected, seed=len(present))
    return applied


def test_acknowledged_batches_survive_kill_9(quiver_process: QuiverProcess) -> None:
    timing = random.Random(SEED)
    source = BatchSource()
    acked: set[int] = set()
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        create_dot_collection(client)

    for _ in range(ROUNDS):
        logs = [WriterLog(), WriterLog()]
        writers = [
            partial(run_writer, quiver_process.url, source.next_request, _ignore, log)
            for log in logs
        ]
        kill_while_writing(quiver_process, timing.uniform(0.2, 1.5), writers)
        for log in logs:
            assert log.errors == [], log.errors
        acked |= {n for log in logs for n in log.acked}
        unresolved = {n for log in logs if (n := log.in_flight) is not None}

        quiver_process.start()
        with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
            acked |= verify_batches(client, source, acked, unresolved)
            info = _result(client.get(f"/collections/{COLLECTION}"))
            assert info["points_count"] == BATCH_SIZE * len(acked)
    assert len(acked) >= ROUNDS, "too few batches acknowledged for the test to mean much"


# -- test 2: overwrites, deletes and payload edits ----------------------------------


@dataclass
class MixedOp:
    """One write request and what it does to the model of the collection."""

    method: str
    path: str
    body: dict[str, Any]
    apply: Callable[[Model], Model]
    label: str


Selected = Callable[[PointId, dict[str, Any]], bool]
PayloadEdit = Callable[[dict[str, Any]], dict[str, Any]]


def _edit_payloads(selected: Selected, edit: PayloadEdit) -> Callable[[Model], Model]:
    """A model transform that rewrites the payload of every selected point."""

    def apply(model: Model) -> Model:
        return {i: (v, edit(p)) if selected(i, p) else (v, p) for i, (v, p) in model.items()}

    return apply


def _drop_points(selected: Selected) -> Callable[[Model], Model]:
    def apply(model: Model) -> Model:
        return {i: (v, p) for i, (v, p) in model.items() if not selected(i, p)}

    return apply


def _in_ids(ids: list[PointId]) -> Selected:
    chosen = set(ids)
    return lambda point_id, _payload: point_id in chosen


def _in_group(group: int) -> Selected:
    """Qdrant's exact match: an integer ``group`` equal to ``group`` (``true`` is not 1)."""

    def selected(_point_id: PointId, payload: dict[str, Any]) -> bool:
        value = payload.get("group")
        return isinstance(value, int) and not isinstance(value, bool) and value == group

    return selected


def _group_filter(group: int) -> dict[str, Any]:
    return {"must": [{"key": "group", "match": {"value": group}}]}


POINTS_PATH = f"/collections/{COLLECTION}/points"


class MixedOps:
    """Seeded random writes over a fixed pool of ids, generated against the acked model."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.model: Model = {}
        self.pool: list[PointId] = [*range(300), *(str(uuid.UUID(int=k + 1)) for k in range(100))]
        self.serial = 0

    def next_op(self) -> MixedOp:
        """A random write; payload edits by id only name points that exist (else 404)."""
        self.serial += 1
        existing = sorted(self.model, key=str)
        kind = int(self.rng.integers(0, 10))
        if kind < 3 or len(existing) < 20:
            return self.upsert(self._pick(self.pool, 20))
        if kind == 3:
            return self.delete_ids(self._pick(self.pool, 10))
        if kind == 4:
            return self.delete_group(int(self.rng.integers(0, 12)))
        if kind == 5:
            return self.set_payload_by_group(int(self.rng.integers(0, 12)))
        chosen = self._pick(existing, 8)
        edits: dict[int, Callable[[list[PointId]], MixedOp]] = {
            6: self.set_payload,
            7: self.overwrite_payload,
            8: self.delete_payload_keys,
            9: self.clear_payload,
        }
        return edits[kind](chosen)

    def upsert(self, ids: list[PointId]) -> MixedOp:
        points: Model = {i: (random_vector(self.rng), self._fresh_payload()) for i in ids}
        rows = [{"id": i, "vector": list(v), "payload": p} for i, (v, p) in points.items()]
        return MixedOp(
            "PUT", POINTS_PATH, {"points": rows}, lambda m: m | points, f"upsert {len(ids)}"
        )

    def delete_ids(self, ids: list[PointId]) -> MixedOp:
        body = {"points": ids}
        return MixedOp("POST", f"{POINTS_PATH}/delete", body, _drop_points(_in_ids(ids)), "delete")

    def delete_group(self, group: int) -> MixedOp:
        body = {"filter": _group_filter(group)}
        apply = _drop_points(_in_group(group))
        return MixedOp("POST", f"{POINTS_PATH}/delete", body, apply, f"delete group {group}")

    def set_payload(self, ids: list[PointId]) -> MixedOp:
        values = {"extra": self.serial, "tags": ["a", random_text(self.rng, 3)]}
        body = {"payload": values, "points": ids}
        apply = _edit_payloads(_in_ids(ids), lambda p: p | values)
        return MixedOp("POST", f"{POINTS_PATH}/payload", body, apply, "set payload")

    def set_payload_by_group(self, group: int) -> MixedOp:
        values = {"group_mark": self.serial}
        body = {"payload": values, "filter": _group_filter(group)}
        apply = _edit_payloads(_in_group(group), lambda p: p | values)
        return MixedOp("POST", f"{POINTS_PATH}/payload", body, apply, f"set payload {group}")

    def overwrite_payload(self, ids: list[PointId]) -> MixedOp:
        values = {"group": int(self.rng.integers(0, 12)), "over": self.serial}
        body = {"payload": values, "points": ids}
        apply = _edit_payloads(_in_ids(ids), lambda _p: dict(values))
        return MixedOp("PUT", f"{POINTS_PATH}/payload", body, apply, "overwrite payload")

    def delete_payload_keys(self, ids: list[PointId]) -> MixedOp:
        keys = ("text", "extra")
        body = {"keys": list(keys), "points": ids}
        apply = _edit_payloads(
            _in_ids(ids), lambda p: {k: x for k, x in p.items() if k not in keys}
        )
        return MixedOp("POST", f"{POINTS_PATH}/payload/delete", body, apply, "delete keys")

    def clear_payload(self, ids: list[PointId]) -> MixedOp:
        body = {"points": ids}
        apply = _edit_payloads(_in_ids(ids), lambda _p: {})
        return MixedOp("POST", f"{POINTS_PATH}/payload/clear", body, apply, "clear payload")

    def _pick(self, ids: list[PointId], k: int) -> list[PointId]:
        return [ids[int(i)] for i in self.rng.choice(len(ids), min(k, len(ids)), replace=False)]

    def _fresh_payload(self) -> dict[str, Any]:
        group = int(self.rng.integers(0, 12))
        return {"group": group, "rev": self.serial, "text": random_text(self.rng)}


def _describe_difference(expected: Model, actual: Model) -> str:
    missing = [i for i in expected if i not in actual]
    extra = [i for i in actual if i not in expected]
    changed = [i for i in expected if i in actual and expected[i] != actual[i]]
    example = ""
    if changed:
        i = changed[0]
        example = f"; e.g. {i!r}: expected payload {expected[i][1]}, got {actual[i][1]}"
    return (
        f"missing {len(missing)} {missing[:3]}, unexpected {len(extra)} {extra[:3]}, "
        f"changed {len(changed)}{example}"
    )


def test_overwrites_deletes_and_payload_edits_survive_kill_9(
    quiver_process: QuiverProcess,
) -> None:
    timing = random.Random(SEED + 1)
    ops = MixedOps(SEED + 1)
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        create_dot_collection(client)
        first = ops.upsert(ops.pool)
        _result(client.request(first.method, first.path, params={"wait": "true"}, json=first.body))
        ops.model = first.apply(ops.model)

    pending: dict[int, MixedOp] = {}  # serial -> op sent but not yet acknowledged
    acked_total = 0
    for round_number in range(MIXED_ROUNDS):
        log = WriterLog()
        pending.clear()

        def next_request() -> tuple[str, str, dict[str, Any], Any]:
            op = ops.next_op()
            pending[ops.serial] = op
            return op.method, op.path, op.body, ops.serial

        def acknowledge(serial: Any) -> None:
            ops.model = pending.pop(serial).apply(ops.model)

        writer = partial(run_writer, quiver_process.url, next_request, acknowledge, log)
        kill_while_writing(quiver_process, timing.uniform(0.2, 1.5), [writer])
        assert log.errors == [], log.errors
        acked_total += len(log.acked)

        quiver_process.start()
        with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
            actual = fetch_all(client)
            if actual != ops.model and log.in_flight is not None:
                op = pending[log.in_flight]
                after = op.apply(ops.model)
                assert actual == after, (
                    f"round {round_number}: state is neither before nor after the in-flight "
                    f"{op.label!r}: vs before: {_describe_difference(ops.model, actual)}; "
                    f"vs after: {_describe_difference(after, actual)}"
                )
                ops.model = after
            assert actual == ops.model, _describe_difference(ops.model, actual)
            assert count(client) == len(ops.model)
            assert_search_agrees_with_model(client, ops.model, seed=round_number)
    assert acked_total >= MIXED_ROUNDS, "too few writes acknowledged for the test to mean much"


def test_acknowledged_overwrite_and_delete_survive_immediate_kill_9(
    quiver_process: QuiverProcess,
) -> None:
    """Deterministic: each write is acknowledged, then the process is killed at once."""
    ops = MixedOps(SEED + 2)
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        create_dot_collection(client)

        def alive(ids: list[PointId]) -> list[PointId]:
            return [i for i in ids if i in ops.model]

        script: list[Callable[[], MixedOp]] = [
            lambda: ops.upsert(ops.pool),
            lambda: ops.upsert(ops.pool[:150]),  # overwrite vectors and payloads
            lambda: ops.delete_ids(ops.pool[10:60]),
            lambda: ops.delete_group(3),
            lambda: ops.overwrite_payload(alive(ops.pool[200:230])),
            lambda: ops.delete_payload_keys(alive(ops.pool[230:260])),
            lambda: ops.clear_payload(alive(ops.pool[260:280])),
            lambda: ops.set_payload_by_group(5),
            lambda: ops.set_payload(alive(ops.pool[300:330])),
        ]
        for make_op in script:
            op = make_op()
            _result(client.request(op.method, op.path, params={"wait": "true"}, json=op.body))
            ops.model = op.apply(ops.model)
    quiver_process.kill()

    quiver_process.start()
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        actual = fetch_all(client)
        assert actual == ops.model, _describe_difference(ops.model, actual)
        assert count(client) == len(ops.model)
        assert retrieve(client, ops.pool[10:60]) == {}


@pytest.fixture
def restarted_twice(quiver_process: QuiverProcess) -> Iterator[QuiverProcess]:
    """A server killed and restarted twice with no writes: start-up alone changes nothing."""
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        create_dot_collection(client)
        _result(
            client.put(
                f"/collections/{COLLECTION}/points",
                params={"wait": "true"},
                json=make_batch(0).body(),
            )
        )
    for _ in range(2):
        quiver_process.kill()
        quiver_process.start()
    yield quiver_process


def test_repeated_restarts_keep_the_collection(restarted_twice: QuiverProcess) -> None:
    with httpx.Client(base_url=restarted_twice.url, timeout=30.0) as client:
        assert fetch_all(client) == make_batch(0).as_model()
        names = [c["name"] for c in _result(client.get("/collections"))["collections"]]
        assert names == [COLLECTION]


def test_sigterm_stops_the_server_cleanly_and_keeps_the_data(
    quiver_process: QuiverProcess,
) -> None:
    batch = make_batch(1)
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        create_dot_collection(client)
        points = f"/collections/{COLLECTION}/points"
        _result(client.put(points, params={"wait": "true"}, json=batch.body()))

    # uvicorn re-raises the SIGTERM after a graceful shutdown, so -15 is a clean exit too;
    # -9 would mean it ignored SIGTERM and had to be killed.
    assert quiver_process.stop() in (0, -signal.SIGTERM)
    assert "quiver stopped" in quiver_process.log_tail(), "the lifespan shutdown did not run"

    quiver_process.start()
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        assert fetch_all(client) == batch.as_model()
