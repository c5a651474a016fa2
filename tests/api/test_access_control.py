"""Access control (issue 18): read-only key, JWT RBAC, and the matrix of credentials x routes.

The expected answers are written here from Qdrant's table of access, independently of
``server/api/access.py``: each sample request names the class of its route, and a small
function says which credentials may run which class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from pydantic import ValidationError

from server.api.access import ROUTES, match_route
from server.settings import Settings
from tests.helpers.api import Api, create_items, make_client

KEY = "full-key-" + "0123456789" * 6
RO_KEY = "read-only-key-0123456789-0123456789"
ITEMS = "/collections/items"


def token(access: Any = None, *, exp: float | None = None, key: str = KEY) -> str:
    claims: dict[str, Any] = {"exp": int(exp if exp is not None else time.time() + 3600)}
    if access is not None:
        claims["access"] = access
    return jwt.encode(claims, key, algorithm="HS256")


def scoped(mode: str) -> list[dict[str, str]]:
    """A per-collection claim over the two collections the samples touch."""
    return [{"collection": name, "access": mode} for name in ("items", "lv")]


CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "read-only key": {"api-key": RO_KEY},
    "full key": {"api-key": KEY},
    "jwt r": {"authorization": f"Bearer {token('r')}"},
    "jwt m": {"authorization": f"Bearer {token('m')}"},
    "jwt items r": {"authorization": f"Bearer {token(scoped('r'))}"},
    "jwt items rw": {"authorization": f"Bearer {token(scoped('rw'))}"},
    "jwt expired": {"authorization": f"Bearer {token('m', exp=time.time() - 60)}"},
    "jwt bad signature": {
        "authorization": f"Bearer {token('m', key='not-the-key-0123456789-0123456789-0123')}"
    },
}

ALLOWED: dict[str, set[str]] = {
    "open": set(CREDENTIALS),
    "any": {"read-only key", "full key", "jwt r", "jwt m", "jwt items r", "jwt items rw"},
    "read": {"read-only key", "full key", "jwt r", "jwt m", "jwt items r", "jwt items rw"},
    "global read": {"read-only key", "full key", "jwt r", "jwt m"},
    "write": {"full key", "jwt m", "jwt items rw"},
    "manage": {"full key", "jwt m"},
}
VALID = ALLOWED["any"]


def expected(credential: str, kind: str) -> int:
    """2 (any 2xx), 401 or 403."""
    if credential in ALLOWED[kind]:
        return 2
    return 403 if credential in VALID else 401


@dataclass
class World:
    """Names a sample request needs, refreshed before each (full key)."""

    api: Api
    snapshot: str = ""
    snapshot_bytes: bytes = field(default=b"", repr=False)
    shard_snapshot: str = ""
    full_snapshot: str = ""
    job: str = ""
    changed: bool = True  # whether the last sample may have changed what refresh() restores


@dataclass
class Sample:
    kind: str
    method: str
    path: str
    json: Any = None
    extra: Callable[[World], dict[str, Any]] = field(default=lambda world: {})


VECTOR = [1.0, 1.0, 0.0, -1.0]
POINT = {"id": 99, "vector": VECTOR, "payload": {"n": 99}}
SAMPLES: dict[tuple[str, str], Sample] = {
    ("GET", "/"): Sample("any", "GET", "/"),
    ("GET", "/healthz"): Sample("open", "GET", "/healthz"),
    ("GET", "/livez"): Sample("open", "GET", "/livez"),
    ("GET", "/readyz"): Sample("open", "GET", "/readyz"),
    ("GET", "/metrics"): Sample("global read", "GET", "/metrics"),
    ("GET", "/openapi.json"): Sample("any", "GET", "/openapi.json"),
    ("GET", "/docs"): Sample("any", "GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"): Sample("any", "GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"): Sample("any", "GET", "/redoc"),
    ("GET", "/collections"): Sample("any", "GET", "/collections"),
    ("GET", "/collections/{name}"): Sample("read", "GET", ITEMS),
    ("GET", "/collections/{name}/exists"): Sample("read", "GET", f"{ITEMS}/exists"),
    ("PUT", "/collections/{name}"): Sample(
        "manage", "PUT", "/collections/fresh", {"vectors": {"size": 4, "distance": "Dot"}}
    ),
    ("PATCH", "/collections/{name}"): Sample(
        "manage", "PATCH", ITEMS, {"optimizers_config": {"indexing_threshold": 20000}}
    ),
    ("DELETE", "/collections/{name}"): Sample("manage", "DELETE", ITEMS),
    ("PUT", "/collections/{name}/index"): Sample(
        "write", "PUT", f"{ITEMS}/index?wait=true", {"field_name": "n", "field_schema": "integer"}
    ),
    ("DELETE", "/collections/{name}/index/{field_name:path}"): Sample(
        "write", "DELETE", f"{ITEMS}/index/n?wait=true"
    ),
    ("POST", "/collections/aliases"): Sample(
        "manage",
        "POST",
        "/collections/aliases",
        {"actions": [{"create_alias": {"collection_name": "items", "alias_name": "docs"}}]},
    ),
    ("GET", "/aliases"): Sample("any", "GET", "/aliases"),
    ("GET", "/collections/{name}/aliases"): Sample("read", "GET", f"{ITEMS}/aliases"),
    ("PUT", "/collections/{name}/points"): Sample(
        "write", "PUT", f"{ITEMS}/points?wait=true", {"points": [POINT]}
    ),
    ("POST", "/collections/{name}/points"): Sample(
        "read", "POST", f"{ITEMS}/points", {"ids": [1, 2]}
    ),
    ("GET", "/collections/{name}/points/{point_id}"): Sample("read", "GET", f"{ITEMS}/points/1"),
    ("POST", "/collections/{name}/points/delete"): Sample(
        "write", "POST", f"{ITEMS}/points/delete?wait=true", {"points": [1]}
    ),
    ("POST", "/collections/{name}/points/payload"): Sample(
        "write", "POST", f"{ITEMS}/points/payload?wait=true", {"payload": {"a": 1}, "points": [2]}
    ),
    ("PUT", "/collections/{name}/points/payload"): Sample(
        "write", "PUT", f"{ITEMS}/points/payload?wait=true", {"payload": {"a": 1}, "points": [2]}
    ),
    ("POST", "/collections/{name}/points/payload/delete"): Sample(
        "write", "POST", f"{ITEMS}/points/payload/delete?wait=true", {"keys": ["n"], "points": [2]}
    ),
    ("POST", "/collections/{name}/points/payload/clear"): Sample(
        "write", "POST", f"{ITEMS}/points/payload/clear?wait=true", {"points": [3]}
    ),
    ("PUT", "/collections/{name}/points/vectors"): Sample(
        "write",
        "PUT",
        f"{ITEMS}/points/vectors?wait=true",
        {"points": [{"id": 5, "vector": VECTOR}]},
    ),
    ("POST", "/collections/{name}/points/vectors/delete"): Sample(
        "write", "POST", f"{ITEMS}/points/vectors/delete?wait=true", {"points": [6], "vector": [""]}
    ),
    ("POST", "/collections/{name}/points/batch"): Sample(
        "write",
        "POST",
        f"{ITEMS}/points/batch?wait=true",
        {"operations": [{"set_payload": {"payload": {"b": 1}, "points": [7]}}]},
    ),
    ("PUT", "/collections/{name}/vectors/{vector_name}"): Sample(
        "manage",
        "PUT",
        "/collections/other/vectors/extra",
        {"dense": {"size": 2, "distance": "Dot"}},
    ),
    ("DELETE", "/collections/{name}/vectors/{vector_name}"): Sample(
        "manage", "DELETE", "/collections/other/vectors/extra"
    ),
    ("POST", "/collections/{name}/points/scroll"): Sample(
        "read", "POST", f"{ITEMS}/points/scroll", {"limit": 2}
    ),
    ("POST", "/collections/{name}/points/count"): Sample(
        "read", "POST", f"{ITEMS}/points/count", {}
    ),
    ("POST", "/collections/{name}/points/bulk"): Sample(
        "write",
        "POST",
        f"{ITEMS}/points/bulk",
        extra=lambda world: {
            "content": orjson.dumps(POINT) + b"\n",
            "headers": {"content-type": "application/x-ndjson"},
        },
    ),
    ("POST", "/collections/{name}/points/query"): Sample(
        "read", "POST", f"{ITEMS}/points/query", {"query": VECTOR, "limit": 2}
    ),
    ("POST", "/collections/{name}/points/query/batch"): Sample(
        "read", "POST", f"{ITEMS}/points/query/batch", {"searches": [{"query": VECTOR}]}
    ),
    ("POST", "/collections/{name}/points/search"): Sample(
        "read", "POST", f"{ITEMS}/points/search", {"vector": VECTOR, "limit": 2}
    ),
    ("POST", "/collections/{name}/points/search/batch"): Sample(
        "read",
        "POST",
        f"{ITEMS}/points/search/batch",
        {"searches": [{"vector": VECTOR, "limit": 2}]},
    ),
    ("POST", "/collections/{name}/points/recommend"): Sample(
        "read", "POST", f"{ITEMS}/points/recommend", {"positive": [VECTOR], "limit": 2}
    ),
    ("POST", "/collections/{name}/points/recommend/batch"): Sample(
        "read",
        "POST",
        f"{ITEMS}/points/recommend/batch",
        {"searches": [{"positive": [VECTOR], "limit": 2}]},
    ),
    ("POST", "/collections/{name}/points/discover"): Sample(
        "read", "POST", f"{ITEMS}/points/discover", {"target": VECTOR, "limit": 2}
    ),
    ("POST", "/collections/{name}/points/discover/batch"): Sample(
        "read",
        "POST",
        f"{ITEMS}/points/discover/batch",
        {"searches": [{"target": VECTOR, "limit": 2}]},
    ),
    ("POST", "/collections/{name}/points/query/groups"): Sample(
        "read", "POST", f"{ITEMS}/points/query/groups", {"query": VECTOR, "group_by": "city"}
    ),
    ("POST", "/collections/{name}/points/search/groups"): Sample(
        "read",
        "POST",
        f"{ITEMS}/points/search/groups",
        {"vector": VECTOR, "group_by": "city", "group_size": 2, "limit": 2},
    ),
    ("POST", "/collections/{name}/points/recommend/groups"): Sample(
        "read",
        "POST",
        f"{ITEMS}/points/recommend/groups",
        {"positive": [VECTOR], "group_by": "city", "group_size": 2, "limit": 2},
    ),
    ("POST", "/collections/{name}/facet"): Sample(
        "read", "POST", f"{ITEMS}/facet", extra=lambda world: facet_body(world)
    ),
    ("POST", "/collections/{name}/points/search/matrix/pairs"): Sample(
        "read", "POST", f"{ITEMS}/points/search/matrix/pairs", {"sample": 5, "limit": 2}
    ),
    ("POST", "/collections/{name}/points/search/matrix/offsets"): Sample(
        "read", "POST", f"{ITEMS}/points/search/matrix/offsets", {"sample": 5, "limit": 2}
    ),
    ("GET", "/collections/{name}/jobs"): Sample("read", "GET", f"{ITEMS}/jobs"),
    ("GET", "/collections/{name}/segments"): Sample("read", "GET", f"{ITEMS}/segments"),
    ("GET", "/jobs/{job_id}"): Sample("global read", "GET", "/jobs/{job}"),
    ("POST", "/jobs/{job_id}/cancel"): Sample("manage", "POST", "/jobs/{job}/cancel"),
    ("GET", "/jobs"): Sample("any", "GET", "/jobs"),
    ("GET", "/dashboard"): Sample("open", "GET", "/dashboard"),
    ("GET", "/dashboard/{asset:path}"): Sample("open", "GET", "/dashboard/js/app.js"),
    ("GET", "/collections/{name}/quiver/map"): Sample("read", "GET", f"{ITEMS}/quiver/map?limit=5"),
    ("POST", "/collections/{name}/leanvec/training-queries"): Sample(
        "write", "POST", "/collections/lv/leanvec/training-queries", {"vectors": [VECTOR]}
    ),
    ("GET", "/collections/{name}/leanvec/training-queries"): Sample(
        "read", "GET", "/collections/lv/leanvec/training-queries"
    ),
    ("POST", "/collections/{name}/snapshots"): Sample("write", "POST", f"{ITEMS}/snapshots"),
    ("GET", "/collections/{name}/snapshots"): Sample("read", "GET", f"{ITEMS}/snapshots"),
    ("PUT", "/collections/{name}/snapshots/recover"): Sample(
        "manage",
        "PUT",
        f"{ITEMS}/snapshots/recover",
        extra=lambda world: {"json": {"location": world.snapshot}},
    ),
    ("POST", "/collections/{name}/snapshots/upload"): Sample(
        "manage",
        "POST",
        f"{ITEMS}/snapshots/upload",
        extra=lambda world: {"files": {"snapshot": ("s.snapshot", world.snapshot_bytes)}},
    ),
    ("GET", "/collections/{name}/snapshots/{snapshot_name}"): Sample(
        "read", "GET", f"{ITEMS}/snapshots/{{snapshot}}"
    ),
    ("DELETE", "/collections/{name}/snapshots/{snapshot_name}"): Sample(
        "write", "DELETE", f"{ITEMS}/snapshots/{{snapshot}}"
    ),
    # service and operations (server/api/routes/service.py)
    ("GET", "/telemetry"): Sample("any", "GET", "/telemetry"),
    ("GET", "/cluster"): Sample("global read", "GET", "/cluster"),
    ("GET", "/collections/{name}/cluster"): Sample("read", "GET", f"{ITEMS}/cluster"),
    ("POST", "/collections/{name}/cluster"): Sample(
        "manage", "POST", "/collections/replicated/cluster", extra=lambda w: drop_body(w)
    ),
    ("GET", "/collections/{name}/optimizations"): Sample("read", "GET", f"{ITEMS}/optimizations"),
    ("GET", "/issues"): Sample("any", "GET", "/issues"),
    ("DELETE", "/issues"): Sample("manage", "DELETE", "/issues"),
    # shard and full-storage snapshots
    ("POST", "/collections/{name}/shards/{shard_id}/snapshots"): Sample(
        "write", "POST", f"{ITEMS}/shards/0/snapshots"
    ),
    ("GET", "/collections/{name}/shards/{shard_id}/snapshots"): Sample(
        "read", "GET", f"{ITEMS}/shards/0/snapshots"
    ),
    ("PUT", "/collections/{name}/shards/{shard_id}/snapshots/recover"): Sample(
        "manage",
        "PUT",
        f"{ITEMS}/shards/0/snapshots/recover",
        extra=lambda world: {"json": {"location": world.shard_snapshot}},
    ),
    ("POST", "/collections/{name}/shards/{shard_id}/snapshots/upload"): Sample(
        "manage",
        "POST",
        f"{ITEMS}/shards/0/snapshots/upload",
        extra=lambda world: {"files": {"snapshot": ("s.snapshot", world.snapshot_bytes)}},
    ),
    ("GET", "/collections/{name}/shards/{shard_id}/snapshots/{snapshot_name}"): Sample(
        "read", "GET", f"{ITEMS}/shards/0/snapshots/{{shard_snapshot}}"
    ),
    ("DELETE", "/collections/{name}/shards/{shard_id}/snapshots/{snapshot_name}"): Sample(
        "write", "DELETE", f"{ITEMS}/shards/0/snapshots/{{shard_snapshot}}"
    ),
    ("GET", "/collections/{name}/shards/{shard_id}/snapshot"): Sample(
        "read", "GET", f"{ITEMS}/shards/0/snapshot"
    ),
    ("POST", "/snapshots"): Sample("manage", "POST", "/snapshots"),
    ("GET", "/snapshots"): Sample("global read", "GET", "/snapshots"),
    ("GET", "/snapshots/{snapshot_name}"): Sample(
        "global read", "GET", "/snapshots/{full_snapshot}"
    ),
    ("DELETE", "/snapshots/{snapshot_name}"): Sample(
        "manage", "DELETE", "/snapshots/{full_snapshot}"
    ),
}


class AdminApi(Api):
    """Set-up calls, always with the full key."""

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        kwargs["headers"] = kwargs.get("headers", {}) | {"api-key": KEY}
        return super().call(method, path, body, **kwargs)


def refresh(world: World) -> None:
    """Put back what an earlier sample changed: ``items`` and one snapshot of it exist,
    ``fresh`` (created by a sample) does not."""
    api = world.api
    if api.result("GET", "/collections/fresh/exists")["exists"]:
        api.result("DELETE", "/collections/fresh")
    if not api.result("GET", f"{ITEMS}/exists")["exists"]:
        create_items(api)
    snapshots = api.result("GET", f"{ITEMS}/snapshots")
    if not snapshots:
        snapshots = [api.result("POST", f"{ITEMS}/snapshots")]
    if world.snapshot != snapshots[0]["name"]:
        world.snapshot = snapshots[0]["name"]
        response = api.client.get(f"{ITEMS}/snapshots/{world.snapshot}", headers={"api-key": KEY})
        world.snapshot_bytes = response.content
    shard = api.result("GET", f"{ITEMS}/shards/0/snapshots") or [
        api.result("POST", f"{ITEMS}/shards/0/snapshots")
    ]
    world.shard_snapshot = shard[0]["name"]
    full = api.result("GET", "/snapshots") or [api.result("POST", "/snapshots")]
    world.full_snapshot = full[0]["name"]


def facet_body(world: World) -> dict[str, Any]:
    """A facet over ``city``, indexed first (samples may have dropped the collection)."""
    index = {"field_name": "city", "field_schema": "keyword"}
    world.api.result("PUT", f"{ITEMS}/index?wait=true", index)
    return {"json": {"key": "city"}}


def drop_body(world: World) -> dict[str, Any]:
    """A fresh two-replica collection and a ``drop_replica`` of one of its replicas."""
    api = world.api
    if api.result("GET", "/collections/replicated/exists")["exists"]:
        api.result("DELETE", "/collections/replicated")
    body = {"vectors": {"size": 4, "distance": "Dot"}, "replication_factor": 2}
    api.result("PUT", "/collections/replicated", body)
    peer = api.result("GET", "/collections/replicated/cluster")["remote_shards"][0]["peer_id"]
    return {"json": {"drop_replica": {"shard_id": 0, "peer_id": peer}}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = {"api_key": KEY, "read_only_api_key": RO_KEY, "jwt_rbac": True}
    with make_client(tmp_path_factory.mktemp("acl"), **settings) as client:
        api = AdminApi(client)
        create_items(api)
        api.result("PUT", "/collections/other", {"vectors": {"size": 4, "distance": "Dot"}})
        leanvec = {"type": "leanvec", "variant": "ood"}
        vectors = {"size": 4, "distance": "Dot"}
        api.result("PUT", "/collections/lv", {"vectors": vectors, "index": leanvec})
        yield World(api, job=wait_for_a_job(api))


def wait_for_a_job(api: Api) -> str:
    """A build job of a collection of its own (``jobs``), for the job routes."""
    api.result(
        "PUT",
        "/collections/jobs",
        {"vectors": {"size": 4, "distance": "Dot"}, "optimizers_config": {"indexing_threshold": 1}},
    )
    points = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(1, 20)]
    api.result("PUT", "/collections/jobs/points?wait=true", {"points": points})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = api.result("GET", "/collections/jobs/jobs")
        if jobs:
            return str(jobs[0]["id"])
        time.sleep(0.05)
    raise AssertionError("no build job appeared")


def run(world: World, sample: Sample, credential: str) -> int:
    if world.changed:
        refresh(world)
    path = sample.path.format(
        snapshot=world.snapshot,
        job=world.job,
        shard_snapshot=world.shard_snapshot,
        full_snapshot=world.full_snapshot,
    )
    kwargs: dict[str, Any] = {"json": sample.json} if sample.json is not None else {}
    kwargs |= sample.extra(world)
    headers = kwargs.pop("headers", {}) | CREDENTIALS[credential]
    response = world.api.client.request(sample.method, path, headers=headers, **kwargs)
    # a read, or a request the front door turned away, leaves the world as it was (another
    # sample's extra() may add to it, never remove what refresh() restores)
    rejected = response.status_code in (401, 403)
    world.changed = sample.method not in ("GET", "HEAD") and not rejected
    return 2 if 200 <= response.status_code < 300 else response.status_code


def test_every_route_has_a_sample() -> None:
    assert set(SAMPLES) == set(ROUTES)


def test_the_front_door_matches_each_sample_to_its_own_route() -> None:
    """The table is matched before routing: each concrete path must find its own row."""
    for (method, template), sample in SAMPLES.items():
        names = {"shard_snapshot": "s.snapshot", "full_snapshot": "f.snapshot"}
        path = sample.path.format(snapshot="s.snapshot", job="j1", **names).split("?")[0]
        found = match_route(method, path)
        assert found is not None and found.template == template, (method, path)


def test_the_access_matrix_of_every_route_and_credential(world: World) -> None:
    """Credentials x every route of the app: 2xx, 401 or 403, as Qdrant's table says."""
    wanted = {
        (route, credential): expected(credential, sample.kind)
        for route, sample in SAMPLES.items()
        for credential in CREDENTIALS
    }
    seen = {
        (route, credential): run(world, sample, credential)
        for route, sample in SAMPLES.items()
        for credential in CREDENTIALS
    }
    wrong = {key: (wanted[key], seen[key]) for key in wanted if wanted[key] != seen[key]}
    assert wrong == {}, "(route, credential): (expected, got)"


# -- single behaviours --------------------------------------------------------------------


def test_a_collection_token_reaches_no_other_collection(world: World) -> None:
    headers = CREDENTIALS["jwt items rw"]
    response = world.api.client.post("/collections/other/points/count", json={}, headers=headers)
    assert response.status_code == 403
    assert response.json()["status"]["error"] == (
        "Forbidden: Access to collection other is required"
    )
    assert response.json()["result"] is None


def test_a_group_lookup_reads_only_a_collection_the_token_reaches(world: World) -> None:
    """``with_lookup`` reads a second collection, which the front door never saw."""
    body = {"query": VECTOR, "group_by": "city", "with_lookup": "other"}
    path = f"{ITEMS}/points/query/groups"
    scoped_read = CREDENTIALS["jwt items r"]
    response = world.api.client.post(path, json=body, headers=scoped_read)
    assert response.status_code == 403
    assert response.json()["status"]["error"] == (
        "Forbidden: Access to collection other is required"
    )
    response = world.api.client.post(path, json=body, headers=CREDENTIALS["jwt r"])
    assert response.status_code == 200


def test_listing_collections_shows_a_collection_token_only_its_own(world: World) -> None:
    def names(credential: str) -> set[str]:
        response = world.api.client.get("/collections", headers=CREDENTIALS[credential])
        return {c["name"] for c in response.json()["result"]["collections"]}

    assert names("jwt items r") == {"items", "lv"}
    assert {"items", "lv", "other", "jobs"} <= names("jwt r") == names("read-only key")


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({}, 200),  # no `access`: global manage, as in Qdrant
        ({"access": "x"}, 401),
        ({"access": [{"collection": "items", "access": "m"}]}, 401),
        ({"access": [{"collection": "items", "access": "rw", "payload": {"a": 1}}]}, 401),
        ({"access": "m", "value_exists": {"collection": "items", "matches": []}}, 401),
    ],
)
def test_jwt_claims_are_read_as_qdrant_defines_them(
    world: World, claims: dict[str, Any], status: int
) -> None:
    signed = jwt.encode(claims, KEY, algorithm="HS256")
    response = world.api.client.delete(
        "/collections/nothing-here", headers={"authorization": f"Bearer {signed}"}
    )
    assert response.status_code == status, response.text


def test_only_hs256_tokens_signed_with_the_key_are_accepted(world: World) -> None:
    unsigned = jwt.encode({"access": "m"}, key=None, algorithm="none")
    other_alg = jwt.encode({"access": "m"}, KEY, algorithm="HS512")
    for forged in (unsigned, other_alg, "not.a.jwt"):
        response = world.api.client.get("/collections", headers={"api-key": forged})
        assert response.status_code == 401, forged


def test_without_jwt_rbac_a_signed_token_is_no_credential(tmp_path: Path) -> None:
    with make_client(tmp_path, api_key=KEY) as client:
        response = client.get("/collections", headers=CREDENTIALS["jwt m"])
        assert response.status_code == 401
        assert response.json()["status"]["error"].startswith("Must provide a valid API key")


def test_a_read_only_key_alone_reads_but_never_writes(tmp_path: Path) -> None:
    with make_client(tmp_path, read_only_api_key=RO_KEY) as client:
        headers = {"api-key": RO_KEY}
        assert client.get("/collections", headers=headers).status_code == 200
        assert client.get("/collections").status_code == 401
        body = {"vectors": {"size": 4, "distance": "Dot"}}
        refused = client.put("/collections/x", json=body, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["status"]["error"] == "Forbidden: Global manage access is required"
        assert client.get("/collections/x/exists", headers=headers).json()["result"] == {
            "exists": False
        }


@pytest.mark.parametrize(
    "settings",
    [
        {"api_key": ""},
        {"api_key": "   "},
        {"read_only_api_key": ""},
        {"jwt_rbac": True},
        {"api_key": KEY, "read_only_api_key": KEY},
    ],
)
def test_settings_that_would_weaken_authentication_are_refused(settings: dict[str, Any]) -> None:
    """An empty QUIVER_API_KEY used to switch authentication off silently (finding 10)."""
    with pytest.raises(ValidationError):
        Settings(**settings)
