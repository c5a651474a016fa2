"""Schemathesis over Quiver's own OpenAPI document (issue 18): every operation, fed
requests generated from its declared shapes, must never answer a 5xx.

Each generated case runs twice against one in-process app: once with the collection
name it was generated with (mostly unknown names: the 404 paths), and once aimed at a
real collection holding points and an index (the paths that reach the engine). The
collection is made again whenever a case deleted or replaced it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.main import create_app
from server.settings import Settings

pytestmark = pytest.mark.slow

TARGET = "fuzz"
EXAMPLES = 25
BASE_URL = "http://testserver"


def _operations() -> dict[str, Any]:
    """Every operation of the OpenAPI document the app serves (built without starting it)."""
    with TemporaryDirectory() as folder:
        document = create_app(Settings(data_dir=Path(folder))).openapi()
    schema = schemathesis.openapi.from_dict(document)
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    application: FastAPI = create_app(
        Settings(data_dir=tmp_path_factory.mktemp("fuzz"), idle_seal_s=0)
    )
    with TestClient(application, base_url=BASE_URL) as test_client:
        yield test_client


def ensure_target(client: TestClient) -> None:
    """The collection the aimed cases hit: 4-d, ten points with payloads, an index."""
    if client.get(f"/collections/{TARGET}/exists").json()["result"]["exists"]:
        return
    client.put(f"/collections/{TARGET}", json={"vectors": {"size": 4, "distance": "Dot"}})
    points = [
        {"id": i, "vector": [float(i), 1.0, 0.0, -1.0], "payload": {"n": i, "tag": f"t{i % 3}"}}
        for i in range(10)
    ]
    client.put(f"/collections/{TARGET}/points?wait=true", json={"points": points})
    index = {"field_name": "tag", "field_schema": "keyword"}
    client.put(f"/collections/{TARGET}/index?wait=true", json=index)


def check_call(client: TestClient, case: Any) -> None:
    request = case.as_transport_kwargs(base_url=BASE_URL)
    request.pop("cookies", None)  # no route reads cookies; per-request cookies are deprecated
    response = client.request(**request)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_request_gets_a_server_error(client: TestClient, label: str) -> None:
    operation = OPERATIONS[label]

    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        check_call(client, case)
        if "name" in (case.path_parameters or {}):
            ensure_target(client)
            case.path_parameters["name"] = TARGET
            check_call(client, case)

    run()
