"""``HnswParams.on_disk``: read back from a memory-mapped file, the graph's rows are
faiss views into that file (not a copy), with the same answers as an in-memory graph."""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from index.hnsw_faiss import HnswIndex, HnswParams
from index.metrics import Distance

ROWS = np.random.default_rng(1).normal(size=(400, 8)).astype(np.float16).astype(np.float32)


def mapped(path: Path, data: bytes) -> memoryview:
    path.write_bytes(data)
    with open(path, "rb") as handle:
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def rows_address(index: HnswIndex) -> int:
    storage: Any = faiss.downcast_index(index._index.storage)
    return int(storage.codes.data())


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_rows_of_a_mapped_on_disk_graph_point_into_the_file(tmp_path: Path, storage: str) -> None:
    params = HnswParams(storage=storage, on_disk=True)  # type: ignore[arg-type]
    built = HnswIndex(8, Distance.EUCLID, params)
    built.add(ROWS)
    view = mapped(tmp_path / "index", built.to_bytes())
    loaded = HnswIndex.from_bytes(view)
    start = np.frombuffer(view, dtype=np.uint8).ctypes.data
    assert loaded.file_backed
    assert start <= rows_address(loaded) < start + len(view)
    assert start <= int(loaded._index.hnsw.neighbors.data()) < start + len(view)
    stats = loaded.stats().parts or {}
    width = 2 if storage == "float16" else 4
    assert stats["vectors"] == 0 and stats["vectors_mapped"] == ROWS.size * width
    assert stats["graph_mapped"] + stats["graph"] == built.stats().parts["graph"]  # type: ignore[index]
    assert loaded.stats().memory_bytes == stats["graph"] + stats["tombstones"]
    (ids, scores), (want_ids, want_scores) = loaded.search(ROWS[:5], 10), built.search(ROWS[:5], 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    assert np.array_equal(loaded.vectors(), built.vectors())
    grown = HnswIndex.from_bytes(loaded.to_bytes())  # an incremental build's copy, then added to
    grown.add(ROWS[:3])
    assert grown.count == len(ROWS) + 3 and not grown.file_backed


def test_bytes_or_in_memory_params_load_an_ordinary_copy(tmp_path: Path) -> None:
    plain = HnswIndex(8, Distance.DOT)
    plain.add(ROWS)
    assert not HnswIndex.from_bytes(mapped(tmp_path / "plain", plain.to_bytes())).file_backed
    disk = HnswIndex(8, Distance.DOT, HnswParams(on_disk=True))
    disk.add(ROWS)
    loaded = HnswIndex.from_bytes(disk.to_bytes())
    assert not loaded.file_backed and loaded.stats().parts == plain.stats().parts


def test_mapped_leaves_an_in_memory_graph_in_its_file(tmp_path: Path) -> None:
    """Multi-process serving maps every graph, ``on_disk`` or not (``shared_graphs.py``)."""
    plain = HnswIndex(8, Distance.DOT)
    plain.add(ROWS)
    view = mapped(tmp_path / "plain", plain.to_bytes())
    loaded = HnswIndex.from_bytes(view, mapped=True)
    start = np.frombuffer(view, dtype=np.uint8).ctypes.data
    assert loaded.file_backed and not loaded.params.on_disk
    assert start <= rows_address(loaded) < start + len(view)
    assert np.array_equal(loaded.search(ROWS[:5], 10)[0], plain.search(ROWS[:5], 10)[0])
