"""Every endpoint qdrant-client's generated REST API can call is served, or refused with a
Qdrant-shaped 4xx that names it; the refused ones are exactly README's list.

The endpoints come from qdrant-client itself (``tests/helpers/qdrant_rest.py``), so a new
client version with a new endpoint fails here until it is served or listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.api.access import match_route
from tests.helpers.api import Api, create_items
from tests.helpers.qdrant_rest import ENDPOINTS, LEGACY, Endpoint

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- refused-endpoints -->", "<!-- /refused-endpoints -->"
VALUES = {
    "collection_name": "items",
    "id": "1",
    "field_name": "n",
    "snapshot_name": "s.snapshot",
    "shard_id": "0",
    "vector_name": "v",
    "peer_id": "1",
}
"""A concrete value for each path parameter the client's paths use."""


def concrete(endpoint: Endpoint) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: VALUES[m.group(1)], endpoint.path)


def served(endpoint: Endpoint) -> bool:
    """Whether the app has a route for it (the route table holds exactly the app's
    routes: ``test_access_control``)."""
    return match_route(endpoint.method, concrete(endpoint)) is not None


def readme_refused() -> set[str]:
    text = README.read_text()
    section = text[text.index(START) + len(START) : text.index(END)]
    return set(re.findall(r"^- `([A-Z]+ [^`]+)`", section, flags=re.MULTILINE))


REFUSED = [e for e in ENDPOINTS + LEGACY if not served(e)]


def test_the_client_table_was_read() -> None:
    """The generated API holds Qdrant's endpoints (a broken read would pass trivially)."""
    assert len(ENDPOINTS) > 60
    assert ("POST", "/collections/{collection_name}/points/query") in {
        (e.method, e.path) for e in ENDPOINTS
    }


def test_the_refused_endpoints_are_the_ones_readme_lists() -> None:
    assert {f"{e.method} {e.path}" for e in REFUSED} == readme_refused()


@pytest.mark.parametrize("endpoint", REFUSED, ids=lambda e: f"{e.method} {e.path}")
def test_a_refused_endpoint_answers_a_qdrant_shaped_4xx_naming_it(
    api: Api, endpoint: Endpoint
) -> None:
    create_items(api)
    path = concrete(endpoint)
    body = {} if endpoint.method in ("POST", "PUT", "PATCH") else None
    status, answer = api.call(endpoint.method, path, body)
    assert 400 <= status < 500, (status, answer)
    assert answer["result"] is None and isinstance(answer["time"], float)
    assert f"{endpoint.method} {path}" in answer["status"]["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/route"),
        ("PUT", "/collections/items/points/1"),  # the path of GET .../points/{id}
        ("DELETE", "/collections/items/points"),  # the path of PUT / POST .../points
        ("POST", "/collections/items"),  # the path of PUT / GET / PATCH / DELETE
    ],
)
def test_an_unknown_route_is_a_json_404_even_when_its_path_has_other_methods(
    api: Api, method: str, path: str
) -> None:
    status, answer = api.call(method, path, {} if method in ("PUT", "POST") else None)
    assert status == 404
    assert answer["status"]["error"] == f"Not found: {method} {path}"
