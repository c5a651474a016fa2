"""Exact search and filtered counts equal a numpy brute-force oracle, and the
collection keeps its invariants through random upserts, deletes and restarts."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from index.metrics import Distance
from server.engine.collection import Collection, PointsSelection, SearchSpec
from server.engine.config import CollectionConfig, VectorParams
from server.engine.filters import parse_filter
from server.engine.payload import PayloadSelector

DIM = 6
COLORS = ["red", "green", "blue"]


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


filters = st.one_of(
    st.none(),
    st.builds(
        lambda c: {"must": [{"key": "color", "match": {"value": c}}]}, st.sampled_from(COLORS)
    ),
    st.builds(lambda lo: {"must": [{"key": "n", "range": {"gte": lo}}]}, st.integers(0, 60)),
    st.builds(
        lambda c, hi: {
            "should": [{"key": "color", "match": {"value": c}}, {"key": "n", "range": {"lt": hi}}]
        },
        st.sampled_from(COLORS),
        st.integers(0, 60),
    ),
    st.builds(
        lambda c: {"must_not": [{"key": "color", "match": {"any": c}}]},
        st.lists(st.sampled_from(COLORS), max_size=2),
    ),
)


def passes(flt: dict[str, Any] | None, payload: dict[str, Any]) -> bool:
    """An independent, tiny oracle for the filter shapes generated above."""
    if flt is None:
        return True
    if "must" in flt:
        cond = flt["must"][0]
        if "match" in cond:
            return bool(payload["color"] == cond["match"]["value"])
        return bool(payload["n"] >= cond["range"]["gte"])
    if "should" in flt:
        color, rng = flt["should"]
        return bool(
            payload["color"] == color["match"]["value"] or payload["n"] < rng["range"]["lt"]
        )
    return payload["color"] not in flt["must_not"][0]["match"]["any"]


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


class CollectionMachine(RuleBasedStateMachine):
    """Chroma-style model check: upsert / delete / restart against a dict oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name)
        self.collection = make_collection(self.path, Distance.DOT)
        self.model: dict[int, tuple[list[float], dict[str, Any]]] = {}

    @rule(
        ids=st.lists(st.integers(0, 40), min_size=1, max_size=8),
        value=st.floats(-10, 10, allow_nan=False, width=32),
    )
    def upsert(self, ids: list[int], value: float) -> None:
        vectors = [[value + i] * DIM for i in ids]
        payloads: list[dict[str, Any] | None] = [{"i": i, "v": value} for i in ids]
        self.collection.upsert(ids, vectors, payloads)
        for i, vector, payload in zip(ids, vectors, payloads, strict=True):
            assert payload is not None
            self.model[i] = ([float(np.float32(x)) for x in vector], payload)

    @rule(ids=st.lists(st.integers(0, 40), max_size=5))
    def delete(self, ids: list[int]) -> None:
        self.collection.delete(PointsSelection(ids=list(ids)))
        for i in ids:
            self.model.pop(i, None)

    @rule()
    def restart(self) -> None:
        self.collection.close()
        self.collection = Collection.open("c", self.path)

    @invariant()
    def contents_match_the_model(self) -> None:
        assert self.collection.count(None) == len(self.model)
        page = self.collection.scroll(None, 1000, None, PayloadSelector.of("all"), True)
        assert [r.id for r in page.records] == sorted(self.model)
        for record in page.records:
            vector, payload = self.model[record.id]
            assert record.vector == vector
            assert record.payload == payload

    @invariant()
    def search_returns_every_point_once(self) -> None:
        if not self.model:
            return
        name, vector = self.collection.prepare_query([1.0] * DIM, None)
        hits = self.collection.search([SearchSpec(using=name, vector=vector, limit=100)])[0]
        assert sorted(h.id for h in hits) == sorted(self.model)

    def teardown(self) -> None:
        self.collection.close()
        self.tmp.cleanup()


TestCollectionMachine = CollectionMachine.TestCase
TestCollectionMachine.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
