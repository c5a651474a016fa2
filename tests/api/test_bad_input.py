"""Bad input gets a 4xx naming the problem and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api, make_client

POINTS = "/collections/items/points?wait=true"


def state(api: Api) -> Any:
    return api.result(
        "POST", "/collections/items/points/scroll", {"limit": 100, "with_vector": True}
    )


BAD_UPSERTS: list[tuple[str, Any, str]] = [
    ("wrong dimension", {"points": [{"id": 100, "vector": [1, 2, 3]}]}, "dimension"),
    (
        "wrong dimension late in batch",
        {"points": [{"id": 100, "vector": [1, 2, 3, 4]}, {"id": 101, "vector": [1, 2]}]},
        "dim",
    ),
    ("too large for float32", {"points": [{"id": 100, "vector": [1, 2, 3, 1e39]}]}, "infinity"),
    ("negative id", {"points": [{"id": -1, "vector": [1, 2, 3, 4]}]}, "point id"),
    ("id above u64", {"points": [{"id": 2**64, "vector": [1, 2, 3, 4]}]}, "point id"),
    ("non-uuid string id", {"points": [{"id": "abc", "vector": [1, 2, 3, 4]}]}, "point id"),
    ("float id", {"points": [{"id": 1.5, "vector": [1, 2, 3, 4]}]}, "id"),
    (
        "unknown vector name",
        {"points": [{"id": 100, "vector": {"x": [1, 2, 3, 4]}}]},
        "vector name",
    ),
    ("vector not numbers", {"points": [{"id": 100, "vector": ["a", 2, 3, 4]}]}, "vector"),
    ("missing vector", {"points": [{"id": 100}]}, "vector"),
    ("batch length mismatch", {"batch": {"ids": [100, 101], "vectors": [[1, 2, 3, 4]]}}, "vectors"),
    (
        "payload not an object",
        {"points": [{"id": 100, "vector": [1, 2, 3, 4], "payload": [1]}]},
        "payload",
    ),
]


@pytest.mark.parametrize(("case", "body", "needle"), BAD_UPSERTS, ids=[c[0] for c in BAD_UPSERTS])
def test_bad_upsert_is_rejected_and_writes_nothing(
    api: Api, collection: str, case: str, body: Any, needle: str
) -> None:
    before = state(api)
    status, answer = api.put(POINTS, body)
    assert 400 <= status < 500, (case, answer)
    assert needle.lower() in answer["status"]["error"].lower()
    assert answer["result"] is None
    assert state(api) == before


def test_unknown_fields_are_ignored_and_qdrant_aliases_read_as_qdrant_reads_them(
    api: Api, collection: str
) -> None:
    """Qdrant's serde models ignore unknown fields and read ``with_vectors`` /
    ``with_vector``, ``top`` for ``limit`` and ``vectors`` for a point's ``vector``."""
    point = {"id": 100, "vectors": [1.0, 2.0, 3.0, 4.0], "colour": "red"}
    assert api.result("PUT", POINTS, {"points": [point], "pointz": []})
    points = "/collections/items/points"
    found = api.result("POST", points, {"ids": [100], "with_vectors": True, "x": 1})
    assert found[0]["vector"] == [1.0, 2.0, 3.0, 4.0]
    hits = api.result(
        "POST", f"{points}/search", {"vector": [1, 2, 3, 4], "top": 2, "with_vectors": True}
    )
    assert len(hits) == 2 and hits[0]["vector"] is not None
    page = api.result("POST", f"{points}/scroll", {"limit": 1, "with_vectors": True, "y": 2})
    assert page["points"][0]["vector"] is not None


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_tokens_are_rejected(api: Api, collection: str, token: bytes) -> None:
    before = state(api)
    body = b'{"points": [{"id": 100, "vector": [1, 2, 3, ' + token + b"]}]}"
    response = api.client.put(POINTS, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.json()["status"]["error"]
    assert state(api) == before


def test_malformed_json_is_400(api: Api, collection: str) -> None:
    response = api.client.put(
        POINTS, content=b'{"points": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["status"]["error"]


def test_form_content_type_is_refused_not_read_as_json(api: Api, collection: str) -> None:
    """A web page can send a form body cross-site; only application/json is read (issue 18)."""
    before = state(api)
    body = b'{"points": [{"id": 100, "vector": [1, 2, 3, 4]}]}'
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert api.client.put(POINTS, content=body, headers=headers).status_code == 415
    assert state(api) == before


BAD_FILTERS: list[Any] = [
    {"must": [{"key": "n", "range": {"gt": "abc"}}]},
    {"must": [{"key": "n"}]},
    {"must": [{"key": "n", "match": {"value": 1, "any": [1]}}]},
    {"musts": []},
    {"must": [{"has_id": ["not-a-uuid"]}]},
    {"must": "city"},
]


@pytest.mark.parametrize("flt", BAD_FILTERS)
def test_malformed_filter_is_rejected_everywhere(api: Api, collection: str, flt: Any) -> None:
    base = "/collections/items/points"
    for path, body in [
        (f"{base}/query", {"query": [1, 0, 0, 0], "filter": flt}),
        (f"{base}/scroll", {"filter": flt}),
        (f"{base}/count", {"filter": flt}),
        (f"{base}/delete", {"filter": flt}),
        (f"{base}/payload", {"payload": {"x": 1}, "filter": flt}),
    ]:
        status, answer = api.post(path, body)
        assert 400 <= status < 500, (path, answer)
        assert answer["status"]["error"]
    assert api.result("POST", f"{base}/count", {})["count"] == 10


@pytest.mark.parametrize(
    "name", ["..", ".hidden", "a/b", "a\\b", "x" * 256, "semi;colon", "sp ace", "nul\x00"]
)
def test_collection_names_that_could_escape_are_rejected(api: Api, name: str) -> None:
    from urllib.parse import quote

    status, _ = api.put(
        f"/collections/{quote(name, safe='')}", {"vectors": {"size": 2, "distance": "Dot"}}
    )
    assert 400 <= status < 500
    assert api.result("GET", "/collections") == {"collections": []}


def test_unknown_collection_is_404_on_every_route(api: Api) -> None:
    base = "/collections/nope"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {}),
        ("PUT", f"{base}/points", {"points": []}),
        ("POST", f"{base}/points/query", {"query": [1]}),
        ("POST", f"{base}/points/scroll", {}),
        ("POST", f"{base}/points/count", {}),
        ("GET", f"{base}/points/1", None),
    ]:
        status, answer = api.call(method, path, body)
        assert status == 404, (method, path, answer)
        assert "nope" in answer["status"]["error"]


def test_bad_collection_configs(api: Api) -> None:
    for body in [
        {"vectors": {"size": 0, "distance": "Dot"}},
        {"vectors": {"size": 4, "distance": "Hamming"}},
        {"vectors": {"size": 10**9, "distance": "Dot"}},
        {},
        {"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": -1}},
    ]:
        status, answer = api.put("/collections/bad", body)
        assert 400 <= status < 500, (body, answer)
    assert api.result("GET", "/collections") == {"collections": []}


@pytest.mark.parametrize(
    "body",
    [
        {"query": [1, 0, 0, 0], "limit": 10**9},
        {"query": [1, 0, 0, 0], "limit": -1},
        {"query": [1, 0, 0, 0], "offset": 10**9},
        {"query": [1, 0, 0]},
        {"query": [1, 0, 0, float("nan")]},
        {"query": "not-an-id"},
        {"query": 12345},
        {"query": [1, 0, 0, 0], "using": "nope"},
        {"query": {"recommend": {"positive": [999]}}},  # no such point: 404
        {"query": [1, 0, 0, 0], "with_payload": 5},
    ],
)
def test_bad_queries_are_4xx(api: Api, collection: str, body: Any) -> None:
    import json

    raw = json.dumps(body).encode()
    response = api.client.post(
        "/collections/items/points/query", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["status"]["error"]


def test_oversized_body_is_413_and_writes_nothing(tmp_path: Any) -> None:
    with make_client(tmp_path, max_request_bytes=4096) as client:
        api = Api(client)
        api.result("PUT", "/collections/small", {"vectors": {"size": 4, "distance": "Dot"}})
        points = [{"id": i, "vector": [1, 2, 3, 4]} for i in range(500)]
        status, answer = api.put("/collections/small/points?wait=true", {"points": points})
        assert status == 413
        assert "4096" in answer["status"]["error"] or "large" in answer["status"]["error"].lower()
        assert api.result("POST", "/collections/small/points/count", {}) == {"count": 0}


def test_api_key_is_required_except_on_health(tmp_path: Any) -> None:
    with make_client(tmp_path, api_key="s3cret") as client:
        assert client.get("/healthz").status_code == 200
        denied = client.get("/collections")
        assert denied.status_code == 401
        assert "api-key" in denied.json()["status"]["error"]
        assert client.get("/collections", headers={"api-key": "wrong"}).status_code == 401
        assert client.get("/collections", headers={"api-key": "s3cret"}).status_code == 200
        assert (
            client.get("/collections", headers={"authorization": "Bearer s3cret"}).status_code
            == 200
        )


def test_streamed_body_over_the_limit_is_413_and_writes_nothing(tmp_path: Any) -> None:
    with make_client(tmp_path, max_request_bytes=4096) as client:
        api = Api(client)
        api.result("PUT", "/collections/small", {"vectors": {"size": 4, "distance": "Dot"}})

        def chunks() -> Any:
            yield b'{"points": ['
            for i in range(500):
                yield b'{"id": %d, "vector": [1, 2, 3, 4]},' % i
            yield b'{"id": 999, "vector": [1, 2, 3, 4]}]}'

        response = client.put(
            "/collections/small/points?wait=true",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert "4096" in response.json()["status"]["error"]
        assert api.result("POST", "/collections/small/points/count", {}) == {"count": 0}


# -- one nesting limit for payloads and filters (issue 18, finding 7) ------------------


def deep_json(depth: int) -> str:
    """An object ``depth`` levels deep as JSON text (the client's encoder stops earlier)."""
    return '{"a":' * depth + "1" + "}" * depth


def with_deep(template: str, deep: str) -> str:
    """``template`` (JSON text) with ``DEEP`` replaced by ``deep``."""
    return template.replace("DEEP", deep)


def send(api: Api, method: str, path: str, text: str) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    response = api.client.request(method, path, content=text, headers=headers)
    return response.status_code, response.json()


def all_points(api: Api) -> Any:
    body = {"limit": 100, "with_payload": True, "with_vector": True}
    return api.result("POST", "/collections/items/points/scroll", body)


@pytest.mark.parametrize("depth", [65, 250, 252, 254, 300, 1000])
def test_a_deep_payload_is_refused_on_every_write_path_and_reads_still_work(
    api: Api, collection: str, depth: int
) -> None:
    before = all_points(api)
    deep = deep_json(depth)
    writes = [
        (
            "PUT",
            POINTS,
            with_deep('{"points":[{"id":50,"vector":[1,0,0,0],"payload":DEEP}]}', deep),
        ),
        (
            "PUT",
            POINTS,
            with_deep('{"batch":{"ids":[50],"vectors":[[1,0,0,0]],"payloads":[DEEP]}}', deep),
        ),
        (
            "POST",
            "/collections/items/points/payload?wait=true",
            with_deep('{"payload":DEEP,"points":[1]}', deep),
        ),
        (
            "PUT",
            "/collections/items/points/payload?wait=true",
            with_deep('{"payload":DEEP,"points":[1]}', deep),
        ),
    ]
    for method, path, text in writes:
        status, answer = send(api, method, path, text)
        assert status == 400, (path, answer)
        error = answer["status"]["error"]
        assert "deeper than 64 levels" in error or "depth limit exceeded" in error, error
    assert all_points(api) == before


def test_a_payload_at_the_limit_is_stored_and_read_back(api: Api, collection: str) -> None:
    text = with_deep('{"points":[{"id":50,"vector":[1,0,0,0],"payload":DEEP}]}', deep_json(64))
    assert send(api, "PUT", POINTS, text)[0] == 200
    point = api.result("GET", "/collections/items/points/50")
    depth, node = 1, point["payload"]
    while isinstance(node["a"], dict):
        depth, node = depth + 1, node["a"]
    assert depth == 64
    assert len(all_points(api)["points"]) == 11


def test_deep_payloads_in_a_bulk_stream_are_rejected_row_by_row(api: Api, collection: str) -> None:
    rows = [
        '{"id":60,"vector":[1,0,0,0],"payload":{"ok":1}}',
        with_deep('{"id":61,"vector":[1,0,0,0],"payload":DEEP}', deep_json(252)),
        '{"id":62,"vector":[1,0,0,0]}',
    ]
    response = api.client.post(
        "/collections/items/points/bulk",
        content="\n".join(rows).encode() + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report = response.json()["result"]
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["errors"][0]["row"] == 1
    assert "deeper than 64 levels" in report["errors"][0]["error"]
    assert len(all_points(api)["points"]) == 12


def test_a_deep_payload_in_an_arrow_stream_is_a_400(api: Api, collection: str) -> None:
    import io

    import pyarrow as pa
    import pyarrow.ipc

    vectors = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 0.0, 0.0, 0.0] * 2, pa.float32()), 4)
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([70, 71]), "vector": vectors, "payload": pa.array(["{}", deep_json(254)])}
    )
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    before = all_points(api)
    response = api.client.post(
        "/collections/items/points/bulk",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert response.status_code == 400, response.text
    assert "deeper than 64 levels" in response.json()["status"]["error"]
    assert all_points(api) == before


def deep_filter(levels: int) -> str:
    inner = '{"must":[{"key":"n","match":{"value":1}}]}'
    return '{"must":[' * levels + inner + "]}" * levels


@pytest.mark.parametrize("levels", [40, 170, 255, 340, 510])
def test_a_deep_filter_is_a_400_on_every_route(api: Api, collection: str, levels: int) -> None:
    flt = deep_filter(levels)
    requests = [
        ("POST", "/collections/items/points/scroll", with_deep('{"filter":DEEP}', flt)),
        ("POST", "/collections/items/points/count", with_deep('{"filter":DEEP}', flt)),
        (
            "POST",
            "/collections/items/points/query",
            with_deep('{"query":[1,0,0,0],"filter":DEEP}', flt),
        ),
        ("POST", "/collections/items/points/delete?wait=true", with_deep('{"filter":DEEP}', flt)),
    ]
    for method, path, text in requests:
        status, answer = send(api, method, path, text)
        assert status == 400, (path, answer)
        error = answer["status"]["error"]
        assert "deeper than 64 levels" in error or "depth limit exceeded" in error, error
    assert len(all_points(api)["points"]) == 10
