"""Grouped search and facets must answer as qdrant-client's local mode does.

One collection (a Cosine dense vector ``d`` and a sparse vector ``s``; payloads with a
keyword that is sometimes an array, missing or a float, an integer, a bool, a UUID and
a nested keyword, each indexed) lives in Quiver, single-node and sharded, and in
``QdrantClient(":memory:")``. Hypothesis draws groups requests (dense, sparse and
hybrid rrf queries, every ``group_by`` key, sizes, limits, filters) and facet requests;
group ids, their order, each group's hit ids and scores, and facet counts must agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api
from tests.helpers.local_mode import TwinCollection, Twins, twins

NAME = "grouped"
SHARDED = "grouped_sharded"
POINTS = 90
DIM = 4
VOCABULARY = 10
CATS = ["a", "b", "c", "d", "e", "f", "g"]
UUIDS = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(4)]
INDEXES = {"cat": "keyword", "num": "integer", "flag": "bool", "u": "uuid", "meta.kind": "keyword"}
FILTERS: list[dict[str, Any]] = [
    {"must": [{"key": "flag", "match": {"value": True}}]},
    {"must_not": [{"key": "num", "range": {"lt": 2}}]},
    {"should": [{"key": "cat", "match": {"value": "a"}}, {"key": "num", "range": {"gt": 3}}]},
]
TOLERANCE = 2e-4


def _cat(rng: np.random.Generator, i: int) -> Any:
    if i % 11 == 0:
        return None  # no key at all
    if i % 13 == 0:
        return 1.5  # not a group id: the point joins no group
    if i % 5 == 0:
        picked = rng.choice(CATS, size=int(rng.integers(0, 4)), replace=True)
        return [str(c) for c in picked]  # an array, maybe empty, maybe repeating
    return str(rng.choice(CATS))


def _points(rng: np.random.Generator) -> list[dict[str, Any]]:
    points = []
    for i in range(POINTS):
        terms = rng.choice(VOCABULARY, size=int(rng.integers(1, 5)), replace=False)
        # unrounded: decimal values tie sparse scores exactly, and tied hits have no
        # defined order (rrf then fuses different ranks per engine)
        values = rng.uniform(0.1, 2.0, size=len(terms))
        payload: dict[str, Any] = {
            "num": int(rng.integers(0, 6)) if i % 7 else [int(rng.integers(0, 6)), 2, 2],
            "flag": bool(i % 3),
            "u": UUIDS[int(rng.integers(0, len(UUIDS)))],
            "meta": {"kind": str(rng.choice(CATS[:4]))},
        }
        cat = _cat(rng, i)
        if cat is not None:
            payload["cat"] = cat
        vector = {
            "d": rng.normal(size=DIM).round(4).tolist(),
            "s": {"indices": terms.tolist(), "values": values.tolist()},
        }
        points.append({"id": i, "vector": vector, "payload": payload})
    return points


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    collection = TwinCollection(
        name=NAME,
        sharded=SHARDED,
        vectors={"d": {"size": DIM, "distance": "Cosine"}},
        sparse={"s": {}},
        points=_points(np.random.default_rng(11)),
        indexes=INDEXES,
        batch=30,  # several batches: several segments
        options={"optimizers_config": {"indexing_threshold": 40}},
    )
    with twins(tmp_path_factory.mktemp("groups"), collection) as pair:
        yield pair


coordinate = st.integers(0, 40).map(lambda x: (x - 20.5) / 10)
dense = st.lists(coordinate, min_size=DIM, max_size=DIM)
sparse = st.lists(st.integers(0, VOCABULARY - 1), min_size=1, max_size=4, unique=True).flatmap(
    lambda t: st.lists(coordinate.map(abs), min_size=len(t), max_size=len(t)).map(
        lambda v: {"indices": t, "values": v}
    )
)


@st.composite
def group_bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["dense", "sparse", "hybrid"]))
    if kind == "dense":
        body: dict[str, Any] = {"query": draw(dense), "using": "d"}
    elif kind == "sparse":
        body = {"query": draw(sparse), "using": "s"}
    else:
        body = {
            "prefetch": [
                {"query": draw(dense), "using": "d", "limit": POINTS},
                {"query": draw(sparse), "using": "s", "limit": POINTS},
            ],
            "query": {"fusion": "rrf"},
        }
    body["group_by"] = draw(st.sampled_from(["cat", "num", "meta.kind", "u"]))
    body["group_size"] = draw(st.integers(1, 5))
    body["limit"] = draw(st.integers(1, 8))
    flt = draw(st.one_of(st.none(), st.sampled_from(FILTERS)))
    if flt is not None:
        body["filter"] = flt
    return body


TIED_SPARSE_RRF: dict[str, Any] = {
    "prefetch": [
        {"query": [-2.05, 1.25, -2.05, -2.05], "using": "d", "limit": POINTS},
        {"query": {"indices": [3, 4, 9, 0], "values": [1.75, 1.05, 2.05, 1.15]}, "using": "s",
         "limit": POINTS},
    ],
    "query": {"fusion": "rrf"},
    "group_by": "meta.kind",
    "group_size": 2,
    "limit": 1,
}  # fmt: skip
"""Found by hypothesis when sparse values had 3 decimals: points 4 and 37 then tied
exactly in the sparse prefetch (1.75 * 1.822 == 1.75 * 0.85 + 1.05 * 1.62), the tied
pair's prefetch ranks (which no engine defines) differed by engine, and rrf turned
that into different fused scores and a different second hit of group 'b'."""


def _local_groups(local: QdrantClient, body: dict[str, Any]) -> list[tuple[Any, list[Any]]]:
    request = models.QueryGroupsRequest(**body)
    answer = local.query_points_groups(
        NAME,
        group_by=request.group_by,
        query=request.query,
        using=request.using,
        prefetch=request.prefetch,
        query_filter=request.filter,
        limit=request.limit,
        group_size=request.group_size,
        with_payload=False,
    )
    return [(g.id, [(h.id, h.score) for h in g.hits]) for g in answer.groups]


def _assert_same_groups(ours: list[dict[str, Any]], theirs: list[tuple[Any, list[Any]]]) -> None:
    assert [g["id"] for g in ours] == [group_id for group_id, _ in theirs]
    for group, (_, hits) in zip(ours, theirs, strict=True):
        assert [h["id"] for h in group["hits"]] == [point_id for point_id, _ in hits]
        for hit, (_, score) in zip(group["hits"], hits, strict=True):
            assert hit["score"] == pytest.approx(score, abs=TOLERANCE)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=group_bodies())
@example(body=TIED_SPARSE_RRF)
def test_query_groups_equal_local_mode(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    api, local = both
    theirs = _local_groups(local, body)
    for name in (NAME, SHARDED):
        ours = api.result("POST", f"/collections/{name}/points/query/groups", body)["groups"]
        _assert_same_groups(ours, theirs)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(sorted(INDEXES)),
    limit=st.integers(1, 12),
    flt=st.one_of(st.none(), st.sampled_from(FILTERS)),
)
def test_facet_counts_equal_local_mode(
    both: tuple[Api, QdrantClient], key: str, limit: int, flt: dict[str, Any] | None
) -> None:
    api, local = both
    local_filter = None if flt is None else models.Filter(**flt)
    theirs = local.facet(NAME, key, facet_filter=local_filter, limit=limit).hits
    body: dict[str, Any] = {"key": key, "limit": limit, "exact": True}
    if flt is not None:
        body["filter"] = flt
    for name in (NAME, SHARDED):
        ours = api.result("POST", f"/collections/{name}/facet", body)["hits"]
        assert ours == [{"value": hit.value, "count": hit.count} for hit in theirs]


def example() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(0, POINTS - 1), dense)


@st.composite
def recommend_group_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Legacy ``RecommendGroupsRequest`` bodies on the dense vector (a sparse example
    leaves most points tied at zero, and tied groups have no one order to compare)."""
    strategy = draw(st.sampled_from(["average_vector", "best_score", "sum_scores", None]))
    averaged = strategy in ("average_vector", None)
    positive = draw(st.lists(example(), min_size=1 if averaged else 0, max_size=3))
    negative = draw(
        st.lists(example(), min_size=0 if positive else 1, max_size=2).filter(
            lambda examples: not any(e in positive for e in examples)
        )
    )  # an example both positive and negative ties every point (sum_scores: all 0)
    body: dict[str, Any] = {
        "positive": positive,
        "negative": negative,
        "using": "d",
        "group_by": draw(st.sampled_from(["cat", "num", "meta.kind", "u"])),
        "group_size": draw(st.integers(1, 5)),
        "limit": draw(st.integers(1, 8)),
    }
    if strategy is not None:
        body["strategy"] = strategy
    if not averaged or draw(st.booleans()):
        # the custom scores compared exactly; the graph's recall is tests/api's
        body["params"] = {"exact": True}
    flt = draw(st.one_of(st.none(), st.sampled_from(FILTERS)))
    if flt is not None:
        body["filter"] = flt
    return body


def _local_recommend_groups(
    local: QdrantClient, body: dict[str, Any]
) -> list[tuple[Any, list[Any]]]:
    """qdrant-client 1.20 dropped ``QdrantClient.recommend_groups``; its local mode still
    implements the legacy endpoint, on the collection itself."""
    collection = local._client.collections[NAME]  # type: ignore[attr-defined]
    strategy = body.get("strategy")
    answer = collection.recommend_groups(
        group_by=body["group_by"],
        positive=body["positive"],
        negative=body["negative"],
        query_filter=models.Filter(**body["filter"]) if "filter" in body else None,
        limit=body["limit"],
        group_size=body["group_size"],
        with_payload=False,
        using=body["using"],
        strategy=None if strategy is None else models.RecommendStrategy(strategy),
    )
    return [(g.id, [(h.id, h.score) for h in g.hits]) for g in answer.groups]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=recommend_group_bodies())
def test_recommend_groups_equal_local_mode(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    api, local = both
    theirs = _local_recommend_groups(local, body)
    for name in (NAME, SHARDED):
        ours = api.result("POST", f"/collections/{name}/points/recommend/groups", body)["groups"]
        try:
            _assert_same_groups(ours, theirs)
        except AssertionError as exc:
            raise AssertionError(f"{name} {body}: {exc}") from None
