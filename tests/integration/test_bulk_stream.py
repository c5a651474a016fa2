"""Bulk loads against a real server process: bounded memory for a 1 GB body and for a
256 MB NDJSON line, and a client that disconnects mid-upload."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc
import pytest

from tests.helpers.process import QuiverProcess

pytestmark = pytest.mark.integration

DIM = 1024
ROWS_PER_BATCH = 4096
BODY_BYTES = 1 << 30
DISTINCT_IDS = 2000


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def arrow_body(total_bytes: int) -> Iterator[bytes]:
    """An Arrow IPC stream of ~``total_bytes`` of float32 vectors, generated as it is sent.
    Ids cycle over ``DISTINCT_IDS`` values, so the *stored* collection stays small and any
    growth of the server's memory would come from holding the body."""
    vectors = np.random.default_rng(0).standard_normal((ROWS_PER_BATCH, DIM)).astype(np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)
    schema = pa.schema([("id", pa.int64()), ("vector", column.type)])
    sink = io.BytesIO()
    writer = pyarrow.ipc.new_stream(sink, schema)
    sent, start = 0, 0
    while sent < total_bytes:
        ids = pa.array((np.arange(ROWS_PER_BATCH) + start) % DISTINCT_IDS, type=pa.int64())
        writer.write_batch(pa.RecordBatch.from_arrays([ids, column], schema=schema))
        start += ROWS_PER_BATCH
        chunk = sink.getvalue()
        sink.seek(0)
        sink.truncate()
        sent += len(chunk)
        yield chunk
    writer.close()
    yield sink.getvalue()


def test_a_1gb_arrow_stream_keeps_server_memory_bounded(quiver_process: QuiverProcess) -> None:
    url = quiver_process.url
    with httpx.Client(base_url=url, timeout=600) as client:
        config = {"vectors": {"size": DIM, "distance": "Dot"}}
        client.put("/collections/big", json=config).raise_for_status()
        before = peak_rss_bytes(quiver_process.pid)
        response = client.post(
            "/collections/big/points/bulk",
            content=arrow_body(BODY_BYTES),
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        assert response.status_code == 200, response.text
        report = response.json()["result"]
        assert report["rejected"] == 0
        assert report["accepted"] * DIM * 4 >= BODY_BYTES
        growth = peak_rss_bytes(quiver_process.pid) - before
        assert growth < BODY_BYTES // 4, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        count = client.post("/collections/big/points/count", json={}).json()["result"]["count"]
        assert count == DISTINCT_IDS


def test_a_client_that_disconnects_mid_upload_leaves_whole_chunks_only(
    quiver_process: QuiverProcess,
) -> None:
    url = quiver_process.url
    with httpx.Client(base_url=url, timeout=60) as client:
        client.put(
            "/collections/cut", json={"vectors": {"size": 4, "distance": "Dot"}}
        ).raise_for_status()
        rows = b"".join(
            orjson.dumps({"id": i, "vector": [1.0, 2.0, 3.0, float(i)]}) + b"\n" for i in range(250)
        )
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port)) as raw:
            head = (
                "POST /collections/cut/points/bulk?chunk_rows=100 HTTP/1.1\r\n"
                f"Host: {parts.hostname}\r\ncontent-type: application/x-ndjson\r\n"
                "content-length: 100000000\r\n\r\n"
            )
            raw.sendall(head.encode() + rows + b'{"id": 250, "vector": [1')
            time.sleep(1.0)
        deadline = time.monotonic() + 10
        count = -1
        while time.monotonic() < deadline:
            count = client.post("/collections/cut/points/count", json={}).json()["result"]["count"]
            if count == 200:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        final = client.post("/collections/cut/points/count", json={}).json()["result"]["count"]
        assert count == final == 200  # two whole chunks of 100; the rest never committed
        assert client.get("/healthz").status_code == 200
        ids = client.post("/collections/cut/points/scroll", json={"limit": 500}).json()["result"]
        assert [p["id"] for p in ids["points"]] == list(range(200))


def read_response(raw: socket.socket) -> str:
    """One HTTP/1.1 response with a content-length, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += raw.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += raw.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_256mb_ndjson_line_is_refused_with_server_memory_bounded(
    quiver_process: QuiverProcess,
) -> None:
    """The whole line is sent, as a careless client would; the server stops reading it at
    QUIVER_MAX_BULK_LINE_BYTES (16 MiB) and drops the rest (before: +2 bytes of RSS per byte)."""
    url = quiver_process.url
    total = 256 << 20
    with httpx.Client(base_url=url, timeout=60) as client:
        config = {"vectors": {"size": 4, "distance": "Dot"}}
        client.put("/collections/line", json=config).raise_for_status()
        before = peak_rss_bytes(quiver_process.pid)
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=60) as raw:
            raw.sendall(
                "POST /collections/line/points/bulk HTTP/1.1\r\n"
                f"Host: {parts.hostname}\r\ncontent-type: application/x-ndjson\r\n"
                f"content-length: {total}\r\n\r\n".encode()
            )
            piece = b"7" * (1 << 20)
            for _ in range(total // len(piece)):
                raw.sendall(piece)
            head = read_response(raw)
        growth = peak_rss_bytes(quiver_process.pid) - before
        assert head.startswith("HTTP/1.1 400"), head
        assert "QUIVER_MAX_BULK_LINE_BYTES" in head
        assert growth < 96 << 20, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        assert client.get("/healthz").status_code == 200
