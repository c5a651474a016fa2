"""Heap vs memory-mapped rows for the backends ``on_disk`` now reaches (issue 17 item 6).

Each index is built, written to a file, memory-mapped and read back with and without
``on_disk``; the heap the read-back allocates is measured with ``tracemalloc`` (numpy
reports its buffers to it), and a batch of queries is timed on each (warm page cache).
Also float32 vs uint8 multi-vector tokens. In process, no server::

    PYTHONPATH=. nice -n 10 python bench/bench_on_disk_rows.py
"""

from __future__ import annotations

import mmap
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.flat import FlatIndex, FlatParams
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, Ragged
from index.sparse import SparseIndex, SparseParams, SparseRows, SparseVector

RNG = np.random.default_rng(0)
MIB = 1 << 20


def mapped(folder: Path, name: str, data: bytes) -> memoryview:
    path = folder / name
    path.write_bytes(data)
    with open(path, "rb") as handle:
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def heap_of(load: Callable[[], Any]) -> tuple[Any, float]:
    tracemalloc.start()
    index = load()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return index, current / MIB


def timed(search: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        search()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def row(label: str, heap: float, index: Any, ms: float) -> None:
    parts = index.stats().parts or {}
    mapped_mib = sum(v for k, v in parts.items() if k.endswith("_mapped")) / MIB
    print(f"| {label} | {heap:.1f} | {mapped_mib:.1f} | {ms:.1f} |")


def flat(folder: Path) -> None:
    rows = RNG.standard_normal((100_000, 128)).astype(np.float32)
    queries = RNG.standard_normal((20, 128)).astype(np.float32)
    for on_disk in (False, True):
        built = FlatIndex(128, Distance.DOT, FlatParams(on_disk=on_disk))
        built.add(rows)
        view = mapped(folder, f"flat{on_disk}", built.to_bytes())
        index, heap = heap_of(lambda v=view: FlatIndex.from_bytes(v))
        ms = timed(lambda i=index: i.search(queries, 10))
        row(f"flat 100k x 128, on_disk {on_disk}", heap, index, ms)


def tokens(folder: Path) -> None:
    sets = [RNG.integers(0, 256, size=(32, 128)).astype(np.float32) for _ in range(5_000)]
    items = Ragged.from_arrays(sets, 128)
    queries = Ragged.from_arrays(sets[:4], 128)
    for storage, on_disk in (("float32", False), ("uint8", False), ("uint8", True)):
        built = MaxSimIndex(128, Distance.DOT, MaxSimParams(storage, on_disk))  # type: ignore[arg-type]
        built.add(items)
        view = mapped(folder, f"tokens{storage}{on_disk}", built.to_bytes())
        index, heap = heap_of(lambda v=view: MaxSimIndex.from_bytes(v))
        ms = timed(lambda i=index: i.search(queries, 10))
        row(f"maxsim 5k x 32 tokens, {storage}, on_disk {on_disk}", heap, index, ms)


def sparse(folder: Path) -> None:
    def vector() -> SparseVector:
        terms = RNG.choice(30_000, size=40, replace=False)
        return SparseVector.of(terms, RNG.random(40).astype(np.float32))

    rows = SparseRows.of([vector() for _ in range(100_000)])
    queries = [vector() for _ in range(20)]
    for on_disk in (False, True):
        built = SparseIndex(params=SparseParams(on_disk=on_disk))
        built.add(rows)
        view = mapped(folder, f"sparse{on_disk}", built.to_bytes())

        def load(v: memoryview = view) -> SparseIndex:
            index = SparseIndex.from_bytes(v)
            index.search(queries[:1], 10)  # builds the postings when they are not mapped
            return index

        index, heap = heap_of(load)
        ms = timed(lambda i=index: i.search(queries, 10))
        row(f"sparse 100k x 40 terms, on_disk {on_disk}", heap, index, ms)


def main() -> None:
    print("| index | heap after load (MiB) | mapped (MiB) | search (ms) |")
    print("|---|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as folder:
        flat(Path(folder))
        tokens(Path(folder))
        sparse(Path(folder))


if __name__ == "__main__":
    main()
