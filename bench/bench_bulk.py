"""Bulk loading: JSON batch upserts vs an NDJSON stream vs an Arrow IPC stream, end to end.

For each data set (GloVe 50-d, 390,000 vectors; the Debian MiniLM 384-d set, 56,000) and
each way in, a fresh server process and collection (Cosine, default HNSW settings,
payload `{"word_id"|"row": i}`), then:

* **received**: points / seconds from the first byte sent until the last load request
  was answered (every point durably committed and searchable);
* **indexed**: seconds until the collection reports `green` (the HNSW index built over
  everything), counted from the same start.

JSON batches are 1,000-point `PUT .../points?wait=true` bodies, serialised before the
clock starts (as `bench_core.py` does). NDJSON and Arrow are one streamed request each
(`arrow_one_shot`: the same Arrow batches as one body serialised before the clock),
generated while sending (Arrow: record batches of 10,000 rows). The reference is the raw
library: faiss `IndexHNSWFlat` (M 16, efConstruction 100, the server's settings) built
in-process over the same vectors, plus Quiver's own `HnswIndex` built in chunks the way
the build worker does.

    python bench/bench_bulk.py            # ~4 min on 2 cores
    python bench/bench_bulk.py --quick    # 50,000 GloVe vectors only
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import glove
import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import cpu_busy_fraction, machine_info
from harness.results import pyplot
from harness.server import QuiverServer, headers
from text_embeddings import load_debian

from index.hnsw_faiss import HnswIndex, HnswParams
from index.metrics import Distance

JSON_BATCH = 1000
ARROW_BATCH = 10_000
NDJSON_LINES = 10_000
METHODS = ("json_batches", "ndjson_stream", "arrow_stream", "arrow_one_shot")
TARGET_RECEIVED = 150_000
TARGET_RATIO = 1.3


def json_bodies(vectors: np.ndarray) -> list[bytes]:
    return [
        orjson.dumps(
            {"points": [{"id": i, "vector": vectors[i], "payload": {"row": i}}
                        for i in range(s, min(s + JSON_BATCH, len(vectors)))]},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for s in range(0, len(vectors), JSON_BATCH)
    ]  # fmt: skip


def ndjson_body(vectors: np.ndarray) -> Iterator[bytes]:
    for s in range(0, len(vectors), NDJSON_LINES):
        yield b"".join(
            orjson.dumps({"id": i, "vector": vectors[i], "payload": {"row": i}},
                         option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
            for i in range(s, min(s + NDJSON_LINES, len(vectors)))
        )  # fmt: skip


def arrow_body(vectors: np.ndarray) -> Iterator[bytes]:
    dim = vectors.shape[1]
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), dim)),
                        ("row", pa.int64())])  # fmt: skip
    sink = io.BytesIO()
    writer = pyarrow.ipc.new_stream(sink, schema)
    for s in range(0, len(vectors), ARROW_BATCH):
        part = np.ascontiguousarray(vectors[s : s + ARROW_BATCH], dtype=np.float32)
        ids = pa.array(np.arange(s, s + len(part)), type=pa.int64())
        column = pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), dim)
        writer.write_batch(pa.RecordBatch.from_arrays([ids, column, ids], schema=schema))
        yield _drain(sink)
    writer.close()
    yield _drain(sink)


def bulk_load(client: httpx.Client, collection: str, vectors: np.ndarray) -> None:
    """``vectors`` (ids and a ``row`` payload 0..n-1) into ``collection`` as one streamed
    Arrow body: how the other benchmarks load their data."""
    client.post(
        f"/collections/{collection}/points/bulk",
        content=arrow_body(vectors),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    ).raise_for_status()


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def load_over_http(vectors: np.ndarray, method: str) -> dict[str, Any]:
    config = {"vectors": {"size": vectors.shape[1], "distance": "Cosine"}}
    bodies = json_bodies(vectors) if method == "json_batches" else []
    # the same Arrow batches as one body with a Content-Length, serialised before the clock
    one_shot = b"".join(arrow_body(vectors)) if method == "arrow_one_shot" else None
    with (
        QuiverServer() as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=1200) as client,
    ):
        client.put("/collections/bulk", json=config).raise_for_status()
        started = time.perf_counter()
        if method == "json_batches":
            for body in bodies:
                client.put(
                    "/collections/bulk/points?wait=true",
                    content=body,
                    headers={"content-type": "application/json"},
                ).raise_for_status()
            report = {"accepted": len(vectors), "rejected": 0}
        else:
            kind = "application/x-ndjson" if method == "ndjson_stream" else (
                "application/vnd.apache.arrow.stream")  # fmt: skip
            body_iter = ndjson_body(vectors) if method == "ndjson_stream" else arrow_body(vectors)
            content = body_iter if one_shot is None else one_shot
            response = client.post("/collections/bulk/points/bulk", content=content,
                                   headers={"content-type": kind})  # fmt: skip
            response.raise_for_status()
            report = response.json()["result"]
        received_s = time.perf_counter() - started
        while client.get("/collections/bulk").json()["result"]["status"] != "green":
            time.sleep(0.2)
        indexed_s = time.perf_counter() - started
        info = client.get("/collections/bulk").json()["result"]
        jobs = client.get("/collections/bulk/jobs").json()["result"]
    assert report["accepted"] == len(vectors) and info["points_count"] == len(vectors), report
    return {
        "method": method,
        "received_s": round(received_s, 2),
        "received_points_per_s": round(len(vectors) / received_s),
        "indexed_s": round(indexed_s, 2),
        "jobs": sorted({str(j["kind"]) for j in jobs}),
        "job_count": len(jobs),
        "indexed_vectors": info["indexed_vectors_count"],
    }


def in_process_builds(vectors: np.ndarray) -> dict[str, float]:
    prepared = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    prepared = np.ascontiguousarray(prepared, dtype=np.float32)
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(prepared.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    index.add(prepared)
    faiss_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = HnswIndex(prepared.shape[1], Distance.COSINE, HnswParams(m=16, ef_construct=100))
    for s in range(0, len(prepared), 10_000):
        ours.add(prepared[s : s + 10_000])
    quiver_s = time.perf_counter() - started
    return {"faiss_hnsw_s": round(faiss_s, 2), "quiver_hnsw_index_s": round(quiver_s, 2)}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Bulk loading, end to end", "",
        "Fresh server per row; received = all points committed and searchable; indexed = "
        "collection green (HNSW built). Command: `python bench/bench_bulk.py`.", "",
        "| data | method | received points/s | received s | indexed s | in-process faiss build s "
        "| indexed / faiss build | jobs |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]  # fmt: skip
    for data in results["datasets"]:
        ref = data["reference"]["faiss_hnsw_s"]
        for row in data["rows"]:
            lines.append(
                f"| {data['name']} ({data['n']:,} x {data['dim']}) | {row['method']} | "
                f"{row['received_points_per_s']:,} | {row['received_s']} | {row['indexed_s']} | "
                f"{ref} | {row['indexed_s'] / ref:.2f}x | {row['job_count']} {row['jobs']} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    labels, values = [], []
    for data in results["datasets"]:
        for row in data["rows"]:
            labels.append(f"{data['name']}\n{row['method']}")
            values.append(row["received_points_per_s"])
    ax.barh(labels, values)
    ax.axvline(TARGET_RECEIVED, color="red", linestyle="--", label="target (50-d binary)")
    ax.set_xlabel("points/s received")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = new_parser(__doc__, raw=True)
    add_common_options(parser, quick_help="50,000 GloVe vectors only")
    args = parser.parse_args()
    busy = cpu_busy_fraction()
    sets = [("glove-50", glove.load(50_000 if args.quick else None).base)]
    if not args.quick:
        sets.append(("minilm-384", load_debian().base))
    results: dict[str, Any] = {"machine": machine_info(), "cpu_busy_before": busy, "datasets": []}
    log(f"CPU busy before start {busy}")
    for name, vectors in sets:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        log(f"{name}: in-process builds")
        data = {"name": name, "n": len(vectors), "dim": vectors.shape[1],
                "reference": in_process_builds(vectors), "rows": []}  # fmt: skip
        log(f"  {data['reference']}")
        for method in METHODS:
            log(f"{name}: {method}")
            data["rows"].append(load_over_http(vectors, method))
            log(f"  {data['rows'][-1]}")
        results["datasets"].append(data)
    return finish(results, args, "bulk", markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
