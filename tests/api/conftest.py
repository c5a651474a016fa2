"""In-process API fixtures: the real app over a temporary data folder, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.main import create_app
from server.settings import Settings


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
    return TestClient(create_app(Settings(data_dir=data_dir, **settings)))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with make_client(tmp_path) as client:
        yield Api(client)


@pytest.fixture
def collection(api: Api) -> str:
    return create_items(api)


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
