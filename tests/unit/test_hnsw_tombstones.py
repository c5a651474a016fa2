"""HNSW tombstones: an index keeps whether any row is deleted instead of scanning its
flags on every search; deleted rows never come back, saved and loaded alike."""

from __future__ import annotations

import numpy as np
import pytest

from index.base import SearchParams
from index.hnsw_faiss import HnswIndex
from index.metrics import Distance

ROWS, DIM, K = 300, 8, 10


def _index() -> tuple[HnswIndex, np.ndarray]:
    vectors = np.random.default_rng(3).standard_normal((ROWS, DIM)).astype(np.float32)
    index = HnswIndex(DIM, Distance.EUCLID)
    index.add(vectors)
    return index, vectors


@pytest.mark.parametrize("exact", [False, True])
def test_deleted_rows_never_come_back_before_or_after_a_reload(exact: bool) -> None:
    index, vectors = _index()
    params = SearchParams(ef=ROWS, exact=exact)
    query = vectors[:1]
    before, _ = index.search(query, K, params=params)
    index.delete(np.array([], dtype=np.int64))  # nothing deleted: still every row
    assert index.search(query, K, params=params)[0].tolist() == before.tolist()
    gone = before[0, :3]
    index.delete(gone)
    allowed = np.ones(ROWS, dtype=bool)
    allowed[before[0, 5]] = False
    for searched in (index, HnswIndex.from_bytes(index.to_bytes())):
        rows, _ = searched.search(query, K, params=params)
        assert not set(gone.tolist()) & set(rows[0].tolist())
        assert set(before[0, 3:].tolist()) <= set(rows[0].tolist())
        limited, _ = searched.search(query, K, params=params, allowed=allowed)
        assert not {*gone.tolist(), int(before[0, 5])} & set(limited[0].tolist())


def test_an_index_loaded_without_tombstones_searches_every_allowed_row() -> None:
    index, vectors = _index()
    loaded = HnswIndex.from_bytes(index.to_bytes())
    allowed = np.zeros(ROWS, dtype=bool)
    allowed[::3] = True
    rows, _ = loaded.search(vectors[:2], K, params=SearchParams(exact=True), allowed=allowed)
    assert rows.shape == (2, K) and bool(np.all(rows % 3 == 0))
