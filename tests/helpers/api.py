"""The in-process app as tests talk to it: request -> (status, json), and the few
requests almost every API test repeats."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from server.main import create_app
from server.settings import Settings
from tests.helpers.qdrant_rest import check_response


class Api:
    """A thin wrapper that returns (status, json) so tests read as request -> answer."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        response = self.client.request(method, path, json=body, **kwargs)
        return response.status_code, response.json()

    def put(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call("PUT", path, body)

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call("POST", path, body)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def result(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert status == 200, answer
        return answer["result"]


def make_client(data_dir: Path, **settings: Any) -> TestClient:
    """The real app over ``data_dir``; enter it (``with``) to run its lifespan. Every
    JSON answer of a Qdrant route is checked against qdrant-client's model for it
    (``helpers/qdrant_rest.py``), so each API test also tests the wire shapes."""
    client = TestClient(create_app(Settings(data_dir=data_dir, **settings)))
    client.event_hooks["response"].append(check_response)
    return client


def create_items(api: Api, **options: Any) -> str:
    """A 4-d Dot collection ``items`` (created with ``options``, e.g. ``shard_number``)
    holding ten points whose payloads cover common shapes."""
    body = {"vectors": {"size": 4, "distance": "Dot"}} | options
    api.result("PUT", "/collections/items", body)
    points = [
        {
            "id": i,
            "vector": [float(i), 1.0, 0.0, -1.0],
            "payload": {"n": i, "city": "Berlin" if i % 2 else "London", "tags": [f"t{i % 3}"]},
        }
        for i in range(1, 11)
    ]
    api.result("PUT", "/collections/items/points?wait=true", {"points": points})
    return "items"


def wait_green(api: Api, name: str, timeout: float = 60.0) -> dict[str, Any]:
    """The collection's info once the build worker has nothing queued or running for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: dict[str, Any] = api.result("GET", f"/collections/{name}")
        if info["status"] == "green":
            return info
        time.sleep(0.05)
    raise AssertionError(f"collection {name} not green after {timeout}s: {info}")


def upsert_vectors(
    api: Api,
    name: str,
    vectors: np.ndarray,
    start: int = 0,
    *,
    batch: int = 1000,
    payload: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    """Points ``start, start + 1, ...`` in requests of ``batch`` points; the request size
    matters to a test that counts on one request being sealed whole."""
    points = [{"id": start + i, "vector": v.tolist()} for i, v in enumerate(vectors)]
    if payload is not None:
        for point in points:
            point["payload"] = payload(point["id"])
    for first in range(0, len(points), batch):
        body = {"points": points[first : first + batch]}
        api.result("PUT", f"/collections/{name}/points?wait=true", body)


def search_ids(api: Api, name: str, query: np.ndarray, limit: int = 10, **extra: Any) -> list[int]:
    """The ids a plain vector query answers, best first."""
    body = {"query": query.tolist(), "limit": limit} | extra
    return [
        p["id"] for p in api.result("POST", f"/collections/{name}/points/query", body)["points"]
    ]


def sealed_segments(api: Api, name: str) -> list[dict[str, Any]]:
    return [s for s in api.result("GET", f"/collections/{name}/segments") if s["kind"] == "sealed"]
