"""CPU time per plain `/points/query` request through the whole ASGI app, no sockets.

Drives Quiver's app (every middleware, the lean path of `server/api/fast_search.py`, the
engine, the renderer) in this process on one uvloop loop, over a small collection (2,000
random 50-d vectors, so search itself is cheap and the request machinery shows), and
reports the process CPU time per request: for plain bodies (the lean path) and for the
same bodies with one extra key the lean path leaves to the full FastAPI route; then plain
bodies through the server's HTTP protocol on an in-memory transport, answered by the
direct lane (``server/api/direct_lane.py``) and with it off. CPU time
is far less disturbed by other load on a shared machine than a wall-clock rate.

    .venv/bin/python bench/bench_request_cpu.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the working tree's server/
os.environ.setdefault("QUIVER_GRPC_PORT", "0")
os.environ.setdefault("QUIVER_WARM_UP", "0")

import numpy as np
import orjson
import uvloop

from server.main import create_app
from server.settings import Settings
from tests.helpers.wire import request, wire

N_POINTS = 2000
DIM = 50
PATH = "/collections/c/points/query"


async def call(app: Any, method: str, path: str, body: bytes = b"", query: bytes = b"") -> int:
    """One request through the app; its status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(app: Any, bodies: list[bytes], requests: int) -> float:
    """Microseconds of process CPU per request (after 50 untimed ones)."""
    for body in bodies[:50]:
        await call(app, "POST", PATH, body)
    started = time.process_time()
    for i in range(requests):
        status = await call(app, "POST", PATH, bodies[i % len(bodies)])
        if status != 200:
            raise RuntimeError(f"query answered {status}")
    return (time.process_time() - started) / requests * 1e6


async def main(requests: int) -> None:
    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp())))
    async with app.router.lifespan_context(app):
        create = orjson.dumps({"vectors": {"size": DIM, "distance": "Cosine"}})
        await call(app, "PUT", "/collections/c", create)
        x = np.random.default_rng(0).random((N_POINTS, DIM), dtype=np.float32)
        points = [{"id": i, "vector": x[i]} for i in range(N_POINTS)]
        upsert = orjson.dumps({"points": points}, option=orjson.OPT_SERIALIZE_NUMPY)
        await call(app, "PUT", "/collections/c/points", upsert, b"wait=true")
        plain = [{"query": v, "limit": 10, "params": {"hnsw_ef": 96}} for v in x[:500]]
        bodies = {
            "lean path (plain body)": plain,
            "full route (same body + lookup_from: null)": [
                b | {"lookup_from": None} for b in plain
            ],
        }
        encoded = {
            name: [orjson.dumps(b, option=orjson.OPT_SERIALIZE_NUMPY) for b in group]
            for name, group in bodies.items()
        }
        for turn in range(2):
            for name, group in encoded.items():
                micros = await cpu_per_request(app, group, requests)
                print(f"turn {turn + 1}: {name}: {micros:,.0f} us CPU per request", flush=True)


def through_protocol(requests: int, lane: bool) -> float:
    """Microseconds of process CPU per plain query sent through the server's HTTP protocol
    (``GuardedHttpProtocol``: parsing, the direct lane or the ASGI app, the response
    write) on an in-memory transport, one request at a time on one keep-alive connection
    (after 50 untimed). Includes the harness's own wait for each answer, alike for both."""
    with wire(Path(tempfile.mkdtemp()), direct_lane=lane) as served:
        connection = served.connect()
        create = {"vectors": {"size": DIM, "distance": "Cosine"}}
        connection.send(request("PUT", "/collections/c", create))
        x = np.random.default_rng(0).random((N_POINTS, DIM), dtype=np.float32)
        points = orjson.dumps({"points": [{"id": i, "vector": x[i]} for i in range(N_POINTS)]},
                              option=orjson.OPT_SERIALIZE_NUMPY)  # fmt: skip
        connection.send(request("PUT", "/collections/c/points?wait=true", points))
        bodies = [request("POST", PATH, orjson.dumps({"query": v.tolist(), "limit": 10}))
                  for v in x[:500]]  # fmt: skip
        for body in bodies[:50]:
            connection.send(body)
        started = time.process_time()
        for i in range(requests):
            (answer,) = connection.send(bodies[i % len(bodies)])
            if answer.status != 200:
                raise RuntimeError(f"query answered {answer.status}")
        return (time.process_time() - started) / requests * 1e6


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per turn")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    uvloop.run(main(args.requests))
    for turn in range(2):
        for lane, name in ((True, "direct lane"), (False, "ASGI app (QUIVER_DIRECT_LANE=false)")):
            micros = through_protocol(args.requests, lane)
            print(f"turn {turn + 1}: through the protocol, {name}: {micros:,.0f} us CPU per "
                  "request", flush=True)  # fmt: skip
