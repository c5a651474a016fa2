"""A build keeps its rows' ids, versions and payloads as arrays (issue 24): the Python
objects alive while it swaps its segment in do not grow with the points it rebuilds.
Each build used to make and drop several objects per point (ids, their text for the
manifest, versions, payloads read back from the store); the small-object allocator's
arenas they filled stayed pinned, ~140 B a point on GloVe-50 that a restart did not hold."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.sealed_segment import SealedSegment

COUNT = 3000


def _config() -> CollectionConfig:
    return CollectionConfig.model_validate(
        {
            "vectors": {"": {"size": 4, "distance": "Cosine"}},
            "named_vectors": False,
            "hnsw_config": {"m": 4, "ef_construct": 8},
            "optimizers_config": {"indexing_threshold": 1000},
        }
    )


def test_a_build_holds_no_python_object_per_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = Collection.create("c", tmp_path, _config())
    rng = np.random.default_rng(3)
    for start in range(0, COUNT, 500):
        ids = list(range(10_000 + start, 10_000 + start + 500))
        collection.upsert(ids, rng.normal(size=(500, 4)).tolist(), [None] * 500)
    peaks: list[int] = []
    made = SealedSegment.__init__

    def counted(self: SealedSegment, *args: Any, **kwargs: Any) -> None:
        peaks.append(sys.getallocatedblocks())  # everything the swap holds is alive here
        made(self, *args, **kwargs)

    monkeypatch.setattr(SealedSegment, "__init__", counted)
    try:
        while tasks := collection.due_tasks(set()):
            for task in tasks:
                before = sys.getallocatedblocks()
                peaks.clear()
                collection.run_task(task, lambda _done, _total: None, lambda: False)
                assert peaks and max(peaks) - before < COUNT // 10, task
        assert collection.count(None) == COUNT
    finally:
        collection.close()
