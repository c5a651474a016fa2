"""Points API: upsert forms, retrieve, delete, payload operations, scroll, count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.api import Api, make_client

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


def ids_of(records: list[dict[str, Any]]) -> list[Any]:
    return [r["id"] for r in records]


def test_list_form_upsert_then_retrieve(api: Api, collection: str) -> None:
    record = api.result("GET", f"/collections/{collection}/points/3")
    assert record == {
        "id": 3,
        "payload": {"n": 3, "city": "Berlin", "tags": ["t0"]},
        "vector": [3.0, 1.0, 0.0, -1.0],
    }


def test_batch_form_with_uuid_ids(api: Api) -> None:
    api.result("PUT", "/collections/b", {"vectors": {"size": 2, "distance": "Dot"}})
    batch = {"ids": [7, UUID.upper()], "vectors": [[1, 2], [3, 4]], "payloads": [{"a": 1}, None]}
    answer = api.result("PUT", "/collections/b/points?wait=true", {"batch": batch})
    assert answer["status"] == "completed"
    records = api.result("POST", "/collections/b/points", {"ids": [UUID, 7], "with_vector": True})
    assert sorted(map(str, ids_of(records))) == sorted(["7", UUID])
    by_id = {str(r["id"]): r for r in records}
    assert by_id[UUID]["vector"] == [3.0, 4.0]
    assert by_id["7"]["payload"] == {"a": 1}


def test_upsert_replaces_whole_point(api: Api, collection: str) -> None:
    api.result(
        "PUT",
        f"/collections/{collection}/points?wait=true",
        {"points": [{"id": 3, "vector": [0, 0, 0, 1], "payload": {"only": True}}]},
    )
    record = api.result("GET", f"/collections/{collection}/points/3")
    assert record["payload"] == {"only": True}
    assert record["vector"] == [0.0, 0.0, 0.0, 1.0]
    assert api.result("POST", f"/collections/{collection}/points/count", {})["count"] == 10


def test_duplicate_ids_in_one_batch_keep_the_last(api: Api) -> None:
    api.result("PUT", "/collections/d", {"vectors": {"size": 1, "distance": "Dot"}})
    points = [
        {"id": 1, "vector": [1], "payload": {"v": 1}},
        {"id": 1, "vector": [2], "payload": {"v": 2}},
    ]
    api.result("PUT", "/collections/d/points?wait=true", {"points": points})
    assert api.result("GET", "/collections/d/points/1")["payload"] == {"v": 2}
    assert api.result("POST", "/collections/d/points/count", {})["count"] == 1


def test_retrieve_skips_missing_and_get_missing_is_404(api: Api, collection: str) -> None:
    records = api.result("POST", f"/collections/{collection}/points", {"ids": [1, 999]})
    assert ids_of(records) == [1]
    status, answer = api.get(f"/collections/{collection}/points/999")
    assert status == 404
    assert "999" in answer["status"]["error"]


def test_delete_by_ids_and_by_filter(api: Api, collection: str) -> None:
    api.result("POST", f"/collections/{collection}/points/delete?wait=true", {"points": [1, 2]})
    flt = {"must": [{"key": "city", "match": {"value": "Berlin"}}]}
    api.result("POST", f"/collections/{collection}/points/delete", {"filter": flt})
    remaining = api.result("POST", f"/collections/{collection}/points/scroll", {"limit": 100})
    assert ids_of(remaining["points"]) == [4, 6, 8, 10]


def test_set_overwrite_delete_clear_payload(api: Api, collection: str) -> None:
    path = f"/collections/{collection}/points"
    api.result("POST", f"{path}/payload", {"payload": {"x": 1}, "points": [1]})
    assert api.result("GET", f"{path}/1")["payload"] == {
        "n": 1,
        "city": "Berlin",
        "tags": ["t1"],
        "x": 1,
    }
    api.result("PUT", f"{path}/payload", {"payload": {"y": 2}, "points": [1]})
    assert api.result("GET", f"{path}/1")["payload"] == {"y": 2}
    api.result("POST", f"{path}/payload/delete", {"keys": ["city"], "points": [2]})
    assert api.result("GET", f"{path}/2")["payload"] == {"n": 2, "tags": ["t2"]}
    api.result("POST", f"{path}/payload/clear", {"points": [3]})
    assert api.result("GET", f"{path}/3")["payload"] == {}


def test_set_payload_by_filter_and_nested_key(api: Api, collection: str) -> None:
    path = f"/collections/{collection}/points"
    flt = {"must": [{"key": "n", "range": {"gte": 9}}]}
    api.result("POST", f"{path}/payload", {"payload": {"hot": True}, "filter": flt})
    hot = api.result(
        "POST", f"{path}/count", {"filter": {"must": [{"key": "hot", "match": {"value": True}}]}}
    )
    assert hot == {"count": 2}
    api.result("POST", f"{path}/payload", {"payload": {"b": 1}, "points": [4], "key": "meta"})
    assert api.result("GET", f"{path}/4")["payload"]["meta"] == {"b": 1}


def test_set_payload_on_missing_point_is_404_and_changes_nothing(api: Api, collection: str) -> None:
    path = f"/collections/{collection}/points"
    status, _ = api.post(f"{path}/payload", {"payload": {"x": 1}, "points": [1, 999]})
    assert status == 404
    assert "x" not in api.result("GET", f"{path}/1")["payload"]


def test_scroll_pages_through_everything_in_id_order(api: Api) -> None:
    api.result("PUT", "/collections/s", {"vectors": {"size": 1, "distance": "Dot"}})
    ids: list[Any] = [UUID, 42, 3, "00000000-0000-0000-0000-000000000001", 17]
    points = [{"id": i, "vector": [1.0]} for i in ids]
    api.result("PUT", "/collections/s/points?wait=true", {"points": points})
    seen: list[Any] = []
    offset: Any = None
    while True:
        page = api.result("POST", "/collections/s/points/scroll", {"limit": 2, "offset": offset})
        seen += ids_of(page["points"])
        offset = page["next_page_offset"]
        if offset is None:
            break
    assert seen == [3, 17, 42, "00000000-0000-0000-0000-000000000001", UUID]


def test_scroll_with_filter_and_selected_payload(api: Api, collection: str) -> None:
    body = {
        "filter": {"must": [{"key": "tags", "match": {"any": ["t0"]}}]},
        "with_payload": ["n"],
        "with_vector": True,
        "limit": 2,
    }
    page = api.result("POST", f"/collections/{collection}/points/scroll", body)
    assert page["points"] == [
        {"id": 3, "payload": {"n": 3}, "vector": [3.0, 1.0, 0.0, -1.0]},
        {"id": 6, "payload": {"n": 6}, "vector": [6.0, 1.0, 0.0, -1.0]},
    ]
    assert page["next_page_offset"] == 9


def test_count_with_filter(api: Api, collection: str) -> None:
    flt = {
        "must_not": [{"key": "city", "match": {"value": "London"}}],
        "must": [{"key": "n", "range": {"lt": 8}}],
    }
    assert api.result(
        "POST", f"/collections/{collection}/points/count", {"filter": flt, "exact": True}
    ) == {"count": 4}


def test_update_modes(api: Api, collection: str) -> None:
    path = f"/collections/{collection}/points?wait=true"
    new_and_old = [
        {"id": 1, "vector": [0, 0, 0, 0], "payload": {"m": 1}},
        {"id": 50, "vector": [0, 0, 0, 0]},
    ]
    api.result("PUT", path, {"points": new_and_old, "update_mode": "insert_only"})
    assert api.result("GET", f"/collections/{collection}/points/1")["payload"]["n"] == 1
    assert api.get(f"/collections/{collection}/points/50")[0] == 200
    api.result(
        "PUT", path, {"points": [{"id": 60, "vector": [0, 0, 0, 0]}], "update_mode": "update_only"}
    )
    assert api.get(f"/collections/{collection}/points/60")[0] == 404


def test_named_vectors_may_be_partial(api: Api) -> None:
    body = {
        "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 3, "distance": "Euclid"}}
    }
    api.result("PUT", "/collections/n", body)
    points = [
        {"id": 1, "vector": {"a": [1, 0]}},
        {"id": 2, "vector": {"a": [0, 1], "b": [1, 1, 1]}},
    ]
    api.result("PUT", "/collections/n/points?wait=true", {"points": points})
    records = api.result("POST", "/collections/n/points", {"ids": [1, 2], "with_vector": True})
    assert records[0]["vector"] == {"a": [1.0, 0.0]}
    assert records[1]["vector"] == {"a": [0.0, 1.0], "b": [1.0, 1.0, 1.0]}
    has_b = {"must": [{"has_vector": "b"}]}
    assert api.result("POST", "/collections/n/points/count", {"filter": has_b}) == {"count": 1}


def test_points_survive_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/r", {"vectors": {"size": 2, "distance": "Dot"}})
        points = [{"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(20)]
        api.result("PUT", "/collections/r/points?wait=true", {"points": points})
        api.result("POST", "/collections/r/points/delete?wait=true", {"points": [0, 5]})
        api.result(
            "POST", "/collections/r/points/payload?wait=true", {"payload": {"z": 1}, "points": [7]}
        )
    with make_client(tmp_path) as client:
        api = Api(client)
        assert api.result("POST", "/collections/r/points/count", {}) == {"count": 18}
        assert api.result("GET", "/collections/r/points/7") == {
            "id": 7,
            "payload": {"i": 7, "z": 1},
            "vector": [7.0, 1.0],
        }
        assert api.get("/collections/r/points/5")[0] == 404


def test_named_batch_columns_store_what_the_list_form_stores(tmp_path: Path) -> None:
    """The batch form's vector columns go to the engine as columns (no per-point
    rows in between): same points, duplicates resolved, sharded or not."""
    vectors = {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 3, "distance": "Euclid"}}
    batch = {
        "ids": [1, 2, 1, 3],
        "vectors": {
            "a": [[1, 0], [0, 1], [2, 2], [3, 1]],
            "b": [[1, 1, 1], [0, 0, 0], [2, 2, 2], [5, 5, 5]],
        },
        "payloads": [{"v": 1}, {"v": 2}, {"v": 3}, None],
    }  # fmt: skip
    points = [
        {"id": i, "vector": {"a": a, "b": b}, "payload": p}
        for i, a, b, p in zip(batch["ids"], batch["vectors"]["a"], batch["vectors"]["b"],
                              batch["payloads"], strict=True)
    ]  # fmt: skip
    with make_client(tmp_path) as client:
        api = Api(client)
        stored = []
        for name, shards, body in [
            ("cols", 1, {"batch": batch}),
            ("rows", 1, {"points": points}),
            ("cols2", 2, {"batch": batch}),
        ]:
            api.result("PUT", f"/collections/{name}", {"vectors": vectors, "shard_number": shards})
            api.result("PUT", f"/collections/{name}/points?wait=true", body)
            scroll = {"limit": 10, "with_vector": True, "with_payload": True}
            stored.append(api.result("POST", f"/collections/{name}/points/scroll", scroll))
        assert stored[0] == stored[1] == stored[2]
        assert [r["payload"] for r in stored[0]["points"]] == [{"v": 3}, {"v": 2}, {}]
        unknown = {"batch": {"ids": [9], "vectors": {"c": [[1, 2]]}}}
        status, answer = api.put("/collections/cols/points", unknown)
        assert status == 400 and "Not existing vector name" in answer["status"]["error"]
