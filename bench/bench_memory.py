"""Memory per point (issue 24): anonymous RSS growth of a real server process per point,
after loading and indexing and again after a restart, against the bytes its indexes
report (`vectors_memory`) and the whole per-collection memory it reports (`memory`).

Each data set runs in its own fresh server: read `/proc/PID/smaps_rollup` (Anonymous)
empty, upload the points over HTTP (JSON batches of 1000, no payload), wait until the
collection is green (every index built), read it again, SIGTERM, relaunch on the same
folder, wait green, read it a third time. Target: growth <= 1.25 x index bytes + 32 B a
point, after the build and after the restart; an empty server under 100 MB RSS.

Data sets: `glove` (GloVe-50, 390k, HNSW m 16; `--points` above 390k tiles it with seeded
noise, renormalised) and `int8-384` (seeded Gaussian 384-d unit vectors, standing in for
MiniLM-384, with scalar int8 quantization; originals stay on disk, memory-mapped).

    nice -n 10 .venv/bin/python bench/bench_memory.py                # both, 390k / 100k
    nice -n 10 .venv/bin/python bench/bench_memory.py --sets glove --points 50000
    nice -n 10 .venv/bin/python bench/bench_memory.py --sets glove --pgvector  # + PostgreSQL
    nice -n 10 .venv/bin/python bench/bench_memory.py --sets glove --points 2000000 --arrow

``--pgvector`` loads the same vectors into PostgreSQL + pgvector (pgvector_memory.py) right
after each set's Quiver server has stopped, and reports the cluster's memory beside it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import glove
import httpx
import minilm_memory
import numpy as np
import orjson
import pgvector_memory
from harness.server import QuiverServer, free_port, headers

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 1000
TARGET_RATIO, TARGET_EXTRA_B, EMPTY_LIMIT_MB = 1.25, 32.0, 100.0
EMPTY_SETTLE_S = 15.0


def memory_of(pid: int) -> dict[str, int]:
    """Rss and Anonymous of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Anonymous"):
            out[key.lower()] = int(rest.split()[0]) * 1024
    return out


def glove_vectors(points: int) -> np.ndarray:
    """GloVe's first ``points`` rows; above its 390k, the rows again with seeded noise
    (renormalised), built once and cached in bench/data/glove_tiled_<points>.npy."""
    base: np.ndarray = glove._load_split(glove.DATA_DIR)[0]
    if points <= len(base):
        return base[:points]
    cached = Path(glove.DATA_DIR) / f"glove_tiled_{points}.npy"
    if cached.exists():
        return np.load(cached)
    tiled = _tiled(base, points)
    np.save(cached, tiled)
    return tiled


def _tiled(base: np.ndarray, points: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    copies = [base] + [
        base + rng.normal(scale=0.05, size=base.shape).astype(np.float32)
        for _ in range(points // len(base))
    ]
    tiled = np.concatenate(copies)[:points]
    tiled /= np.linalg.norm(tiled, axis=1, keepdims=True)
    return tiled


def gaussian_unit(points: int, dim: int) -> np.ndarray:
    vectors = np.random.default_rng(11).normal(size=(points, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def collection_body(name: str, dim: int) -> dict[str, Any]:
    body: dict[str, Any] = {"vectors": {"size": dim, "distance": "Cosine"}}
    if name in ("int8-384", minilm_memory.SET_NAME):
        body["quantization_config"] = {"scalar": {"type": "int8", "always_ram": True}}
    return body


def upload(client: httpx.Client, url: str, vectors: np.ndarray) -> None:
    for start in range(0, len(vectors), BATCH):
        chunk = vectors[start : start + BATCH]
        points = [{"id": start + i, "vector": v} for i, v in enumerate(chunk.tolist())]
        body = orjson.dumps({"points": points})
        response = client.put(f"{url}/points?wait=true", content=body)
        response.raise_for_status()


def upload_arrow(client: httpx.Client, url: str, vectors: np.ndarray) -> None:
    """The same points (ids and vectors, no payload) as one streamed Arrow body to the
    bulk endpoint (bench_bulk.py): ~3x faster than JSON batches, for the 2M run. The
    server loads pyarrow with it (~27 MB RSS, in the growth after the build only)."""
    import pyarrow as pa
    import pyarrow.ipc

    dim = vectors.shape[1]
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), dim))])

    def body() -> Iterator[bytes]:
        sink = io.BytesIO()
        writer = pyarrow.ipc.new_stream(sink, schema)
        for start in range(0, len(vectors), 10 * BATCH):
            part = np.ascontiguousarray(vectors[start : start + 10 * BATCH], dtype=np.float32)
            ids = pa.array(np.arange(start, start + len(part)), type=pa.int64())
            rows = pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), dim)
            writer.write_batch(pa.RecordBatch.from_arrays([ids, rows], schema=schema))
            yield _drained(sink)
        writer.close()
        yield _drained(sink)

    kind = {"content-type": "application/vnd.apache.arrow.stream"}
    response = client.post(f"{url}/points/bulk", content=body(), headers=kind)
    response.raise_for_status()
    report = response.json()["result"]
    if report["accepted"] != len(vectors):
        raise RuntimeError(f"bulk load took {report['accepted']} of {len(vectors)}: {report}")


def _drained(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def wait_green(client: httpx.Client, url: str, timeout_s: float = 3600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(url)
        if response.status_code == 200:
            info: dict[str, Any] = response.json()["result"]
            if info["status"] == "green":
                return info
        time.sleep(1.0)
    raise RuntimeError(f"{url} not green after {timeout_s:.0f}s")


def measure(name: str, vectors: np.ndarray, arrow: bool = False) -> dict[str, Any]:
    """One data set in one fresh server: empty, loaded + built, restarted."""
    points = len(vectors)
    with (
        QuiverServer(startup_timeout_s=600) as server,
        httpx.Client(timeout=600, headers=headers()) as client,
    ):
        time.sleep(EMPTY_SETTLE_S)  # past the start's warm-up (QUIVER_WARM_UP)
        empty = memory_of(server.pid)
        url = f"{server.url}/collections/bench"
        client.put(url, json=collection_body(name, vectors.shape[1])).raise_for_status()
        started = time.perf_counter()
        arrow = arrow or name == minilm_memory.SET_NAME  # 384-d JSON is mostly parsing
        (upload_arrow if arrow else upload)(client, url, vectors)
        info = wait_green(client, url)
        built_s = time.perf_counter() - started
        loaded = memory_of(server.pid)
        server.terminate()
        server.relaunch()
        server._wait_healthy()
        restarted_info = wait_green(client, url)
        restarted = memory_of(server.pid)
    index_bytes = sum(
        size
        for memory in info["vectors_memory"].values()
        for part, size in memory["bytes"].items()
        if part != "originals_mapped"  # page cache (the segment file), not anonymous memory
    )
    return {
        "set": name,
        "points": points,
        "dim": int(vectors.shape[1]),
        "upload": "arrow" if arrow else "json",
        "load_and_build_s": round(built_s, 1),
        "empty_rss_mb": round(empty["rss"] / 2**20, 1),
        "empty_anon_mb": round(empty["anonymous"] / 2**20, 1),
        "loaded_anon_mb": round(loaded["anonymous"] / 2**20, 1),
        "restarted_anon_mb": round(restarted["anonymous"] / 2**20, 1),
        "growth_b_per_point": round((loaded["anonymous"] - empty["anonymous"]) / points, 1),
        "restart_growth_b_per_point": round(
            (restarted["anonymous"] - empty["anonymous"]) / points, 1
        ),
        "index_b_per_point": round(index_bytes / points, 1),
        "vectors_memory": info["vectors_memory"],
        "reported": info.get("memory"),
        "reported_after_restart": restarted_info.get("memory"),
    }


def verdict(row: dict[str, Any]) -> dict[str, Any]:
    target = TARGET_RATIO * row["index_b_per_point"] + TARGET_EXTRA_B
    return row | {
        "target_b_per_point": round(target, 1),
        "meets_target": row["growth_b_per_point"] <= target
        and row["restart_growth_b_per_point"] <= target,
        "empty_under_limit": row["empty_rss_mb"] < EMPTY_LIMIT_MB,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| set | points | empty RSS / anon (MB) | growth B/pt (built) | growth B/pt (restart) "
        "| index B/pt | reported B/pt | target B/pt | met |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['set']} | {r['points']:,} | {r['empty_rss_mb']} / {r['empty_anon_mb']} "
        f"| {r['growth_b_per_point']} | {r['restart_growth_b_per_point']} "
        f"| {r['index_b_per_point']} | {(r['reported'] or {}).get('bytes_per_point')} "
        f"| {r['target_b_per_point']} | {'yes' if r['meets_target'] else 'no'} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def pgvector_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "\n| pgvector (same vectors) | points | empty PSS (MB) | after build: PSS MB "
        "(growth B/pt) | buffers used MB | after restart + prewarm: PSS MB (growth B/pt) "
        "| HNSW on disk B/pt |\n|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['of']} | {r['points']:,} | {r['empty_pss_mb']} "
        f"| {r['loaded_pss_mb']} ({r['growth_b_per_point']}) | {r['loaded_buffers_mb']} "
        f"| {r['restarted_pss_mb']} ({r['restart_growth_b_per_point']}) "
        f"| {r['index_b_per_point']} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n" if rows else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="glove,int8-384")
    parser.add_argument(
        "--pgvector", action="store_true", help="also PostgreSQL + pgvector on each set"
    )
    parser.add_argument("--points", type=int, default=390_000, help="GloVe points")
    parser.add_argument("--int8-points", type=int, default=100_000)
    parser.add_argument("--minilm-points", type=int, default=390_000)  # minilm_memory.py
    parser.add_argument("--label", default="", help="suffix of the result files")
    parser.add_argument(
        "--arrow", action="store_true", help="upload as one Arrow stream (bulk endpoint)"
    )
    args = parser.parse_args()
    rows, postgres = [], []
    missing = pgvector_memory.available() if args.pgvector else None
    for name in args.sets.split(","):
        if name == "glove":
            vectors = glove_vectors(args.points)
        elif name == minilm_memory.SET_NAME:
            vectors = minilm_memory.minilm_vectors(args.minilm_points)
        else:
            vectors = gaussian_unit(args.int8_points, 384)
        rows.append(verdict(measure(name, vectors, args.arrow)))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if args.pgvector and missing is None:
            # a free port: another run's throwaway cluster may hold the default one
            postgres.append(pgvector_memory.measure(vectors, free_port()) | {"of": name})
            print(json.dumps(postgres[-1]), file=sys.stderr, flush=True)
    text = table(rows) + pgvector_table(postgres)
    if missing is not None:
        text += f"\npgvector not measured: {missing}\n"
    print(text)
    stem = RESULTS / f"memory{('_' + args.label) if args.label else ''}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(rows + postgres, indent=2) + "\n")


if __name__ == "__main__":
    main()
