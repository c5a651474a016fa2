"""Heap vs memory-mapped for the stores ``on_disk`` reached last (issue 17 item 6): the
float HNSW graph's links alone (``hnsw_config.on_disk``), the quantized codes and graph
(``on_disk``, ``always_ram``), LeanVec's codes and graph, and the appendable tail's rows.

Each index is built once on GloVe-50 (first 50k base vectors, Cosine), written to a file
with each placement's params, memory-mapped and read back; the heap the read-back keeps
is glibc's bytes in use (``mallinfo2``: faiss allocates with ``new``, which tracemalloc
does not see) after minus before. Then queries/s (batches of 100, warm page cache) and
recall@10 of each placement in the same run, and whether its answers equal the heap
copy's. The tail is an ``AppendableSegment`` holding the 50k rows, searched exactly::

    PYTHONPATH=. nice -n 10 python bench/bench_on_disk_stores.py   # bench/results/on_disk_stores.*
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import mmap
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.base import SearchParams
from index.hnsw_faiss import HnswIndex, HnswParams
from index.leanvec_index import LeanVecIndex, LeanVecParams
from index.metrics import Distance
from index.quantization import QuantizedParams, ScalarQuantizedIndex
from server.engine.segment import AppendableSegment, PointBatch

DATA = Path(__file__).parent / "data"
RESULTS = Path(__file__).parent / "results"
N_BASE, N_QUERIES, K, BATCH, EF = 50_000, 1_000, 10, 100, 64
MIB = 1 << 20
SEARCH = SearchParams(ef=EF)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _Mallinfo2


def heap_in_use() -> int:
    gc.collect()
    info = _LIBC.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = np.ascontiguousarray(np.load(DATA / "base.npy", mmap_mode="r")[:N_BASE])
    queries = np.load(DATA / "queries.npy")[:N_QUERIES]
    truth = np.load(DATA / "gt_ids_50000.npy")[:N_QUERIES, :K]
    return base.astype(np.float32), queries.astype(np.float32), truth


def mapped(folder: Path, name: str, data: bytes) -> memoryview:
    path = folder / name
    path.write_bytes(data)
    with open(path, "rb") as handle:
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def timed(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[Any, float]:
    search(queries[:BATCH])  # pages in what a first query touches
    best, found = float("inf"), np.zeros(0)
    for _ in range(3):
        start = time.perf_counter()
        found = np.vstack([search(queries[i : i + BATCH]) for i in range(0, len(queries), BATCH)])
        best = min(best, time.perf_counter() - start)
    return found, len(queries) / best


def placements(store: str) -> dict[str, dict[str, Any]]:
    """Params per placement label (the first is the in-memory reference)."""
    if store == "hnsw":
        return {"in memory": {}, "on_disk (rows + links)": {"on_disk": True},
                "hnsw on_disk (links)": {"graph_on_disk": True}}  # fmt: skip
    if store == "leanvec":
        return {"in memory": {}, "on_disk + hnsw on_disk": {"on_disk": True, "graph_on_disk": True}}
    return {
        "in memory": {},
        "on_disk (codes mapped)": {"on_disk": True},
        "on_disk, always_ram (codes in RAM)": {"on_disk": True, "always_ram": True},
        "on_disk + hnsw on_disk": {"on_disk": True, "graph_on_disk": True},
    }


def built_index(store: str, base: np.ndarray) -> Any:
    dim, distance = base.shape[1], Distance.COSINE
    index: Any
    if store == "hnsw":
        index = HnswIndex(dim, distance, HnswParams(ef_construct=100))
    elif store == "leanvec":
        index = LeanVecIndex(dim, distance, LeanVecParams())
    else:
        index = ScalarQuantizedIndex(dim, distance, QuantizedParams())
    for first in range(0, len(base), 10_000):
        index.add(base[first : first + 10_000])
    index.stats()  # a two-stage index moves its float graph into the codes' index
    return index


def store_rows(store: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
               folder: Path) -> list[dict[str, Any]]:  # fmt: skip
    index = built_index(store, base)
    rows, reference, built_with = [], None, index.params
    for label, knobs in placements(store).items():
        index.params = dataclasses.replace(built_with, **knobs)
        view = mapped(folder, f"{store}-{len(rows)}", index.to_bytes())
        before = heap_in_use()
        loaded = type(index).from_bytes(view)
        heap = heap_in_use() - before
        found, qps = timed(lambda q, i=loaded: i.search(q, K, params=SEARCH)[0], queries)
        reference = found if reference is None else reference
        parts = loaded.stats().parts or {}
        rows.append({
            "store": store, "placement": label, "heap_mib": round(heap / MIB, 2),
            "mapped_mib": round(sum(v for k, v in parts.items() if k.endswith("_mapped")) / MIB, 2),
            "qps": round(qps, 1), "recall_at_10": round(recall(found, truth), 4),
            "same_answers": bool(np.array_equal(found, reference)),
        })  # fmt: skip
        del loaded
    return rows


def tail_rows(base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
              folder: Path) -> list[dict[str, Any]]:  # fmt: skip
    rows, reference = [], None
    ids = list(range(len(base)))
    batch = PointBatch(ids, {"": base}, {"": np.ones(len(base), dtype=bool)}, [{}] * len(base))
    for label, where in (("in memory", {}), ("on_disk (scratch file)", {"": folder})):
        before = heap_in_use()
        tail = AppendableSegment({"": (base.shape[1], Distance.COSINE)}, mapped=where)
        tail.upsert(batch, 1)
        heap = heap_in_use() - before
        found, qps = timed(lambda q, t=tail: t.search("", q, K, None)[0], queries)
        reference = found if reference is None else reference
        parts = tail.bookkeeping_bytes()
        rows.append({
            "store": "appendable tail (exact)", "placement": label,
            "heap_mib": round(heap / MIB, 2), "vectors_heap_mib": round(parts["vectors"] / MIB, 2),
            "mapped_mib": round(parts.get("vectors_mapped", 0) / MIB, 2), "qps": round(qps, 1),
            "recall_at_10": round(recall(found, truth), 4),
            "same_answers": bool(np.array_equal(found, reference)),
        })  # fmt: skip
        del tail
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# on_disk stores: heap vs mapped ({results['dataset']})",
        "",
        f"ef {EF}, batches of {BATCH} queries; heap = glibc bytes in use kept by the load "
        "(the tail: by the upsert of every row). Same run, same machine.",
        "",
        "| store | placement | heap after load (MiB) | mapped (MiB) | q/s | recall@10 | "
        "answers = in memory |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['store']} | {row['placement']} | {row['heap_mib']:.1f} | "
            f"{row['mapped_mib']:.1f} | {row['qps']:,.0f} | {row['recall_at_10']:.4f} | "
            f"{'yes' if row['same_answers'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    base, queries, truth = load()
    base /= np.linalg.norm(base, axis=1, keepdims=True)  # no-ops on the cached split
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=DATA) as folder:  # on disk, not a tmpfs
        for store in ("hnsw", "scalar int8", "leanvec"):
            rows += store_rows(store, base, queries, truth, Path(folder))
            print(json.dumps(rows[-len(placements(store)) :]), flush=True)
        rows += tail_rows(base, queries, truth, Path(folder))
    results = {
        "dataset": f"GloVe-50, first {N_BASE:,} base vectors, {N_QUERIES:,} queries, Cosine",
        "machine": {"python": platform.python_version(), "faiss": faiss.__version__},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "on_disk_stores.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "on_disk_stores.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
