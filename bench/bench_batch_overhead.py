"""Where the time of an HTTP batch search goes, next to raw faiss (issue 3's batch target).

GloVe-50 (390k base vectors, Cosine, M=16, ef_construct=100), batches of 100 queries at
``hnsw_ef`` 128 (the smallest ef whose recall@10 reaches 0.95), one client in order, each
cell the median of 5 passes over 1,000 queries:

* faiss in process: ``IndexHNSWFlat`` built from the same vectors, searched directly;
* Quiver's engine in process: ``Collection.query``, the engine's public entry point that
  the query route calls, on an engine that bulk-loaded and indexed the same vectors, with
  one ``Query`` per search (raw vector, limit, ``hnsw_ef``) as the route builds them, so it
  measures the engine's work around faiss (the bodies are parsed before the clock);
* Quiver over HTTP: the same batches as JSON to a real server holding the collection;
* the HTTP floor of a batch: the same bodies to a collection of the same dimension with
  no points, so parsing, validation, routing and the reply cost the same and searching
  costs nothing.

The HTTP / faiss ratio is issue 3's target (>= 0.75); the last column says what ratio
the floor alone would allow, ``faiss / (faiss + floor)``.

    python bench/bench_batch_overhead.py        # ~3 min
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import glove
import httpx
import numpy as np
import orjson
from bench_bulk import bulk_load
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import cpu_busy_fraction, machine_info
from harness.results import pyplot
from harness.server import QuiverServer, headers

from index.base import SearchParams
from index.native_threads import single_threaded_numpy_blas
from server.engine.config import CollectionConfig
from server.engine.engine import Engine
from server.engine.protocols import CollectionHandle
from server.engine.requests import Query

EF = 128
BATCH = 100
QUERIES = 1000
PASSES = 5
K = 10


def median_ms_per_batch(run: Callable[[], Any]) -> float:
    """Median over ``PASSES`` passes (after one untimed pass) of a pass's time per batch."""
    run()
    passes = []
    for _ in range(PASSES):
        started = time.perf_counter()
        run()
        passes.append(time.perf_counter() - started)
    return float(np.median(passes)) * 1000 / (QUERIES / BATCH)


def bodies(queries: np.ndarray) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "searches": [
                    {"query": v.tolist(), "limit": K, "params": {"hnsw_ef": EF}}
                    for v in queries[s : s + BATCH]
                ]
            }
        )
        for s in range(0, len(queries), BATCH)
    ]


def faiss_ms(data: glove.GloveDataset, queries: np.ndarray) -> float:
    index = faiss.IndexHNSWFlat(data.dimension, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    base = data.base / np.linalg.norm(data.base, axis=1, keepdims=True)
    index.add(base.astype(np.float32))
    index.hnsw.efSearch = EF
    unit = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    return median_ms_per_batch(
        lambda: [index.search(unit[s : s + BATCH], K) for s in range(0, QUERIES, BATCH)]
    )


def engine_ms(data: glove.GloveDataset, batches: list[bytes], root: Path) -> float:
    engine = Engine(root / "engine")
    try:
        engine.create("c", collection_config(data.dimension))
        collection = engine.get("c")
        ids = list(range(data.n_base))
        with collection.bulk_loading():
            for s in range(0, data.n_base, 50_000):
                rows = ids[s : s + 50_000]
                collection.bulk_upsert(rows, {"": data.base[s : s + len(rows)]}, [{}] * len(rows))
        engine.worker.wait_idle("c", 1800)
        raws = [[search["query"] for search in orjson.loads(b)["searches"]] for b in batches]
        return median_ms_per_batch(lambda: [engine_batch(collection, raw) for raw in raws])
    finally:
        engine.close()


def engine_batch(collection: CollectionHandle, raw_queries: list[list[float]]) -> list[Any]:
    """One batch through ``Collection.query``, built as the query route builds it."""
    params = SearchParams(ef=EF)
    return collection.query([Query(vector=raw, limit=K, params=params) for raw in raw_queries])


def collection_config(dim: int) -> CollectionConfig:
    return CollectionConfig.model_validate(
        {"vectors": {"": {"size": dim, "distance": "Cosine"}}, "named_vectors": False}
    )


def http_ms(data: glove.GloveDataset, batches: list[bytes]) -> tuple[float, float]:
    """(loaded collection, empty collection) milliseconds per batch over HTTP."""
    with QuiverServer(env={"QUIVER_IDLE_SEAL_S": "0"}) as server:
        client = httpx.Client(base_url=server.url, headers=headers(), timeout=600)
        body = {"vectors": {"size": data.dimension, "distance": "Cosine"}}
        for name in ("glove", "empty"):
            client.put(f"/collections/{name}", json=body).raise_for_status()
        bulk_load(client, "glove", data.base)
        while client.get("/collections/glove").json()["result"]["status"] != "green":
            time.sleep(1)

        def send(name: str) -> Callable[[], None]:
            def run() -> None:
                for b in batches:
                    answer = client.post(f"/collections/{name}/points/query/batch", content=b)
                    answer.raise_for_status()
                    orjson.loads(answer.content)

            return run

        return median_ms_per_batch(send("glove")), median_ms_per_batch(send("empty"))


def markdown(results: dict[str, Any]) -> str:
    r = results["ms_per_batch"]
    return "\n".join(
        [
            f"# HTTP batch search vs faiss, GloVe-50 {results['points']:,} points, ef {EF}",
            "",
            "Command: `python bench/bench_batch_overhead.py`. Milliseconds per batch of "
            f"{BATCH} queries, median of {PASSES} passes over {QUERIES:,} queries, one client.",
            "",
            "| faiss in process | Quiver engine in process | Quiver HTTP | HTTP floor (empty "
            "collection) | HTTP / faiss throughput | faiss / (faiss + floor) |",
            "|--:|--:|--:|--:|--:|--:|",
            f"| {r['faiss']:.2f} | {r['engine']:.2f} | {r['http']:.2f} | {r['http_floor']:.2f} "
            f"| {r['faiss'] / r['http']:.2f} | {r['faiss'] / (r['faiss'] + r['http_floor']):.2f} |",
            "",
        ]
    )


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    r = results["ms_per_batch"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["faiss", "engine", "HTTP", "HTTP floor"]
    ax.bar(labels, [r["faiss"], r["engine"], r["http"], r["http_floor"]])
    ax.set_ylabel(f"ms per batch of {BATCH}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = new_parser(__doc__, raw=True)
    add_common_options(parser)
    args = parser.parse_args()
    single_threaded_numpy_blas()  # as the server does (index/native_threads.py)
    busy = cpu_busy_fraction()
    data = glove.load()
    queries = data.queries[:QUERIES]
    batches = bodies(queries)
    log("faiss")
    faiss_time = faiss_ms(data, queries)
    log("engine in process")
    with tempfile.TemporaryDirectory() as tmp:
        engine_time = engine_ms(data, batches, Path(tmp))
    log("HTTP")
    http_time, floor_time = http_ms(data, batches)
    results = {
        "machine": machine_info(),
        "cpu_busy_before": busy,
        "points": data.n_base,
        "ms_per_batch": {
            "faiss": faiss_time,
            "engine": engine_time,
            "http": http_time,
            "http_floor": floor_time,
        },
    }
    return finish(results, args, "batch_overhead", markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
