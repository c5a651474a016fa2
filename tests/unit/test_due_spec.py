"""What is due after a write reads the collection's index spec once per config
(``SegmentLifecycle.due``): every write asks, and the spec costs more than the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.index_spec import IndexSpec
from server.engine.optimizer import Task


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
