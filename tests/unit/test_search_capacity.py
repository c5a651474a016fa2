"""Search buffers are sized by what can be found (issue 18, finding 4): a segment is
never asked for more hits than its live rows, nor the merge for more than all of them,
whatever ``limit + offset`` a request names; the request budget counts the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.metrics import Distance
from server.engine.collection import Collection, PointsSelection, SearchSpec
from server.engine.config import CollectionConfig, VectorParams
from server.engine.limits import BYTES_PER_RESULT, check_result_budget, result_bytes
from server.engine.sealed_segment import SealedSegment
from server.engine.segment import AppendableSegment
from server.errors import BadRequest

DIM = 4
VECTORS = np.random.default_rng(3).normal(size=(45, DIM)).astype(np.float32)
DELETED = [0, 1, 2, 30, 31]


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[Collection]:
    """45 points in sealed exact segments of 20 plus an appendable tail, 5 deleted."""
    config = CollectionConfig(
        vectors={"": VectorParams(size=DIM, distance=Distance.EUCLID)}, named_vectors=False
    ).with_updates(optimizers_config={"indexing_threshold": 20})
    opened = Collection.create("c", tmp_path, config)
    for start in range(0, 45, 15):
        ids = list(range(start, start + 15))
        opened.upsert(ids, VECTORS[start : start + 15].tolist(), [None] * 15)
    opened.delete(PointsSelection(ids=list(DELETED)))
    yield opened
    opened.close()


def test_no_segment_is_asked_for_more_than_its_live_rows(
    collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[int, int]] = []
    for kind in (AppendableSegment, SealedSegment):
        original = kind.search

        def spy(self: Any, name: str, queries: Any, k: int, *rest: Any, _f: Any = original) -> Any:
            asked.append((k, len(self)))
            return _f(self, name, queries, k, *rest)

        monkeypatch.setattr(kind, "search", spy)
    queries = np.random.default_rng(4).normal(size=(3, DIM)).astype(np.float32)
    specs = [SearchSpec(using="", vector=q, limit=100_000, offset=100_000) for q in queries]
    specs += [SearchSpec(using="", vector=q, limit=100_000, offset=3) for q in queries]
    answers = collection.search(specs)
    assert len(asked) >= 2 and all(k <= live for k, live in asked)
    assert answers[:3] == [[], [], []]
    live = np.array([i for i in range(45) if i not in DELETED])
    for q, answer in zip(queries, answers[3:], strict=True):
        order = live[np.argsort(np.linalg.norm(VECTORS[live] - q, axis=1), kind="stable")]
        assert [hit.id for hit in answer] == order[3:].tolist()


def test_the_budget_counts_what_each_part_can_return() -> None:
    specs = [SearchSpec(using="", vector=np.zeros(DIM, np.float32), limit=50, offset=10)] * 4
    assert result_bytes(specs, [1_000]) == 4 * 60 * BYTES_PER_RESULT
    assert result_bytes(specs, [20, 30, 1_000]) == 4 * (20 + 30 + 60) * BYTES_PER_RESULT
    check_result_budget(specs, [20, 30], 4 * 50 * BYTES_PER_RESULT)
    with pytest.raises(BadRequest, match="QUIVER_MAX_REQUEST_RESULT_BYTES"):
        check_result_budget(specs, [20, 30], 4 * 50 * BYTES_PER_RESULT - 1)
