"""Opening a collection rebuilds every segment from the point store read as columns
(``collection/stored_points.py``): a reopened collection answers exactly as before,
for every vector kind, with points deleted, re-vectored or re-payloaded after their
segment was built and saved, and a store row of the wrong length is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.base import SearchParams
from server.engine.collection import Collection, PointsSelection, SearchSpec
from server.engine.config import CollectionConfig
from server.engine.payload import PayloadSelector
from server.engine.point_ids import PointId

DIM = 4
COUNT = 240
RNG = np.random.default_rng(11)


MAX_SIM = {"comparator": "max_sim"}


def _config() -> CollectionConfig:
    return CollectionConfig.model_validate(
        {
            "vectors": {
                "d": {"size": DIM, "distance": "Euclid"},
                "m": {"size": 3, "distance": "Dot", "multivector_config": MAX_SIM},
            },
            "named_vectors": True,
            "sparse_vectors": {"s": {}},
            "optimizers_config": {"indexing_threshold": 100},
        }
    )


def _vectors(i: int) -> dict[str, Any]:
    """Every point has ``d``; every third lacks ``m``, every fifth lacks ``s``."""
    vectors: dict[str, Any] = {"d": RNG.normal(size=DIM).tolist()}
    if i % 3:
        vectors["m"] = RNG.normal(size=(1 + i % 4, 3)).tolist()
    if i % 5:
        vectors["s"] = {"indices": [i % 7, 10 + i % 11], "values": [1.0, 0.5 + i / COUNT]}
    return vectors


def _ids() -> list[PointId]:
    """Integer ids and a few UUIDs (stored as text, read back as text)."""
    return [f"00000000-0000-0000-0000-{i:012d}" if i % 17 == 0 else i for i in range(COUNT)]


def _build_all(collection: Collection) -> None:
    while tasks := collection.due_tasks(set()):
        for task in tasks:
            collection.run_task(task, lambda _done, _total: None, lambda: False)


def _state(collection: Collection) -> dict[str, Any]:
    page = collection.scroll(None, 2 * COUNT, None, PayloadSelector.of("all"), True)
    ones = np.ones(DIM, dtype=np.float32)
    query = SearchSpec(using="d", vector=ones, limit=2 * COUNT, params=SearchParams(exact=True))
    hits = collection.search([query])[0]
    return {
        "records": sorted(map(repr, page.records)),
        "versions": sorted((repr(h.id), h.version) for h in hits),
        "count": collection.count(None),
        "segments": [(s.kind, s.points) for s in collection.segments_info()],
    }


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A built segment and an exact sealed one, changed afterwards; the folder and
    what the collection answered before it was closed."""
    collection = Collection.create("c", tmp_path, _config())
    ids = _ids()
    for start in range(0, COUNT, 60):
        chunk = ids[start : start + 60]
        vectors = [_vectors(start + j) for j in range(len(chunk))]
        collection.upsert(chunk, vectors, [{"n": start + j} for j in range(len(chunk))])
    _build_all(collection)
    late = list(range(1000, 1110))  # sealed, left exact (no index file)
    collection.upsert(late, [_vectors(i) for i in late], [None] * len(late))
    collection.delete(PointsSelection(ids=[ids[i] for i in (1, 2, 150, 239)]))
    collection.upsert([ids[5], ids[120]], [_vectors(7), _vectors(8)], [{"moved": True}, None])
    collection.set_payload({"city": "Oslo"}, PointsSelection(ids=[ids[9], ids[130]]), None)
    before = _state(collection)
    collection.close()
    return tmp_path, before


def test_reopen_answers_as_before_for_every_vector_kind(built: tuple[Path, Any]) -> None:
    folder, before = built
    assert before["count"] == COUNT + 110 - 4
    assert [kind for kind, _ in before["segments"]].count("sealed") >= 2
    reopened = Collection.open("c", folder)
    try:
        assert _state(reopened) == before
    finally:
        reopened.close()


def test_a_stored_vector_of_the_wrong_length_is_refused(built: tuple[Path, Any]) -> None:
    folder, _ = built
    with sqlite3.connect(folder / "points.sqlite") as db:
        db.execute("UPDATE vectors SET data = x'00000000' WHERE pid = '3' AND name = 'd'")
    with pytest.raises(ValueError, match="is not 4 float32 values"):
        Collection.open("c", folder)
