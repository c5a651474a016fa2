"""Vector datatypes in index/: Qdrant's casts, and an HNSW graph holding float16 / uint8
codes that answers as the float32 graph over the same (typed) rows."""

from __future__ import annotations

import numpy as np
import pytest

from index.base import SearchParams
from index.datatypes import to_datatype
from index.hnsw_faiss import HnswIndex, HnswParams
from index.metrics import Distance
from index.registry import index_from_bytes
from server.engine.point_ids import PointId
from server.engine.segment import AppendableSegment, PointBatch


def test_uint8_cast_drops_the_fraction_and_saturates_as_qdrant() -> None:
    rows = np.array([[-3.0, 3.7, 300.0, 255.9, 0.4, 17.0]], dtype=np.float32)
    assert to_datatype(rows, "uint8").tolist() == [[0.0, 3.0, 255.0, 255.0, 0.0, 17.0]]


def test_float16_rounds_to_the_nearest_half_and_float32_keeps_rows() -> None:
    rows = np.array([[0.1, 1 / 3, 2049.0]], dtype=np.float32)
    assert to_datatype(rows, "float16").tolist() == [[0.0999755859375, 0.333251953125, 2048.0]]
    assert to_datatype(rows, "float32") is rows


def typed_rows(datatype: str, n: int = 400, dim: int = 24) -> np.ndarray:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    if datatype == "uint8":
        rows = rng.integers(0, 256, size=(n, dim)).astype(np.float32)
    return to_datatype(rows, datatype)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("datatype", "distance"),
    [("float16", Distance.DOT), ("float16", Distance.EUCLID), ("uint8", Distance.EUCLID)],
)
def test_compact_graph_answers_as_float32_graph_and_holds_fewer_bytes(
    datatype: str, distance: Distance
) -> None:
    rows = typed_rows(datatype)
    compact = HnswIndex(rows.shape[1], distance, HnswParams(storage=datatype))  # type: ignore[arg-type]
    full = HnswIndex(rows.shape[1], distance)
    compact.add(rows)
    full.add(rows)
    queries = rows[:20]
    params = SearchParams(ef=400)
    ids_c, scores_c = compact.search(queries, 10, params=params)
    ids_f, scores_f = full.search(queries, 10, params=params)
    assert (ids_c == ids_f).mean() > 0.97
    np.testing.assert_allclose(scores_c[:, 0], scores_f[:, 0], rtol=1e-4)
    assert np.array_equal(compact.vectors(), rows)
    assert np.array_equal(compact.row_vectors(np.array([7, 3])), rows[[7, 3]])
    width = {"float16": 2, "uint8": 1}[datatype]
    stats = compact.stats().parts or {}
    assert stats["vectors"] == rows.size * width


def test_compact_graph_survives_bytes_round_trip_with_tombstones() -> None:
    rows = typed_rows("float16", n=120)
    index = HnswIndex(rows.shape[1], Distance.COSINE, HnswParams(storage="float16"))
    index.add(rows)
    index.delete(np.array([0]))
    loaded = index_from_bytes(index.to_bytes())
    assert isinstance(loaded, HnswIndex)
    assert loaded.params.storage == "float16"
    assert np.array_equal(loaded.vectors(), rows)
    ids, _ = loaded.search(rows[:1], 3, params=SearchParams(ef=64))
    assert 0 not in ids[0]


def test_manhattan_keeps_float32_rows_since_faiss_sq_has_no_l1_kernel() -> None:
    rows = typed_rows("float16", n=50)
    index = HnswIndex(rows.shape[1], Distance.MANHATTAN, HnswParams(storage="float16"))
    index.add(rows)
    ids, _ = index.search(rows[:1], 1)
    assert ids[0, 0] == 0
    assert (index.stats().parts or {})["vectors"] == rows.size * 4


@pytest.mark.parametrize(("datatype", "width"), [("float16", 2), ("uint8", 1)])
def test_appendable_tail_holds_typed_rows_narrow_and_searches_as_float32(
    datatype: str, width: int
) -> None:
    rows = typed_rows(datatype, n=60, dim=8)
    typed = AppendableSegment({"": (8, Distance.EUCLID)}, datatypes={"": datatype})  # type: ignore[dict-item]
    full = AppendableSegment({"": (8, Distance.EUCLID)})
    for segment in (typed, full):
        ids: list[PointId] = list(range(60))
        present = {"": np.ones(60, dtype=bool)}
        segment.upsert(PointBatch(ids, {"": rows}, present, [{}] * 60), version=1)
    column = typed.columns[""]
    assert column.data.itemsize == width
    assert np.array_equal(typed.vectors(7)[""], rows[7])
    found, scores = typed.search("", rows[:5], 4, None)
    expected, expected_scores = full.search("", rows[:5], 4, None)
    assert np.array_equal(found, expected)
    np.testing.assert_allclose(scores, expected_scores)
