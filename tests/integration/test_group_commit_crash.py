"""Group commit under ``kill -9`` (docs/adr/0016-group-commit.md): several writers
share fsyncs, and every write the server acknowledged is there after the restart."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.helpers.process import QuiverProcess
from tests.helpers.process import result as _result

pytestmark = pytest.mark.integration

WRITERS = 6
IDS_PER_WRITER = 100_000
RUN_S = 1.5
COLLECTION = "grouped"


def _write_until_killed(url: str, number: int, acked: dict[int, int]) -> None:
    """Upsert then set the payload of this writer's own ids, recording each answer."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for i in range(IDS_PER_WRITER):
            pid = number * IDS_PER_WRITER + i
            body = {"points": [{"id": pid, "vector": [float(number), float(i)], "payload": {}}]}
            try:
                path = f"/collections/{COLLECTION}/points"
                if client.put(path, params={"wait": "true"}, json=body).status_code != 200:
                    return
                acked[pid] = -1
                payload = {"payload": {"n": i}, "points": [pid]}
                if client.post(f"{path}/payload", json=payload).status_code != 200:
                    return
                acked[pid] = i
            except httpx.HTTPError:
                return


def test_every_acknowledged_concurrent_write_survives_kill(quiver_process: QuiverProcess) -> None:
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        body = {"vectors": {"size": 2, "distance": "Dot"}}
        assert _result(client.put(f"/collections/{COLLECTION}", json=body)) is True
    logs: list[dict[int, int]] = [{} for _ in range(WRITERS)]
    threads = [
        threading.Thread(target=_write_until_killed, args=(quiver_process.url, n, logs[n]))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(RUN_S)
    quiver_process.kill()
    for thread in threads:
        thread.join()
    quiver_process.start()
    acked = {pid: n for log in logs for pid, n in log.items()}
    assert len(acked) > WRITERS  # the writers got going before the kill
    with httpx.Client(base_url=quiver_process.url, timeout=30.0) as client:
        body = {"ids": sorted(acked), "with_payload": True}
        found = _result(client.post(f"/collections/{COLLECTION}/points", json=body))
    payloads = {record["id"]: record["payload"] for record in found}
    assert set(acked) <= set(payloads)
    for pid, n in acked.items():
        assert n == -1 or payloads[pid] == {"n": n}
