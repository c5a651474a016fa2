"""Exact search and filtered counts equal a numpy brute-force oracle.

(The model check through upserts, deletes, restarts and builds is
``test_collection_state_machine.py``.)"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.metrics import Distance
from server.engine.collection import Collection, SearchSpec
from server.engine.config import CollectionConfig, VectorParams
from server.engine.filters import parse_filter
from tests.helpers.strategies import COLORS, passes
from tests.helpers.strategies import color_filters as filters

DIM = 6


def make_collection(path: Path, distance: Distance) -> Collection:
    config = CollectionConfig(
        vectors={"": VectorParams(size=DIM, distance=distance)}, named_vectors=False
    )
    return Collection.create("c", path, config)


def oracle_scores(xb: np.ndarray, q: np.ndarray, distance: Distance) -> np.ndarray:
    xb64, q64 = xb.astype(np.float64), q.astype(np.float64)
    if distance is Distance.COSINE:
        xb64 = xb64 / np.maximum(np.linalg.norm(xb64, axis=1, keepdims=True), 1e-30)
        q64 = q64 / max(float(np.linalg.norm(q64)), 1e-30)
        return xb64 @ q64
    if distance is Distance.DOT:
        return xb64 @ q64
    if distance is Distance.EUCLID:
        return np.sqrt(((xb64 - q64) ** 2).sum(axis=1))
    return np.abs(xb64 - q64).sum(axis=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 60),
    k=st.integers(1, 15),
    distance=st.sampled_from(list(Distance)),
    flt=filters,
)
def test_exact_search_and_count_match_numpy(
    seed: int, count: int, k: int, distance: Distance, flt: dict[str, Any] | None
) -> None:
    rng = np.random.default_rng(seed)
    xb = rng.normal(size=(count, DIM)).astype(np.float32)
    payloads = [{"n": int(i), "color": COLORS[int(rng.integers(3))]} for i in range(count)]
    query = rng.normal(size=DIM).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        collection = make_collection(Path(tmp), distance)
        collection.upsert(list(range(count)), xb.tolist(), payloads)
        parsed = parse_filter(flt)
        name, vector = collection.prepare_query(query.tolist(), None)
        spec = SearchSpec(using=name, vector=vector, limit=k, filter=parsed)
        hits = collection.search([spec])[0]
        allowed = np.array([passes(flt, p) for p in payloads])
        assert collection.count(parsed) == int(allowed.sum())
        collection.close()

    scores = oracle_scores(xb, query, distance)
    candidates = np.flatnonzero(allowed)
    order = candidates[
        np.argsort(
            -scores[candidates] if distance.higher_is_better else scores[candidates], kind="stable"
        )
    ]
    expected = order[:k]
    assert len(hits) == len(expected)
    got_scores = np.array([h.score for h in hits])
    np.testing.assert_allclose(got_scores, scores[expected], rtol=1e-4, atol=1e-4)
    # ids may differ only where scores tie (within float32 noise)
    for hit, want in zip(hits, expected, strict=True):
        assert hit.id == want or abs(scores[hit.id] - scores[want]) < 1e-4
