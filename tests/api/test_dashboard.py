"""The dashboard's server side (issue 22): the static shell is open and locked down by
its headers, its files cannot be left, and the two data routes it added (the PCA map and
the jobs of every collection) answer only with credentials and only about collections
the caller may see."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest

from server.dashboard.projection import pca_2d
from tests.helpers.api import Api, create_items, make_client, wait_green

KEY = "dashboard-key-0123456789-0123456789-0123456789"


@pytest.fixture
def locked(tmp_path: Path) -> Any:
    with make_client(tmp_path, api_key=KEY, jwt_rbac=True) as client:
        yield Api(client)


def test_the_shell_is_served_without_a_key_with_a_strict_policy(locked: Api) -> None:
    response = locked.client.get("/dashboard/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    module = locked.client.get("/dashboard/js/api.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")


def test_the_bare_path_redirects_to_the_folder(locked: Api) -> None:
    response = locked.client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/dashboard/"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/missing.js",
        "/dashboard/js",
        "/dashboard/%2e%2e/assets.py",
        "/dashboard/..%2fdata.py",
    ],
)
def test_nothing_outside_the_static_files_is_served(locked: Api, path: str) -> None:
    response = locked.client.get(path, headers={"api-key": KEY})
    assert response.status_code == 404
    assert response.json()["status"]["error"].startswith("Not found")


def test_every_data_route_needs_the_key(locked: Api) -> None:
    assert locked.client.get("/jobs").status_code == 401
    assert locked.client.get("/collections/items/quiver/map").status_code == 401
    assert locked.client.get("/collections").status_code == 401


def test_the_map_projects_a_sample_and_carries_the_colour_field(api: Api) -> None:
    create_items(api)
    found = api.result("GET", "/collections/items/quiver/map?limit=5&color_by=city")
    assert found["sampled"] == 5
    assert found["complete"] is False
    assert [p["id"] for p in found["points"]] == [1, 2, 3, 4, 5]
    assert [p["color"] for p in found["points"]] == ["Berlin", "London"] * 2 + ["Berlin"]
    whole = api.result("GET", "/collections/items/quiver/map?limit=100")
    assert whole["sampled"] == 10 and whole["complete"] is True
    assert all(p["color"] is None for p in whole["points"])
    assert whole["explained"][0] == pytest.approx(1.0)  # the points lie on a line


def test_the_map_refuses_bad_input(api: Api) -> None:
    create_items(api)
    status, answer = api.get("/collections/items/quiver/map?using=nope")
    assert status == 400 and "no vector named 'nope'" in answer["status"]["error"]
    assert api.get("/collections/items/quiver/map?limit=5001")[0] == 422
    assert api.get("/collections/missing/quiver/map")[0] == 404
    api.result("PUT", "/collections/words", {"sparse_vectors": {"text": {}}})
    status, answer = api.get("/collections/words/quiver/map")
    assert status == 400 and "no dense vector" in answer["status"]["error"]
    status, answer = api.get("/collections/words/quiver/map?using=text")
    assert status == 400


def test_the_map_of_a_named_vector(api: Api) -> None:
    body = {
        "vectors": {"a": {"size": 3, "distance": "Cosine"}, "b": {"size": 2, "distance": "Dot"}}
    }
    api.result("PUT", "/collections/named", body)
    points = [{"id": i, "vector": {"a": [i, 1.0, -i], "b": [1.0, i * i]}} for i in range(1, 8)]
    api.result("PUT", "/collections/named/points?wait=true", {"points": points})
    default = api.result("GET", "/collections/named/quiver/map")
    chosen = api.result("GET", "/collections/named/quiver/map?using=b")
    assert default["sampled"] == chosen["sampled"] == 7
    assert default["points"] != chosen["points"]


def test_pca_finds_the_spread_directions() -> None:
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((2_000, 64)) * 0.01
    xb[:, 5] += rng.standard_normal(2_000) * 10
    xb[:, 9] += rng.standard_normal(2_000) * 3
    projection = pca_2d(xb)
    assert abs(np.corrcoef(projection.coords[:, 0], xb[:, 5])[0, 1]) > 0.999
    assert abs(np.corrcoef(projection.coords[:, 1], xb[:, 9])[0, 1]) > 0.999
    assert projection.explained[0] > projection.explained[1] > 0.05
    assert pca_2d(np.ones((4, 3))).explained == (0.0, 0.0)
    assert pca_2d(np.ones((1, 3))).coords.shape == (1, 2)


def _jobs_of_two_collections(api: Api) -> None:
    options = {"optimizers_config": {"indexing_threshold": 10}}
    for name in ("items", "other"):
        api.result(
            "PUT", f"/collections/{name}", {"vectors": {"size": 4, "distance": "Dot"}} | options
        )
        points = [{"id": i, "vector": [float(i), 1.0, 0.0, -1.0]} for i in range(1, 31)]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
        wait_green(api, name)


def test_jobs_of_every_collection_newest_finished_first(api: Api) -> None:
    _jobs_of_two_collections(api)
    page = api.result("GET", "/jobs")
    collections = {job["collection"] for job in page["jobs"]}
    assert collections == {"items", "other"}
    assert page["active"] == 0 and page["total"] == len(page["jobs"])
    finished = [job["finished"] for job in page["jobs"]]
    assert finished == sorted(finished, reverse=True)
    assert len(api.result("GET", "/jobs?limit=1")["jobs"]) == 1


def test_a_collection_scoped_token_sees_only_its_own_jobs(locked: Api) -> None:
    locked.client.headers["api-key"] = KEY
    _jobs_of_two_collections(locked)
    claims = {"exp": int(time.time()) + 60, "access": [{"collection": "other", "access": "r"}]}
    token = jwt.encode(claims, KEY, algorithm="HS256")
    del locked.client.headers["api-key"]
    response = locked.client.get("/jobs", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert {job["collection"] for job in response.json()["result"]["jobs"]} == {"other"}
