"""Which background tasks the optimizer schedules for a collection's sealed segments."""

from __future__ import annotations

from typing import Any

import numpy as np

from index.flat import FlatIndex
from index.metrics import Distance
from server.engine.config import CollectionConfig
from server.engine.index_spec import SegmentSpec, read_spec
from server.engine.optimizer import (
    Planning,
    Task,
    due_tasks,
    index_exact,
    rebuild_mismatched,
    vacuum_tombstones,
)
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import SealedParts

DIM = 2


def config(**optimizers: Any) -> CollectionConfig:
    return CollectionConfig.model_validate(
        {
            "vectors": {"": {"size": DIM, "distance": "Dot"}},
            "named_vectors": False,
            "optimizers_config": optimizers,
        }
    )


def segment(segment_id: int, rows: int, spec: SegmentSpec | None) -> SealedSegment:
    index = FlatIndex(DIM, Distance.DOT)
    index.add(np.ones((rows, DIM), dtype=np.float32))
    ids = list(range(segment_id * 1000, segment_id * 1000 + rows))
    parts = SealedParts(ids, [{}] * rows, [1] * rows, {"": index}, {"": np.ones(rows, bool)})
    return SealedSegment(segment_id, parts, spec=spec)


def test_a_fresh_segment_is_folded_into_the_built_graph_not_indexed_alone() -> None:
    cfg = config()
    spec = cfg.index_spec()
    sealed = {1: segment(1, 50, spec), 2: segment(2, 10, None)}
    assert due_tasks(cfg, sealed, set()) == [Task("merge", (1, 2))]


def test_fresh_segments_wait_while_the_graph_is_being_built() -> None:
    cfg = config()
    sealed = {1: segment(1, 50, None), 2: segment(2, 10, None), 3: segment(3, 10, None)}
    assert due_tasks(cfg, sealed, set()) == [Task("index", (1,))]  # the first graph only
    assert due_tasks(cfg, sealed, {1}) == []  # the rest fold into it once it is built


def test_held_back_segments_do_not_block_the_others() -> None:
    cfg = config()
    sealed = {1: segment(1, 50, None), 2: segment(2, 10, None)}
    assert due_tasks(cfg, sealed, set(), held={1}) == [Task("index", (2,))]


def test_without_merging_each_segment_gets_its_own_graph() -> None:
    cfg = config(default_segment_number=3)
    sealed = {1: segment(1, 50, cfg.index_spec()), 2: segment(2, 10, None)}
    assert due_tasks(cfg, sealed, set()) == [Task("index", (2,))]


def test_a_graph_at_the_size_limit_is_not_grown() -> None:
    cfg = config(max_segment_size=55)
    sealed = {1: segment(1, 50, cfg.index_spec()), 2: segment(2, 10, None)}
    assert due_tasks(cfg, sealed, set()) == [Task("index", (2,))]


def test_a_segment_built_with_another_config_is_rebuilt() -> None:
    cfg = config(default_segment_number=3)
    old = read_spec(cfg.index_spec().to_manifest() | {"params": {"m": 4, "ef_construct": 100}})
    sealed = {1: segment(1, 50, old), 2: segment(2, 10, cfg.index_spec())}
    assert due_tasks(cfg, sealed, set()) == [Task("rebuild", (1,))]


def test_a_segment_past_the_deleted_threshold_is_vacuumed() -> None:
    cfg = config(default_segment_number=3, deleted_threshold=0.2, vacuum_min_vector_number=10)
    built = segment(1, 50, cfg.index_spec())
    for point_id in range(1000, 1011):  # 11 of 50 rows: 22% tombstones
        built.delete(point_id)
    assert due_tasks(cfg, {1: built}, set()) == [Task("vacuum", (1,))]
    assert due_tasks(cfg, {1: built}, {1}) == []  # a running task holds it


def test_two_smallest_built_segments_are_merged_down_to_the_target() -> None:
    cfg = config(default_segment_number=2)
    spec = cfg.index_spec()
    sealed = {1: segment(1, 50, spec), 2: segment(2, 10, spec), 3: segment(3, 20, spec)}
    assert due_tasks(cfg, sealed, set()) == [Task("merge", (2, 3))]


def test_conditions_answer_each_kind_on_their_own() -> None:
    cfg = config(default_segment_number=3)
    plan = Planning(cfg, {}, cfg.index_spec(), set(), set())
    fresh, built = segment(1, 5, None), segment(2, 5, cfg.index_spec())
    assert index_exact(plan, 1, fresh) == Task("index", (1,))
    assert index_exact(plan, 2, built) is None
    assert rebuild_mismatched(plan, 2, built) is None
    assert vacuum_tombstones(plan, 2, built) is None
