"""Vector updates under ``kill -9``: every acknowledged ``update_vectors``,
``delete_vectors`` and batch is present after a restart, and the request left in
flight is all-or-nothing (issue 17). The points live in sealed segments too (a low
``indexing_threshold``), so a change is a tombstone there plus a new row."""

from __future__ import annotations

import random
import threading
from functools import partial
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.data import wire_float32
from tests.helpers.process import QuiverProcess
from tests.helpers.process import result as _result
from tests.integration.test_crash_recovery import WriterLog, kill_while_writing, run_writer

pytestmark = pytest.mark.integration

SEED = 1_717
DIM = 8
POINTS = 300
ROUNDS = 2
NAMES = ("a", "b")
C = "/collections/vcrash"

Model = dict[int, dict[str, tuple[float, ...]]]
"""Each point's vectors by name (a point may hold none)."""


def vector(rng: np.random.Generator) -> tuple[float, ...]:
    """float32-representable values (Dot: stored as sent), so they compare exactly."""
    return tuple(float(x) for x in rng.normal(size=DIM).astype(np.float32))


class Updates:
    """Request ``n`` and its effect on the model, derived from the seed and ``n`` alone."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._next = 0
        self._lock = threading.Lock()

    def next_request(self) -> tuple[str, str, dict[str, Any], Any]:
        with self._lock:
            number, self._next = self._next, self._next + 1
        rng = np.random.default_rng([SEED, number])
        ids = sorted(int(i) for i in rng.choice(POINTS, size=5, replace=False))
        sets = {i: {n: vector(rng) for n in NAMES if rng.random() < 0.6} or {"a": vector(rng)}
                for i in ids}  # fmt: skip
        dropped = [str(rng.choice(NAMES))]
        update = {"points": [{"id": i, "vector": {n: list(v) for n, v in s.items()}}
                             for i, s in sets.items()]}  # fmt: skip
        delete = {"points": ids[:2], "vector": dropped}
        kind = number % 3
        if kind == 0:
            request = ("PUT", f"{C}/points/vectors", update)
        elif kind == 1:
            request = ("POST", f"{C}/points/vectors/delete", delete)
        else:
            operations = [{"update_vectors": update}, {"delete_vectors": delete}]
            request = ("POST", f"{C}/points/batch", {"operations": operations})
        steps = [(sets, [], []), ((), ids[:2], dropped), [(sets, [], []), ({}, ids[:2], dropped)]]
        chosen = steps[kind] if kind == 2 else [steps[kind]]
        return request[0], request[1], request[2], chosen

    @staticmethod
    def applied(model: Model, steps: Any) -> Model:
        """``model`` after each step (one per operation of the request)."""
        out = {i: dict(v) for i, v in model.items()}
        for sets, dropped_ids, dropped in steps:
            for i, named in dict(sets).items():
                out[i] |= named
            for i in dropped_ids:
                for name in dropped:
                    out[i].pop(name, None)
        return out

    def on_ack(self, steps: Any) -> None:
        self.model = self.applied(self.model, steps)


def fetch(client: httpx.Client) -> Model:
    body = {"limit": POINTS + 10, "with_payload": False, "with_vector": True}
    page = _result(client.post(f"{C}/points/scroll", json=body))
    return {r["id"]: {n: wire_float32(v) for n, v in r["vector"].items()} for r in page["points"]}


def initial(client: httpx.Client) -> Model:
    config = {name: {"size": DIM, "distance": "Dot"} for name in NAMES}
    optimizers = {"indexing_threshold": 64, "default_segment_number": 2}
    body = {"vectors": config, "optimizers_config": optimizers}
    assert _result(client.put(C, json=body)) is True
    rng = np.random.default_rng(SEED)
    model: Model = {i: {n: vector(rng) for n in NAMES} for i in range(POINTS)}
    points = [{"id": i, "vector": {n: list(v) for n, v in vs.items()}} for i, vs in model.items()]
    _result(client.put(f"{C}/points", params={"wait": "true"}, json={"points": points}))
    return model


def test_acknowledged_vector_updates_survive_kill_9(quiver_process: QuiverProcess) -> None:
    timing = random.Random(SEED)
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        updates = Updates(initial(client))
    acked = 0
    for _ in range(ROUNDS):
        log = WriterLog()
        writer = partial(run_writer, quiver_process.url, updates.next_request, updates.on_ack, log)
        kill_while_writing(quiver_process, timing.uniform(0.3, 1.2), [writer])
        assert log.errors == [], log.errors
        acked += len(log.acked)
        quiver_process.start()
        with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
            found = fetch(client)
        if log.in_flight is not None:
            # a batch's operations are separate writes (Qdrant's semantics): the one in
            # flight may have applied any prefix of them, each of them whole
            steps = log.in_flight
            prefixes = [updates.applied(updates.model, steps[:n]) for n in range(len(steps) + 1)]
            assert found in prefixes
            updates.model = found
        assert found == updates.model
    assert acked >= ROUNDS, "too few updates acknowledged for the test to mean much"
