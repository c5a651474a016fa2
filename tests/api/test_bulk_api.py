"""Streaming bulk loads over HTTP: NDJSON and Arrow IPC, per-row errors, broken streams."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc
import pytest

from tests.helpers.api import Api, make_client, wait_green

DIM = 4
NDJSON = {"content-type": "application/x-ndjson"}
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}


def create(api: Api, name: str = "bulk", **extra: Any) -> None:
    body = {"vectors": {"size": DIM, "distance": "Dot"}} | extra
    api.result("PUT", f"/collections/{name}", body)


def post(
    api: Api, body: bytes | Iterator[bytes], headers: dict[str, str], **params: Any
) -> tuple[int, Any]:
    response = api.client.post(
        "/collections/bulk/points/bulk", content=body, headers=headers, params=params
    )
    return response.status_code, response.json()


def lines(points: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(p) + b"\n" for p in points)


def arrow_stream(batches: list[pa.RecordBatch]) -> bytes:
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def arrow_batch(ids: list[Any], vectors: np.ndarray, **columns: list[Any]) -> pa.RecordBatch:
    flat = pa.array(vectors.astype(np.float32).ravel(), type=pa.float32())
    data = {
        "id": pa.array(ids),
        "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
    }
    data |= {k: pa.array(v) for k, v in columns.items()}
    return pa.RecordBatch.from_pydict(data)


def scroll_all(api: Api) -> list[dict[str, Any]]:
    answer = api.result(
        "POST",
        "/collections/bulk/points/scroll",
        {"limit": 10_000, "with_vector": True, "with_payload": True},
    )
    points: list[dict[str, Any]] = answer["points"]
    return points


def test_ndjson_stream_loads_in_chunks_and_equals_a_batch_upsert(api: Api) -> None:
    create(api)
    rng = np.random.default_rng(0)
    points = [
        {"id": i, "vector": rng.standard_normal(DIM).round(4).tolist(), "payload": {"n": i}}
        for i in range(2500)
    ]
    chunks = iter([lines(points)[i : i + 777] for i in range(0, len(lines(points)), 777)])
    status, answer = post(api, chunks, NDJSON, chunk_rows=1000)
    assert status == 200, answer
    assert answer["result"] | {"operation_id": None} == {
        "accepted": 2500,
        "rejected": 0,
        "errors": [],
        "operation_id": None,
    }
    stored = scroll_all(api)
    assert [p["id"] for p in stored] == list(range(2500))
    assert stored[7]["payload"] == {"n": 7} and stored[7]["vector"] == pytest.approx(
        points[7]["vector"]
    )


def test_bad_ndjson_rows_are_rejected_alone_with_their_row_numbers(api: Api) -> None:
    create(api)
    good = [{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(6)]
    body = (
        lines(good[:2])
        + b"{not json\n"
        + lines([{"id": -5, "vector": [1, 2, 3, 4]}])
        + lines([{"id": 9, "vector": [1, 2, 3]}])
        + lines([{"id": 10, "vector": [1, 2, 3, 1e39]}])
        + b"\n"
        + lines(good[2:])
        + b'{"id": 77, "vector": [1, 2'
    )
    status, answer = post(api, body, NDJSON, chunk_rows=3)
    assert status == 200, answer
    report = answer["result"]
    assert report["accepted"] == 6 and report["rejected"] == 5
    rows = [(e["row"], e["error"]) for e in report["errors"]]
    assert [r for r, _ in rows] == [2, 3, 4, 5, 11]
    assert "not valid JSON" in rows[0][1] and "point id" in rows[1][1]
    assert "dimension" in rows[2][1] and "NaN or infinity" in rows[3][1]
    assert "ended inside this line" in rows[4][1]
    assert [p["id"] for p in scroll_all(api)] == list(range(6))


def test_arrow_stream_loads_vectors_ids_and_payload_columns(api: Api) -> None:
    create(api, optimizers_config={"indexing_threshold": 1000})
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, DIM)).astype(np.float32)
    batches = [
        arrow_batch(list(range(s, s + 1000)), vectors[s : s + 1000],
                    city=[f"c{i % 3}" for i in range(s, s + 1000)],
                    payload=[orjson.dumps({"n": i}).decode() for i in range(s, s + 1000)])
        for s in range(0, 3000, 1000)
    ]  # fmt: skip
    status, answer = post(api, arrow_stream(batches), ARROW, chunk_rows=700)
    assert status == 200, answer
    assert answer["result"]["accepted"] == 3000
    info = wait_green(api, "bulk")
    segments = api.result("GET", "/collections/bulk/segments")
    assert info["points_count"] == 3000
    sealed = [s for s in segments if s["kind"] == "sealed"]
    assert len(sealed) == 1 and sealed[0]["points"] == 3000  # folded into one graph
    point = api.result("GET", "/collections/bulk/points/1234")
    assert point["payload"] == {"n": 1234, "city": "c1"}
    assert point["vector"] == pytest.approx(vectors[1234].tolist())


def test_bad_arrow_rows_are_rejected_and_a_broken_stream_keeps_earlier_chunks(api: Api) -> None:
    create(api)
    vectors = np.ones((4, DIM), dtype=np.float32)
    vectors[2, 1] = np.nan
    uuids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    batch = arrow_batch([*uuids, "not-a-uuid"], vectors)
    status, answer = post(api, arrow_stream([batch]), ARROW)
    assert status == 200, answer
    assert answer["result"]["accepted"] == 2
    assert [e["row"] for e in answer["result"]["errors"]] == [2, 3]
    whole = arrow_stream(
        [
            arrow_batch(list(range(10, 20)), np.ones((10, DIM))),
            arrow_batch(list(range(20, 30)), np.ones((10, DIM))),
        ]
    )
    status, answer = post(api, whole[: len(whole) - 50], ARROW)
    assert status == 400, answer
    assert "broke off after row 10" in answer["status"]["error"]
    assert answer["result"]["accepted"] == 10
    assert api.result("POST", "/collections/bulk/points/count", {})["count"] == 12


NO_ID = arrow_stream([pa.RecordBatch.from_pydict({"vector": pa.array([[1.0]])})])
UNKNOWN_VECTOR = arrow_stream(
    [pa.RecordBatch.from_pydict({"id": pa.array([1]), "vector.x": pa.array([[1.0] * DIM])})]
)


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{}", {"content-type": "text/csv"}, 415, "Unsupported content type"),
        (b"garbage that is not arrow", ARROW, 400, "not an Arrow IPC stream"),
        (NO_ID, ARROW, 400, '"id" column'),
        (UNKNOWN_VECTOR, ARROW, 400, "names no dense vector"),
    ],
)
def test_unreadable_streams_are_refused_and_write_nothing(
    api: Api, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    create(api)
    got, answer = post(api, body, headers)
    assert got == status and message in answer["status"]["error"], answer
    assert api.result("POST", "/collections/bulk/points/count", {})["count"] == 0


def test_unknown_collection_is_404(api: Api) -> None:
    status, answer = post(api, b"", NDJSON)
    assert status == 404 and "doesn't exist" in answer["status"]["error"]


# -- bounds: what one request may make the server hold ---------------------------------------

MiB = 1 << 20
PIECE = 64 * 1024


def post_streamed(
    api: Api, chunks: Iterator[bytes], headers: dict[str, str], **params: Any
) -> tuple[int, Any, int]:
    """POST with the body pulled piece by piece as a server receives it (TestClient reads
    a body whole before the app sees it); returns status, answer and the bytes pulled."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for chunk in chunks:
            pulled += len(chunk)
            yield chunk

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quiver") as client:
            return await client.post(
                "/collections/bulk/points/bulk", content=body(), headers=headers, params=params
            )

    assert api.client.portal is not None
    response = api.client.portal.call(send)
    return response.status_code, response.json(), pulled


def pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]


def line_without_end(head: bytes, total: int) -> Iterator[bytes]:
    """``head``, then ``total`` bytes of one line that never ends."""
    yield head
    filler = b"7" * PIECE
    for _ in range(total // PIECE):
        yield filler


def padded_point(point_id: int, length: int) -> bytes:
    """One NDJSON point of exactly ``length`` bytes, its newline not counted."""
    empty = orjson.dumps({"id": point_id, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"p": ""}})
    pad = "x" * (length - len(empty))
    return orjson.dumps({"id": point_id, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"p": pad}})


def test_an_ndjson_line_over_the_bound_stops_the_load_before_the_rest_is_read(
    tmp_path: Path,
) -> None:
    with make_client(tmp_path, max_bulk_line_bytes=MiB) as client:
        api = Api(client)
        create(api)
        good = lines([{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(3)])
        status, answer, pulled = post_streamed(api, line_without_end(good, 64 * MiB), NDJSON)
        count = api.result("POST", "/collections/bulk/points/count", {})["count"]
    assert status == 400, answer
    error = answer["status"]["error"]
    assert "line 3 is longer than the limit of 1048576 bytes" in error
    assert "QUIVER_MAX_BULK_LINE_BYTES" in error
    assert answer["result"]["accepted"] == 3 and count == 3  # the rows before it
    assert pulled < 3 * MiB  # the bound, the reader's buffer and a piece; not 64 MiB


def test_an_ndjson_line_at_the_bound_loads_and_one_byte_more_is_refused(
    tmp_path: Path,
) -> None:
    with make_client(tmp_path, max_bulk_line_bytes=2048) as client:
        api = Api(client)
        create(api)
        status, answer = post(api, padded_point(1, 2048) + b"\n" + padded_point(2, 2048), NDJSON)
        assert status == 200 and answer["result"]["accepted"] == 2, answer
        status, answer = post(api, padded_point(3, 2048) + b"\n" + padded_point(4, 2049), NDJSON)
        assert status == 400 and "line 1 is longer" in answer["status"]["error"], answer
        assert answer["result"]["accepted"] == 1
        ids = {p["id"] for p in scroll_all(api)}
    assert ids == {1, 2, 3}


def test_chunk_rows_over_the_batch_limit_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with make_client(tmp_path, max_batch_points=500) as client:
        api = Api(client)
        create(api)
        status, answer = post(api, lines([{"id": 1, "vector": [1.0] * DIM}]), NDJSON,
                              chunk_rows=501)  # fmt: skip
        count = api.result("POST", "/collections/bulk/points/count", {})["count"]
    assert status == 400, answer
    assert "`chunk_rows` 501 exceeds the limit of 500" in answer["status"]["error"]
    assert count == 0


def test_an_ndjson_chunk_holds_no_more_text_than_one_upsert_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(tmp_path, max_request_bytes=4096) as client:
        api = Api(client)
        create(api)
        collection = client.app.state.engine.get("bulk")  # type: ignore[attr-defined]
        upsert = collection.upsert
        committed: list[int] = []

        def counting_upsert(ids: list[Any], *args: Any) -> Any:
            committed.append(len(ids))
            return upsert(ids, *args)

        monkeypatch.setattr(collection, "upsert", counting_upsert)
        body = lines([{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(300)])
        status, answer = post(api, body, NDJSON, chunk_rows=10_000)
    assert status == 200 and answer["result"]["accepted"] == 300, answer
    sizes = [len(line) + 1 for line in body.splitlines()]
    assert sum(committed) == 300 and len(committed) > 1
    assert max(committed) * min(sizes) < 4096 + max(sizes)  # commits once past the bound


def test_an_arrow_message_over_the_bound_stops_the_load_before_it_is_read(
    tmp_path: Path,
) -> None:
    size = 256
    with make_client(tmp_path, max_bulk_batch_bytes=MiB) as client:
        api = Api(client)
        api.result("PUT", "/collections/bulk", {"vectors": {"size": size, "distance": "Dot"}})
        small = arrow_batch(list(range(10)), np.ones((10, size)))
        large = arrow_batch(list(range(10, 16_394)), np.ones((16_384, size)))  # 16 MiB
        data = arrow_stream([small, large])
        status, answer, pulled = post_streamed(api, pieces(data), ARROW)
        count = api.result("POST", "/collections/bulk/points/count", {})["count"]
    assert status == 400, answer
    error = answer["status"]["error"]
    assert "over the limit of 1048576 bytes (QUIVER_MAX_BULK_BATCH_BYTES)" in error
    assert answer["result"]["accepted"] == 10 and count == 10
    assert pulled < 2 * MiB < len(data)
