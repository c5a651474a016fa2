"""The reservoir of served queries (training_queries.py): made only when a query is
offered or one was stored, and kept across a reopen."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from server.engine.training_queries import RESERVOIR_SIZE, QuerySamples
from server.storage.point_store import PointStore

DIM = 1536


def test_a_collection_that_never_learns_from_queries_holds_no_reservoir(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, {})
    try:
        tracemalloc.start()
        try:
            samples = QuerySamples(store, {"": DIM, "other": DIM})
            allocated, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert allocated < RESERVOIR_SIZE * DIM * 4 // 10  # two reservoirs would be 123 MB
        assert samples.counts("") == {"given": 0, "seen": 0}
        assert samples.for_training("") is None
    finally:
        store.close()


def test_offered_queries_are_sampled_flushed_and_read_back(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, {})
    queries = np.random.default_rng(5).random((30, 8), dtype=np.float32)
    try:
        samples = QuerySamples(store, {"": 8, "unused": 8})
        samples.offer("", queries)
        np.testing.assert_array_equal(samples.for_training(""), queries)
        assert samples.for_training("unused") is None
        samples.flush()
        reopened = QuerySamples(store, {"": 8, "unused": 8})
        assert reopened.counts("") == {"given": 0, "seen": 30}
        np.testing.assert_array_equal(reopened.for_training(""), queries)
        reopened.offer("", queries[:5])  # a reopened reservoir keeps filling after them
        assert reopened.counts("")["seen"] == 35
    finally:
        store.close()
