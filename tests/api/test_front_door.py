"""Issue 18, finding 3: what a web page of another site can make the server do.

Bodies of a type their route does not take are refused with 415 before the route runs
(a page sends text/plain, forms and multipart cross-site without a preflight); CORS headers
only for configured origins; writes from foreign origins and requests naming a foreign
Host are refused.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from server.api.access import ROUTES, Body, documented_routes
from server.main import create_app
from server.settings import Settings
from tests.helpers.api import Api, create_items, make_client

POINTS = "/collections/items/points"
DELETE_ALL = {"filter": {"must": []}}
EVIL = "http://evil.example"


def count(api: Api) -> int:
    return int(api.result("POST", f"{POINTS}/count", {"exact": True})["count"])


def test_every_route_of_the_app_has_one_row_in_the_route_table(tmp_path: Path) -> None:
    app = create_app()
    served = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    served |= {("GET", p) for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")}
    served |= {("GET", "/dashboard"), ("GET", "/dashboard/{asset}")}  # not in the schema
    assert served == documented_routes()
    assert len(ROUTES) == len(served)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"],
)
def test_a_cross_site_body_type_deletes_nothing(
    api: Api, collection: str, content_type: str
) -> None:
    response = api.client.post(
        f"{POINTS}/delete", content=orjson.dumps(DELETE_ALL), headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["status"]["error"]
    assert response.json()["result"] is None
    assert count(api) == 10


def test_a_multipart_form_is_refused_on_a_json_route(api: Api, collection: str) -> None:
    response = api.client.post(f"{POINTS}/delete", files={"points": ("x", b"[1, 2]")})
    assert response.status_code == 415
    assert count(api) == 10


def test_a_body_without_a_type_is_refused(api: Api, collection: str) -> None:
    response = api.client.post(f"{POINTS}/delete", content=orjson.dumps(DELETE_ALL))
    assert response.status_code == 415
    assert count(api) == 10


def test_json_with_a_charset_is_read(api: Api, collection: str) -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    response = api.client.post(
        f"{POINTS}/delete?wait=true", content=orjson.dumps(DELETE_ALL), headers=headers
    )
    assert response.status_code == 200, response.text
    assert count(api) == 0


def test_an_empty_post_without_a_type_is_accepted(api: Api, collection: str) -> None:
    """qdrant-client creates a snapshot with an empty POST and no content type."""
    response = api.client.post("/collections/items/snapshots")
    assert response.status_code == 200, response.text


def test_an_empty_post_with_a_form_type_is_refused(api: Api, collection: str) -> None:
    headers = {"content-type": "text/plain"}
    response = api.client.post("/collections/items/snapshots", headers=headers)
    assert response.status_code == 415
    assert api.result("GET", "/collections/items/snapshots") == []


def test_the_upload_route_takes_only_multipart(api: Api, collection: str) -> None:
    for content_type in ("application/json", "text/plain", "application/x-ndjson"):
        response = api.client.post(
            "/collections/items/snapshots/upload",
            content=b"{}",
            headers={"content-type": content_type},
        )
        assert response.status_code == 415, content_type
    assert count(api) == 10


def test_the_bulk_route_takes_only_its_stream_types(api: Api, collection: str) -> None:
    line = b'{"id": 99, "vector": [1, 2, 3, 4]}\n'
    for content_type in ("application/json", "text/plain", "multipart/form-data; boundary=x"):
        response = api.client.post(
            f"{POINTS}/bulk", content=line, headers={"content-type": content_type}
        )
        assert response.status_code == 415, content_type
    assert count(api) == 10
    response = api.client.post(
        f"{POINTS}/bulk", content=line, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert count(api) == 11


def test_ndjson_is_refused_on_a_json_route(api: Api, collection: str) -> None:
    headers = {"content-type": "application/x-ndjson"}
    response = api.client.put(POINTS, content=b'{"points": []}', headers=headers)
    assert response.status_code == 415


def test_the_route_table_knows_the_streaming_routes() -> None:
    assert ROUTES[("POST", "/collections/{name}/points/bulk")].body is Body.BULK
    assert ROUTES[("POST", "/collections/{name}/snapshots/upload")].body is Body.MULTIPART


# -- CORS and origins ---------------------------------------------------------------------


def test_without_cors_origins_no_cors_header_is_sent(api: Api, collection: str) -> None:
    response = api.client.get("/collections", headers={"origin": EVIL})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    preflight = api.client.options(
        f"{POINTS}/delete",
        headers={"origin": EVIL, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_write_from_a_foreign_origin_is_refused(api: Api, collection: str) -> None:
    """A page may POST with no body and no preflight; the Origin header gives it away."""
    response = api.client.post("/collections/items/snapshots", headers={"origin": EVIL})
    assert response.status_code == 403
    assert api.result("GET", "/collections/items/snapshots") == []
    response = api.client.delete("/collections/items", headers={"origin": "null"})
    assert response.status_code == 403
    assert count(api) == 10


def test_a_write_from_the_servers_own_origin_is_served(api: Api, collection: str) -> None:
    headers = {"origin": "http://testserver"}
    response = api.client.post("/collections/items/snapshots", headers=headers)
    assert response.status_code == 200, response.text


def test_configured_cors_origins_get_preflight_answers(tmp_path: Path) -> None:
    app = "https://app.example"
    with make_client(tmp_path, cors_origins=(app,)) as client:
        api = Api(client)
        create_items(api)
        asked = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,api-key",
        }
        preflight = client.options(f"{POINTS}/delete", headers={"origin": app} | asked)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == app
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "api-key" in preflight.headers["access-control-allow-headers"].lower()
        foreign = client.options(f"{POINTS}/delete", headers={"origin": EVIL} | asked)
        assert foreign.status_code == 400
        assert "access-control-allow-origin" not in foreign.headers
        response = client.post(
            f"{POINTS}/delete?wait=true", json=DELETE_ALL, headers={"origin": app}
        )
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == app
        assert client.post(f"{POINTS}/count", json={}, headers={"origin": EVIL}).status_code == 403


# -- Host allow-list ----------------------------------------------------------------------


@pytest.fixture
def host_client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path, allowed_hosts=("localhost", "*.quiver.internal"))
    return TestClient(create_app(settings), base_url="http://localhost:6333")


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "quiver.internal"])
def test_a_foreign_host_is_refused_before_any_route(host_client: TestClient, host: str) -> None:
    with host_client as client:
        for path in ("/healthz", "/collections"):
            response = client.get(path, headers={"host": host})
            assert response.status_code == 421, (host, path)
            assert response.json()["status"]["error"].startswith("Misdirected")
        response = client.put(
            "/collections/x",
            json={"vectors": {"size": 2, "distance": "Dot"}},
            headers={"host": host},
        )
        assert response.status_code == 421
        assert client.get("/collections/x/exists").json()["result"] == {"exists": False}


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:6333", "LOCALHOST", "a.quiver.internal:80"]
)
def test_a_listed_host_is_served(host_client: TestClient, host: str) -> None:
    with host_client as client:
        assert client.get("/collections", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "settings",
    [{"tls_cert": "cert.pem"}, {"tls_key": "key.pem"}, {"tls_ca_cert": "ca.pem"}],
)
def test_incomplete_tls_settings_are_refused(settings: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="TLS"):
        Settings(**settings)  # type: ignore[arg-type]
