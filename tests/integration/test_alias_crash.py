"""Alias switches under ``kill -9``: every acknowledged switch is there after a restart.

A writer flips the alias ``docs`` between two collections (and renames a second alias
back and forth) as fast as the server answers, while the test SIGKILLs the server at
seeded random moments. After each restart the aliases equal the last acknowledged
state, or the state the one request in flight would have made: never a mix of the
actions of one request, never an older state.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import pytest

from tests.helpers.process import QuiverProcess
from tests.helpers.process import result as _result

pytestmark = pytest.mark.integration

SEED = 17_003
ROUNDS = 3
VECTORS = {"size": 4, "distance": "Dot"}
Aliases = dict[str, str]


def switch(step: int) -> tuple[list[dict[str, Any]], Aliases]:
    """The actions of switch ``step`` and the aliases they leave."""
    target = "v1" if step % 2 else "v2"
    old, new = ("side_a", "side_b") if step % 2 else ("side_b", "side_a")
    actions = [
        {"delete_alias": {"alias_name": "docs"}},
        {"create_alias": {"collection_name": target, "alias_name": "docs"}},
        {"rename_alias": {"old_alias_name": old, "new_alias_name": new}},
    ]
    return actions, {"docs": target, new: "v1"}  # a rename keeps the alias's collection


def aliases(client: httpx.Client) -> Aliases:
    listed = _result(client.get("/aliases"))["aliases"]
    return {a["alias_name"]: a["collection_name"] for a in listed}


class Switcher(threading.Thread):
    """Switches until the server goes away; remembers the last acknowledged state."""

    def __init__(self, url: str, step: int, acked: Aliases) -> None:
        super().__init__(daemon=True)
        self.url, self.step, self.acked = url, step, acked
        self.in_flight: Aliases | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while True:
                actions, after = switch(self.step)
                self.in_flight = after
                try:
                    response = client.post("/collections/aliases", json={"actions": actions})
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                self.acked, self.in_flight = after, None
                self.step += 1


def test_acknowledged_alias_switches_survive_kill_9(quiver_process: QuiverProcess) -> None:
    timing = random.Random(SEED)
    with httpx.Client(base_url=quiver_process.url, timeout=10.0) as client:
        for name in ("v1", "v2"):
            _result(client.put(f"/collections/{name}", json={"vectors": VECTORS}))
        _, acked = switch(0)
        start = [
            {"create_alias": {"collection_name": target, "alias_name": alias}}
            for alias, target in acked.items()
        ]
        _result(client.post("/collections/aliases", json={"actions": start}))
    step, switches = 1, 0
    for _ in range(ROUNDS):
        writer = Switcher(quiver_process.url, step, acked)
        writer.start()
        time.sleep(timing.uniform(0.2, 1.0))
        quiver_process.kill()
        writer.join(timeout=15)
        switches += writer.step - step
        quiver_process.start()
        with httpx.Client(base_url=quiver_process.url, timeout=10.0) as client:
            found = aliases(client)
            assert found in (writer.acked, writer.in_flight), (found, writer.acked)
            _result(client.get("/collections/docs"))
        acked = found
        step = writer.step + (found == writer.in_flight)
    assert switches > 10 * ROUNDS, f"only {switches} switches: the test proved little"
