"""Every backend behind the one interface: exactness, recall, filters, tombstones, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from index.base import SearchParams, VectorIndex
from index.flat import exact_search
from index.metrics import Distance, normalize_rows
from index.registry import MULTI_BACKENDS, backend_names, create_index, index_from_bytes
from index.serialization import IndexFormatError
from tests.helpers.data import recall

DOCUMENTED_BACKENDS = [  # README "Index backends" table
    "flat",
    "hnsw",
    "hnsw_binary",
    "hnsw_pq",
    "hnsw_rabitq",
    "hnsw_sq8",
    "hnsw_turbo",
    "leanvec",
]
QUANTIZED = {"hnsw_binary", "hnsw_pq", "hnsw_rabitq", "hnsw_sq8", "hnsw_turbo"}


def supports(kind: str, distance: Distance) -> bool:
    """Quantized codes serve Cosine, Dot, Euclid; faiss's RaBitQ is L2-only (no Dot)."""
    if (kind in QUANTIZED or kind == "leanvec") and distance is Distance.MANHATTAN:
        return False
    return not (kind == "hnsw_rabitq" and distance is Distance.DOT)


PARAMS = {"leanvec": {"dims": 24}}
"""LeanVec keeps all 24 dims on this iid data (nothing to project away); its recall at
reduced dims is tested on structured data in test_leanvec_index.py."""


def make(kind: str, dim: int, distance: Distance) -> VectorIndex:
    return create_index(kind, dim, distance, PARAMS.get(kind))


SUPPORTED = [(k, d) for k in DOCUMENTED_BACKENDS for d in Distance if supports(k, d)]
UNSUPPORTED = [(k, d) for k in DOCUMENTED_BACKENDS for d in Distance if not supports(k, d)]


def dataset(n: int = 3000, dim: int = 24, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32), rng.normal(size=(50, dim)).astype(
        np.float32
    )


def test_registry_matches_documented_backends() -> None:
    assert backend_names() == DOCUMENTED_BACKENDS


def test_multi_vector_registry_is_muvera_and_the_exact_default() -> None:
    """README: ``"type": "muvera"`` puts MUVERA in front of MaxSim; every other type keeps
    multi-vectors on exact MaxSim."""
    assert sorted(MULTI_BACKENDS) == ["maxsim", "muvera"]


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown index type"):
        create_index("annoy", 4, Distance.DOT)


@pytest.mark.parametrize(("kind", "distance"), UNSUPPORTED)
def test_unsupported_metric_is_refused_at_creation(kind: str, distance: Distance) -> None:
    with pytest.raises(ValueError, match="not"):
        make(kind, 8, distance)


@pytest.mark.parametrize(("kind", "distance"), SUPPORTED)
@pytest.mark.slow  # 3,000 vectors per backend and metric
def test_recall_at_10_vs_exact(kind: str, distance: Distance) -> None:
    xb, xq = dataset()
    if distance is Distance.COSINE:
        xb, xq = normalize_rows(xb), normalize_rows(xq)
    index = make(kind, xb.shape[1], distance)
    index.add(xb)
    truth, _ = exact_search(xb, xq, 10, distance)
    found, scores = index.search(xq, 10, params=SearchParams(ef=128))
    assert recall(found, truth) >= 0.95
    order = -scores if distance.higher_is_better else scores
    assert (np.diff(order, axis=1) >= -1e-5).all()


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_allowed_mask_is_honoured(kind: str) -> None:
    xb, xq = dataset()
    index = make(kind, xb.shape[1], Distance.EUCLID)
    index.add(xb)
    allowed = np.zeros(len(xb), dtype=bool)
    allowed[::7] = True
    found, _ = index.search(xq, 10, allowed=allowed, params=SearchParams(ef=256))
    assert allowed[found[found >= 0]].all()
    truth, _ = exact_search(xb, xq, 10, Distance.EUCLID, allowed=allowed)
    assert recall(found, truth) >= 0.9


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_deleted_rows_are_never_returned(kind: str) -> None:
    xb, _ = dataset(n=500)
    index = make(kind, xb.shape[1], Distance.EUCLID)
    index.add(xb)
    deleted = np.arange(0, 500, 2)
    index.delete(deleted)
    found, _ = index.search(xb[:20], 10, params=SearchParams(ef=64))
    assert not np.isin(found, deleted).any()
    exact, _ = index.search(xb[:20], 10, params=SearchParams(exact=True))
    assert not np.isin(exact, deleted).any()


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_fewer_allowed_than_k_pads_with_minus_one(kind: str) -> None:
    xb, xq = dataset(n=200)
    index = make(kind, xb.shape[1], Distance.COSINE)
    index.add(normalize_rows(xb))
    allowed = np.zeros(200, dtype=bool)
    allowed[[3, 50]] = True
    found, scores = index.search(normalize_rows(xq[:1]), 5, allowed=allowed)
    assert sorted(found[0][:2].tolist()) == [3, 50]
    assert found[0][2:].tolist() == [-1, -1, -1]
    assert np.isneginf(scores[0][2:]).all()


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_round_trip_through_bytes_keeps_results_and_tombstones(kind: str) -> None:
    xb, xq = dataset(n=800)
    index = make(kind, xb.shape[1], Distance.EUCLID)
    index.add(xb)
    index.delete(np.array([1, 2, 3]))
    restored = index_from_bytes(index.to_bytes())
    before = index.search(xq, 10)
    after = restored.search(xq, 10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1])
    np.testing.assert_array_equal(restored.vectors(), xb)
    assert restored.stats().count == 800


def test_corrupt_bytes_are_refused() -> None:
    index = create_index("flat", 4, Distance.DOT)
    data = index.to_bytes()
    with pytest.raises(IndexFormatError, match="magic"):
        index_from_bytes(b"XXXX" + data[4:])
    with pytest.raises(IndexFormatError, match="version"):
        index_from_bytes(data[:4] + (99).to_bytes(4, "little") + data[8:])


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_memory_stats_cover_the_vectors(kind: str) -> None:
    xb, _ = dataset(n=1000)
    index = make(kind, xb.shape[1], Distance.EUCLID)
    index.add(xb)
    stats = index.stats()
    assert stats.memory_bytes >= xb.nbytes
    assert stats.parts is not None and sum(stats.parts.values()) == stats.memory_bytes


CAPABILITIES = {  # kind: (approximate, maps_originals, trained when empty)
    "flat": (False, False, True),
    "hnsw": (True, False, True),
    "hnsw_binary": (True, True, False),
    "hnsw_pq": (True, True, False),
    "hnsw_rabitq": (True, True, False),
    "hnsw_sq8": (True, True, False),
    "hnsw_turbo": (True, True, False),
    "leanvec": (True, True, False),
}


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_every_backend_answers_what_it_can_do(kind: str) -> None:
    """The server asks these instead of checking classes (planner graph paths, reopening
    from the mapped file, training before the first add)."""
    index = make(kind, 24, Distance.EUCLID)
    approximate, maps_originals, trained = CAPABILITIES[kind]
    assert (index.multi_vector, index.approximate) == (False, approximate)
    assert (index.maps_originals, index.is_trained, index.lossless) == (
        maps_originals,
        trained,
        True,
    )


@pytest.mark.parametrize("kind", DOCUMENTED_BACKENDS)
def test_row_vectors_and_same_rows_read_back_what_was_added(kind: str) -> None:
    xb, _ = dataset(n=300)
    index = make(kind, xb.shape[1], Distance.EUCLID)
    index.add(xb)
    np.testing.assert_array_equal(index.row_vectors(np.array([4, 0])), xb[[4, 0]])
    changed = xb.copy()
    changed[7] += 1.0
    assert np.flatnonzero(~index.same_rows(changed)).tolist() == [7]


def test_untrained_backend_trains_on_a_sample_and_learned_nothing_otherwise() -> None:
    xb, _ = dataset(n=500)
    quantized = make("hnsw_sq8", xb.shape[1], Distance.EUCLID)
    quantized.train(xb)
    assert quantized.is_trained
    flat = make("flat", xb.shape[1], Distance.EUCLID)
    flat.train(xb)
    assert flat.is_trained and flat.stats().count == 0
