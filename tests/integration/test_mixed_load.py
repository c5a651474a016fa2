"""32 clients of mixed reads and writes against a real server process for 60 s
(issue 18): no answer may be a 5xx, and every write the server acknowledged must be
there afterwards, exactly as the last acknowledged write left it, also after a kill -9.

Each client owns its own id range, so the expected state of every point is known
without ordering assumptions between clients: the oracle is the client's own log of
acknowledged writes. ``QUIVER_LOAD_SECONDS`` shortens the run for the inner loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.process import QuiverProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 32
DIM = 8
IDS_PER_CLIENT = 10_000
DURATION_S = float(os.environ.get("QUIVER_LOAD_SECONDS", "60"))
COLLECTION = "load"


@dataclass
class ClientLog:
    """What one client was told: the acknowledged state of its points, and every status."""

    points: dict[int, tuple[list[float], dict[str, Any]] | None] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _vector(rng: np.random.Generator) -> list[float]:
    return [float(x) for x in rng.normal(size=DIM).astype(np.float32)]


class MixedClient:
    """One client's loop: writes to its own ids, reads over everything."""

    def __init__(self, url: str, number: int, stop_at: float) -> None:
        self.http = httpx.Client(base_url=url, timeout=30.0)
        self.number = number
        self.rng = np.random.default_rng(number)
        self.stop_at = stop_at
        self.log = ClientLog()
        self.next_id = number * IDS_PER_CLIENT

    def run(self) -> None:
        writes = [self.upsert, self.upsert, self.set_payload, self.delete]
        reads = [self.search, self.search, self.batch_query, self.scroll, self.count, self.retrieve]
        actions = writes + reads
        try:
            while time.monotonic() < self.stop_at:
                actions[int(self.rng.integers(len(actions)))]()
        except httpx.TransportError as exc:  # a dropped connection is a failure too
            self.log.errors.append(f"client {self.number}: {exc!r}")
        finally:
            self.http.close()

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self.http.request(method, f"/collections/{COLLECTION}{path}", json=body)
        self.log.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.log.errors.append(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def own_ids(self, count: int) -> list[int]:
        known = list(self.log.points)
        if not known:
            return []
        picks = self.rng.choice(len(known), size=min(count, len(known)), replace=False)
        return [known[int(i)] for i in picks]

    def upsert(self) -> None:
        count = int(self.rng.integers(1, 20))
        fresh = [self.next_id + i for i in range(count // 2)]
        self.next_id += len(fresh)
        ids = fresh + self.own_ids(count - len(fresh))
        batch = {
            pid: (_vector(self.rng), {"client": self.number, "n": int(self.rng.integers(1000))})
            for pid in ids
        }
        body = {"points": [{"id": pid, "vector": v, "payload": p} for pid, (v, p) in batch.items()]}
        if self.call("PUT", "/points?wait=true", body).status_code == 200:
            self.log.points.update(batch)

    def set_payload(self) -> None:
        ids = [pid for pid in self.own_ids(5) if self.log.points.get(pid) is not None]
        if not ids:
            return
        extra = {"tag": f"t{int(self.rng.integers(100))}"}
        body = {"payload": extra, "points": ids}
        if self.call("POST", "/points/payload?wait=true", body).status_code == 200:
            for pid in ids:
                vector, payload = self.log.points[pid]  # type: ignore[misc]
                self.log.points[pid] = (vector, payload | extra)

    def delete(self) -> None:
        ids = self.own_ids(3)
        if not ids:
            return
        if self.call("POST", "/points/delete?wait=true", {"points": ids}).status_code == 200:
            self.log.points.update(dict.fromkeys(ids))

    def search(self) -> None:
        body: dict[str, Any] = {"query": _vector(self.rng), "limit": 10, "with_payload": True}
        if self.rng.random() < 0.5:
            body["filter"] = {"must": [{"key": "client", "match": {"value": self.number}}]}
        self.call("POST", "/points/query", body)

    def batch_query(self) -> None:
        searches = [{"query": _vector(self.rng), "limit": 5} for _ in range(8)]
        self.call("POST", "/points/query/batch", {"searches": searches})

    def scroll(self) -> None:
        self.call("POST", "/points/scroll", {"limit": 50, "with_payload": True})

    def count(self) -> None:
        self.call("POST", "/points/count", {"exact": True})

    def retrieve(self) -> None:
        ids = self.own_ids(10)
        if ids:
            self.call("POST", "/points", {"ids": ids, "with_payload": True})


def _server_points(url: str) -> dict[int, tuple[list[float], dict[str, Any]]]:
    found: dict[int, tuple[list[float], dict[str, Any]]] = {}
    offset: Any = None
    with httpx.Client(base_url=url, timeout=60.0) as http:
        while True:
            body = {"limit": 5000, "with_payload": True, "with_vector": True, "offset": offset}
            response = http.post(f"/collections/{COLLECTION}/points/scroll", json=body)
            assert response.status_code == 200, response.text
            page = response.json()["result"]
            found.update({p["id"]: (p["vector"], p["payload"]) for p in page["points"]})
            offset = page["next_page_offset"]
            if offset is None:
                return found


def _assert_acknowledged_writes_present(url: str, logs: list[ClientLog]) -> int:
    stored = _server_points(url)
    expected = {pid: state for log in logs for pid, state in log.points.items()}
    live = {pid: state for pid, state in expected.items() if state is not None}
    assert set(stored) == set(live)
    for pid, (vector, payload) in live.items():
        assert stored[pid][1] == payload, pid
        assert np.allclose(stored[pid][0], vector, atol=1e-6), pid
    return len(live)


def test_32_clients_of_mixed_load_get_no_5xx_and_lose_no_acknowledged_write(
    quiver_process: QuiverProcess,
) -> None:
    url = quiver_process.url
    config = {
        "vectors": {"size": DIM, "distance": "Euclid"},
        # small segments so sealing, building and merging run under the load
        "optimizers_config": {"indexing_threshold": 2000},
    }
    assert httpx.put(f"{url}/collections/{COLLECTION}", json=config).status_code == 200
    stop_at = time.monotonic() + DURATION_S
    clients = [MixedClient(url, n, stop_at) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + 120)
    assert not any(t.is_alive() for t in threads)
    logs = [c.log for c in clients]
    statuses = sum((log.statuses for log in logs), Counter())
    assert [e for log in logs for e in log.errors] == []
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[200] > 20 * CLIENTS, statuses  # the clients really ran

    before_kill = _assert_acknowledged_writes_present(url, logs)
    assert before_kill > 0
    url = quiver_process.restart_after_kill()
    assert _assert_acknowledged_writes_present(url, logs) == before_kill
