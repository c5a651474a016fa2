"""Collection aliases (issue 17, item 3): Qdrant's actions, all-or-nothing switches, every
collection route through an alias, durability across a restart, and JWT grants."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import jwt
import orjson

from tests.helpers.api import Api, create_items, make_client

VECTORS = {"size": 4, "distance": "Dot"}


def create(name: str, alias: str) -> dict[str, Any]:
    return {"create_alias": {"collection_name": name, "alias_name": alias}}


def delete(alias: str) -> dict[str, Any]:
    return {"delete_alias": {"alias_name": alias}}


def rename(old: str, new: str) -> dict[str, Any]:
    return {"rename_alias": {"old_alias_name": old, "new_alias_name": new}}


def change(api: Api, *actions: dict[str, Any]) -> tuple[int, Any]:
    return api.post("/collections/aliases", {"actions": list(actions)})


def all_aliases(api: Api) -> list[tuple[str, str]]:
    return [
        (a["alias_name"], a["collection_name"]) for a in api.result("GET", "/aliases")["aliases"]
    ]


def make_collection(api: Api, name: str, marker: int) -> None:
    """A 4-d collection whose one point carries ``marker`` in its payload."""
    api.result("PUT", f"/collections/{name}", {"vectors": VECTORS})
    point = {"id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"v": marker}}
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": [point]})


def test_an_alias_reaches_its_collection_on_every_kind_of_route(api: Api) -> None:
    create_items(api)
    status, answer = change(api, create("items", "docs"))
    assert (status, answer["result"]) == (200, True)
    assert api.result("GET", "/collections/docs")["points_count"] == 10
    assert api.result("GET", "/collections/docs/exists") == {"exists": True}
    assert api.result("POST", "/collections/docs/points/count", {})["count"] == 10
    api.result(
        "PUT",
        "/collections/docs/points?wait=true",
        {"points": [{"id": 50, "vector": [1.0, 0.0, 0.0, 0.0]}]},
    )
    assert api.result("GET", "/collections/items/points/50")["id"] == 50
    hits = api.result("POST", "/collections/docs/points/query", {"query": [1, 0, 0, 0]})
    assert hits["points"]
    line = orjson.dumps({"id": 51, "vector": [0.0, 1.0, 0.0, 0.0]}) + b"\n"
    response = api.client.post(
        "/collections/docs/points/bulk",
        content=line,
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.json()
    assert api.result("GET", "/collections/items/points/51")["id"] == 51


def test_listing_shows_every_alias_and_a_collections_own(api: Api) -> None:
    make_collection(api, "a", 1)
    make_collection(api, "b", 2)
    assert change(api, create("a", "x"), create("a", "y"), create("b", "z"))[0] == 200
    assert all_aliases(api) == [("x", "a"), ("y", "a"), ("z", "b")]
    mine = api.result("GET", "/collections/a/aliases")["aliases"]
    assert mine == [
        {"alias_name": "x", "collection_name": "a"},
        {"alias_name": "y", "collection_name": "a"},
    ]
    assert api.result("GET", "/collections/x/aliases") == {"aliases": []}  # as Qdrant


def test_actions_apply_in_order_and_a_refused_one_applies_none(api: Api) -> None:
    make_collection(api, "a", 1)
    make_collection(api, "b", 2)
    change(api, create("a", "docs"))
    status, answer = change(api, delete("docs"), create("b", "docs"), create("missing", "m"))
    assert status == 404
    assert answer["status"]["error"] == "Not found: Collection `missing` doesn't exist!"
    assert all_aliases(api) == [("docs", "a")]
    assert change(api, delete("docs"), create("b", "docs"), rename("docs", "live"))[0] == 200
    assert all_aliases(api) == [("live", "b")]


def test_qdrant_errors_for_refused_actions(api: Api) -> None:
    make_collection(api, "a", 1)
    make_collection(api, "b", 2)
    status, answer = change(api, rename("nope", "x"))
    assert (status, answer["status"]["error"]) == (404, "Not found: Alias nope does not exists!")
    status, answer = change(api, create("a", "b"))
    assert (status, answer["status"]["error"]) == (
        409,
        "Wrong input: Collection `b` already exists!",
    )
    assert change(api, create("a", "../x"))[0] == 400
    assert change(api, {"create_alias": {"alias_name": "x"}})[0] == 400  # a missing field
    assert change(api, {**create("a", "x"), **delete("x")})[0] == 400
    assert change(api, delete("never-existed"))[0] == 200  # Qdrant: deleting nothing is fine
    assert all_aliases(api) == []


def test_an_alias_switches_to_another_collection_in_one_call(api: Api) -> None:
    make_collection(api, "v1", 1)
    make_collection(api, "v2", 2)
    change(api, create("v1", "docs"))
    assert api.result("GET", "/collections/docs/points/1")["payload"] == {"v": 1}
    assert change(api, create("v2", "docs"))[0] == 200  # re-points, as Qdrant's insert does
    assert api.result("GET", "/collections/docs/points/1")["payload"] == {"v": 2}


def test_a_collection_cannot_take_an_aliases_name(api: Api) -> None:
    make_collection(api, "a", 1)
    change(api, create("a", "docs"))
    status, answer = api.put("/collections/docs", {"vectors": VECTORS})
    assert status == 400
    assert answer["status"]["error"] == (
        "Wrong input: Can't create collection with name docs. "
        "Alias with the same name already exists"
    )
    assert api.result("GET", "/collections")["collections"] == [{"name": "a"}]


def test_deleting_a_collection_deletes_its_aliases_and_an_alias_deletes_nothing(api: Api) -> None:
    make_collection(api, "a", 1)
    make_collection(api, "b", 2)
    change(api, create("a", "x"), create("b", "y"))
    assert api.result("DELETE", "/collections/x") is False  # Qdrant does not resolve here
    assert api.result("GET", "/collections/a/exists") == {"exists": True}
    assert api.result("DELETE", "/collections/a") is True
    assert all_aliases(api) == [("y", "b")]
    status, answer = api.get("/collections/x")
    assert (status, answer["status"]["error"]) == (404, "Not found: Collection `x` doesn't exist!")
    make_collection(api, "x", 3)  # the name is free again
    assert api.result("GET", "/collections/x/points/1")["payload"] == {"v": 3}


def test_snapshots_through_an_alias_belong_to_the_collection(api: Api) -> None:
    make_collection(api, "a", 1)
    change(api, create("a", "docs"))
    made = api.result("POST", "/collections/docs/snapshots")
    assert [s["name"] for s in api.result("GET", "/collections/a/snapshots")] == [made["name"]]
    response = api.client.get(f"/collections/docs/snapshots/{made['name']}")
    assert response.status_code == 200 and response.content


def test_aliases_survive_a_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        make_collection(api, "a", 1)
        make_collection(api, "b", 2)
        change(api, create("a", "x"), create("b", "y"))
        api.result("DELETE", "/collections/b")
    with make_client(tmp_path) as client:
        api = Api(client)
        assert all_aliases(api) == [("x", "a")]
        assert api.result("GET", "/collections/x/points/1")["payload"] == {"v": 1}


def test_queries_through_an_alias_never_fail_while_it_switches(api: Api) -> None:
    """The zero-downtime re-index: ``docs`` moves between two full collections while a
    reader queries it; every answer comes whole from one of them."""
    make_collection(api, "docs_v1", 1)
    make_collection(api, "docs_v2", 2)
    change(api, create("docs_v1", "docs"))
    seen: list[Any] = []
    stop = threading.Event()

    def read() -> None:
        body = {"query": [1, 0, 0, 0], "with_payload": True}
        while not stop.is_set():
            status, answer = api.post("/collections/docs/points/query", body)
            seen.append(answer["result"]["points"][0]["payload"]["v"] if status == 200 else answer)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for target in ["docs_v2", "docs_v1"] * 5 + ["docs_v2"]:
            time.sleep(0.01)
            assert change(api, delete("docs"), create(target, "docs"))[0] == 200
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) <= {1, 2}, [s for s in seen if s not in (1, 2)][:3]
    assert api.result("GET", "/collections/docs/points/1")["payload"] == {"v": 2}


KEY = "full-key-" + "0123456789" * 6


def bearer(access: Any) -> dict[str, str]:
    claims = {"exp": int(time.time() + 3600), "access": access}
    return {"authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='HS256')}"}


def test_a_grant_applies_to_the_name_a_request_uses(tmp_path: Path) -> None:
    """As in Qdrant: a grant on an alias reaches its collection through the alias; a
    grant on the collection does not reach it through an alias it was not given."""
    with make_client(tmp_path, api_key=KEY, jwt_rbac=True) as client:
        admin = {"api-key": KEY}
        client.put("/collections/a", json={"vectors": VECTORS}, headers=admin)
        body = {"actions": [create("a", "docs")]}
        assert client.post("/collections/aliases", json=body, headers=admin).status_code == 200
        on_alias = bearer([{"collection": "docs", "access": "r"}])
        on_target = bearer([{"collection": "a", "access": "rw"}])
        assert client.get("/collections/docs", headers=on_alias).status_code == 200
        assert client.get("/collections/a", headers=on_alias).status_code == 403
        assert client.get("/collections/docs", headers=on_target).status_code == 403
        assert client.post("/collections/aliases", json=body, headers=on_target).status_code == 403
        listed = client.get("/aliases", headers=on_target).json()["result"]["aliases"]
        assert listed == []  # the alias's name is not in the grant
        both = bearer([{"collection": "a", "access": "r"}, {"collection": "docs", "access": "r"}])
        listed = client.get("/aliases", headers=both).json()["result"]["aliases"]
        assert listed == [{"alias_name": "docs", "collection_name": "a"}]
