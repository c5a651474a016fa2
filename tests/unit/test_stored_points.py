"""The point store read back as columns at open (``PointStore.load_columns`` and
``StoredPoints``): each column's aggregate stays aligned with the points, also when
only some points hold a vector under a name, and an empty store reads as empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import orjson
import pytest

from server.engine.collection.stored_points import StoredPoints
from server.engine.config import CollectionConfig
from server.storage import point_store
from server.storage.point_store import PointRows, PointStore, WriteBatch

CONFIG = CollectionConfig.model_validate(
    {
        "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}},
        "named_vectors": True,
    }
)


def _store(tmp_path: Path, vectors: dict[str, dict[str, list[float]]]) -> PointStore:
    store = PointStore.create(tmp_path, CONFIG.model_dump(mode="json"))
    rows = PointRows(
        pids=list(vectors),
        payloads=[orjson.dumps({"p": pid}) for pid in vectors],
        vectors=[
            (pid, name, np.array(v, dtype=np.float32).tobytes())
            for pid, named in vectors.items()
            for name, v in named.items()
        ],
    )
    store.commit(WriteBatch(put_points=rows))
    return store


def test_a_name_only_some_points_hold_lands_on_their_rows(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "2": {"a": [2, 2]},
            "10": {"a": [10, 10], "b": [-10, -10]},
            "1": {"a": [1, 1]},
            "00000000-0000-0000-0000-000000000007": {"a": [7, 7], "b": [-7, -7]},
        },
    )
    stored = StoredPoints(store, CONFIG)
    wanted = ["1", "gone", "10", "00000000-0000-0000-0000-000000000007", "2"]
    batch = stored.batch(wanted, stored.rows_of(wanted))
    assert batch.ids == [1, "gone", 10, "00000000-0000-0000-0000-000000000007", 2]
    assert batch.payloads == [{"p": "1"}, {}, {"p": "10"}, {"p": wanted[3]}, {"p": "2"}]
    assert batch.vectors["a"][:, 0].tolist() == [1, 0, 10, 7, 2]
    assert batch.vectors["b"][:, 0].tolist() == [0, 0, -10, -7, 0]
    assert batch.present["b"].tolist() == [False, False, True, True, False]
    assert batch.present["a"].tolist() == [True, False, True, True, True]
    assert len(set(map(id, batch.payloads))) == len(wanted)
    store.close()


def test_an_empty_store_reads_as_no_points(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, CONFIG.model_dump(mode="json"))
    stored = StoredPoints(store, CONFIG)
    assert len(stored) == 0
    batch = stored.batch(["3"], stored.rows_of(["3"]))
    assert (batch.ids, batch.payloads, batch.present["a"].tolist()) == ([3], [{}], [False])
    store.close()


def test_columns_read_in_chunks_equal_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Aggregates stay under SQLite's string limit: vectors a few rows per chunk, and
    payload chunks halved until they fit (the limit set tiny here)."""
    points = {str(i): {"a": [i, -i], **({"b": [i, i]} if i % 3 else {})} for i in range(11)}
    store = _store(tmp_path, points)
    whole = store.load_columns(["a", "b"], {"a": 8, "b": 8})
    monkeypatch.setattr(point_store, "_CHUNK_BYTES", 16)
    store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 48)
    chunked = store.load_columns(["a", "b"], {"a": 8, "b": 8})
    assert chunked == whole
    assert len(whole.pids) == 11
    assert whole.payloads == [{"p": pid} for pid in whole.pids]
    vectors = np.frombuffer(whole.vectors["a"].data, dtype=np.float32).reshape(-1, 2)
    assert vectors[:, 0].tolist() == [float(pid) for pid in whole.pids]
    store.close()


def test_dense_vectors_read_later_are_the_stored_ones_and_a_wrong_width_is_refused(
    tmp_path: Path,
) -> None:
    """``read_dense`` (an install's open, after ``dense_data=False``) fills the rows it is
    given and refuses a damaged vector as the open does (``point_store.wrong_width``)."""
    store = _store(tmp_path, {"1": {"a": [1, 1]}, "2": {"a": [2, 2], "b": [-2, -2]}})
    stored = StoredPoints(store, CONFIG, dense_data=False)
    rows = stored.rows_of(["2", "1"])
    stored.read_dense(rows)
    batch = stored.batch(["2", "1"], rows)
    assert batch.vectors["a"].tolist() == [[2, 2], [1, 1]]
    assert batch.vectors["b"].tolist() == [[-2, -2], [0, 0]]
    with sqlite3.connect(tmp_path / "points.sqlite") as db:
        db.execute("UPDATE vectors SET data = x'00000000' WHERE pid = '2' AND name = 'b'")
    with pytest.raises(ValueError, match="a stored vector 'b' is not 2 float32 values"):
        StoredPoints(store, CONFIG, dense_data=False).read_dense(rows)
