"""What is due after a write reads the collection's index spec once per config
(``SegmentLifecycle.due``): every write asks, and the spec costs more than the rest."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.index_spec import IndexSpec
from server.engine.optimizer import Task
from server.engine.requests import SearchSpec


def _config(m: int) -> CollectionConfig:
    return CollectionConfig.model_validate(
        {
            "vectors": {"": {"size": 4, "distance": "Cosine"}},
            "named_vectors": False,
            "hnsw_config": {"m": m, "ef_construct": 8},
            "optimizers_config": {"indexing_threshold": 100},
        }
    )


def test_the_spec_is_built_once_per_config_and_again_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = Collection.create("c", tmp_path, _config(4))
    try:
        rng = np.random.default_rng(5)
        collection.upsert(list(range(150)), rng.normal(size=(150, 4)).tolist(), [None] * 150)
        built: list[IndexSpec] = []
        make = CollectionConfig.index_spec

        def counted(self: CollectionConfig) -> IndexSpec:
            built.append(make(self))
            return built[-1]

        monkeypatch.setattr(CollectionConfig, "index_spec", counted)
        first = collection.due_tasks(set())
        assert first and all(isinstance(task, Task) for task in first)  # the sealed 100
        assert collection.due_tasks(set()) == first
        assert len(built) <= 1  # none when the seal's own poke already built it

        collection.update_config(_config(8))
        assert collection.due_tasks(set()) == first  # the same segment, still unbuilt
        assert built[-1] == _config(8).index_spec()
        assert built[-1] != _config(4).index_spec()  # the new config's spec, not a stale one
    finally:
        collection.close()


def test_what_is_due_and_the_result_budget_are_read_without_the_lock(tmp_path: Path) -> None:
    """Every write asks what is due as it ends, and every query checks its result budget
    before its search: with the lock there, a write queued behind the writers waiting
    for the readers (the lock prefers writers), one after another (the mixed benchmark's
    upserts waited ~70 ms in that queue)."""
    collection = Collection.create("c", tmp_path, _config(4))
    try:
        rng = np.random.default_rng(6)
        collection.upsert(list(range(150)), rng.normal(size=(150, 4)).tolist(), [None] * 150)
        expected = collection.due_tasks(set())
        reading, release = threading.Event(), threading.Event()

        def reader() -> None:
            with collection._lock.read():
                reading.set()
                release.wait(10)

        def writer() -> None:
            with collection._lock.write():
                pass

        threads = [threading.Thread(target=reader, daemon=True)]
        threads[0].start()
        assert reading.wait(10)
        threads.append(threading.Thread(target=writer, daemon=True))
        threads[1].start()
        deadline = time.monotonic() + 10
        while not collection._lock._writers_waiting:  # the writer now waits for the reader
            assert time.monotonic() < deadline
            time.sleep(0.001)
        answers: list[object] = []
        asking = threading.Thread(
            target=lambda: answers.extend(
                [
                    collection.due_tasks(set()),
                    collection.check_result_budget([SearchSpec(using="", vector=np.ones(4))]),
                ]
            ),
            daemon=True,
        )
        asking.start()
        asking.join(5)
        release.set()
        for thread in threads:
            thread.join(10)
        assert answers == [expected, None]  # answered while the writer still waited
    finally:
        collection.close()
