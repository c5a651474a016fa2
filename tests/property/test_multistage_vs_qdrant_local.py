"""Multi-stage queries must answer as qdrant-client's local mode does.

One fixed collection (``HYBRID`` of ``tests/helpers/local_mode.py``: Cosine, Dot,
Euclid and MaxSim multi-vectors, a plain and an idf sparse vector; payloads with
numbers, a colour, a geo point, a datetime) lives both in Quiver (the in-process app)
and in ``QdrantClient(":memory:")``. Hypothesis draws
query bodies in Qdrant's wire shape (prefetch trees up to three levels deep, RRF with
and without ``k`` / ``weights``, DBSF, re-scoring with another vector, formulas, MMR,
filters at every level, offsets, thresholds); each body goes to Quiver as JSON and to
local mode parsed by qdrant-client's own models. Ids, order and scores must agree (to
float tolerance, near-ties may swap), and a body local mode refuses must be a 400.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api
from tests.helpers.local_mode import (
    DIMS,
    FILTERS,
    HYBRID,
    NAME,
    SHARDED,
    SPARSE,
    TOLERANCE,
    Twins,
    limits,
    quiver_answer,
    triples,
    twins,
    vector_for,
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    with twins(tmp_path_factory.mktemp("multistage"), HYBRID) as pair:
        yield pair


# --- strategies ------------------------------------------------------------------------


@st.composite
def nearest(draw: st.DrawFn) -> dict[str, Any]:
    using = draw(st.sampled_from([*sorted(DIMS), *SPARSE]))
    return {"query": draw(vector_for(using)), "using": using}


optional_filter = st.one_of(st.none(), st.sampled_from(FILTERS))

score_vars = st.sampled_from(["$score", "$score[0]", "$score[1]"])
leaf_terms = st.one_of(
    score_vars,
    st.sampled_from(["price", "rating", "loc.lat"]),
    st.integers(-3, 3).map(float),
    st.just({"key": "color", "match": {"value": "red"}}),
)
expressions = st.recursive(
    leaf_terms,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda terms: {"sum": terms}),
        st.lists(inner, min_size=1, max_size=3).map(lambda terms: {"mult": terms}),
        st.tuples(inner, inner, st.sampled_from([None, 0.0, 7.0])).map(
            lambda t: {
                "div": {"left": t[0], "right": t[1]}
                | ({} if t[2] is None else {"by_zero_default": t[2]})
            }
        ),
        inner.map(lambda term: {"neg": term}),
        inner.map(lambda term: {"abs": term}),
        inner.map(lambda term: {"exp": term}),
        inner.map(lambda term: {"ln": term}),
        inner.map(lambda term: {"sqrt": term}),
        st.tuples(inner, st.sampled_from([0.5, 2.0])).map(
            lambda t: {"pow": {"base": t[0], "exponent": t[1]}}
        ),
        st.tuples(
            st.sampled_from(["exp_decay", "gauss_decay", "lin_decay"]),
            inner,
            st.sampled_from([None, 3.0]),
            st.sampled_from([0.3, 0.5]),
            st.sampled_from([1.0, 10.0]),
        ).map(
            lambda t: {
                t[0]: {"x": t[1], "midpoint": t[3], "scale": t[4]}
                | ({} if t[2] is None else {"target": t[2]})
            }
        ),
        st.just({"geo_distance": {"origin": {"lat": 1.0, "lon": 2.0}, "to": "loc"}}),
        st.just({"sum": [{"datetime_key": "ts"}, {"neg": {"datetime": "2024-03-01T00:00:00Z"}}]}),
    ),
    max_leaves=6,
)


@st.composite
def combine(draw: st.DrawFn, children: int) -> Any:
    kind = draw(st.sampled_from(["formula", "rescore", "mmr", "rrf_k", "dbsf", "rrf"]))
    if kind in ("rrf", "dbsf"):
        return {"query": {"fusion": kind}}
    if kind == "rrf_k":
        rrf: dict[str, Any] = {"k": draw(st.integers(1, 80))}
        if draw(st.booleans()):
            rrf["weights"] = draw(
                st.lists(
                    st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=children, max_size=children
                )
            )
        return {"query": {"rrf": rrf}}
    if kind == "formula":
        body: dict[str, Any] = {"formula": draw(expressions)}
        if draw(st.booleans()):
            body["defaults"] = {"rating": 2.5, "$score[1]": 0.25}
        return {"query": body}
    stage = draw(nearest())
    if kind == "mmr":
        stage["query"] = {
            "nearest": stage["query"],
            "mmr": {
                "diversity": draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])),
                "candidates_limit": draw(limits),
            },
        }
    return stage


def stages(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.builds(
        lambda n, limit, flt: n | {"limit": limit} | ({} if flt is None else {"filter": flt}),
        nearest(),
        limits,
        optional_filter,
    )
    if depth == 0:
        return leaf
    return st.one_of(leaf, leaf, inner_stage(depth))


@st.composite
def inner_stage(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    children = draw(st.lists(stages(depth - 1), min_size=1, max_size=3))
    body = draw(combine(len(children))) | {"prefetch": children, "limit": draw(limits)}
    flt = draw(optional_filter)
    if flt is not None:
        body["filter"] = flt
    return body


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(inner_stage(2))
    if (
        body["query"] is not None
        and isinstance(body["query"], dict)
        and "mmr" in body["query"]
        and draw(st.booleans())
    ):
        del body["prefetch"]  # MMR over the whole collection
    body["offset"] = draw(st.integers(0, 3))
    body["with_payload"] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:
        body["score_threshold"] = draw(st.sampled_from([0.0, 0.2, 1.0]))
    return body


# --- comparison -----------------------------------------------------------------------


def local_answer(local: QdrantClient, body: dict[str, Any]) -> list[tuple[Any, float, Any]] | None:
    request = models.QueryRequest.model_validate(body)
    try:
        response = local.query_points(
            NAME,
            query=request.query,
            prefetch=request.prefetch,
            query_filter=request.filter,
            using=request.using,
            limit=request.limit or 10,
            offset=request.offset,
            with_payload=request.with_payload,
            score_threshold=request.score_threshold,
        )
    except ValueError:
        return None
    return [(p.id, p.score, p.payload) for p in response.points]


def assert_same_ranking(
    expected: list[tuple[Any, float, Any]], actual: list[tuple[Any, float, Any]]
) -> None:
    """Same scores position by position; ids equal, except among near-equal scores,
    where the ids of each tie group must match as sets (the last group may be cut)."""
    assert len(expected) == len(actual), (expected, actual)
    for (_, want, _), (_, got, _) in zip(expected, actual, strict=True):
        assert got == pytest.approx(want, rel=TOLERANCE, abs=TOLERANCE), (expected, actual)
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(expected) and abs(
            expected[end][1] - expected[end - 1][1]
        ) <= TOLERANCE * max(1.0, abs(expected[end][1])):
            end += 1
        if end < len(expected) or end - start == 1:
            want_group = {(p[0], _key(p[2])) for p in expected[start:end]}
            got_group = {(p[0], _key(p[2])) for p in actual[start:end]}
            assert want_group == got_group, (expected, actual)
        start = end


def _key(payload: Any) -> str:
    return repr(sorted(payload.items())) if isinstance(payload, dict) else repr(payload)


@pytest.mark.slow  # about 9 s: 150 trees
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=requests())
def test_multistage_query_matches_local_mode(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    api, local = both
    expected = local_answer(local, body)
    actual = quiver_answer(api, body)
    event("refused" if expected is None else f"{len(expected)} points")
    event(f"outer query: {sorted(body['query']) if isinstance(body['query'], dict) else 'vector'}")
    event("has a sparse stage" if '"indices"' in json.dumps(body) else "dense only")
    if expected is None:
        assert actual is None, f"local mode refused {body}, Quiver answered {actual}"
        return
    assert actual is not None, f"Quiver refused {body}"
    try:
        assert_same_ranking(expected, actual)
    except AssertionError as exc:
        raise AssertionError(f"{body}: {exc}") from None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies=st.lists(requests(), min_size=1, max_size=3))
def test_batch_of_multistage_queries_matches_local_mode(
    both: tuple[Api, QdrantClient], bodies: list[dict[str, Any]]
) -> None:
    api, local = both
    expected = [local_answer(local, body) for body in bodies]
    status, answer = api.post(f"/collections/{NAME}/points/query/batch", {"searches": bodies})
    if any(answer is None for answer in expected):
        assert status == 400, answer  # one bad query fails the whole batch
        return
    assert status == 200, answer
    for body, want, got in zip(bodies, expected, answer["result"], strict=True):
        try:
            assert_same_ranking(want or [], triples(got))
        except AssertionError as exc:
            raise AssertionError(f"{body}: {exc}") from None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=requests())
def test_sharded_collection_answers_as_one_node(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    """Leaves run on every shard and are merged before fusion, so the fan-out gives the
    single-node answer (and the same refusals)."""
    api, _ = both
    single = quiver_answer(api, body)
    sharded = quiver_answer(api, body, SHARDED)
    if single is None:
        assert sharded is None
        return
    assert sharded is not None, body
    try:
        assert_same_ranking(single, sharded)
    except AssertionError as exc:
        raise AssertionError(f"{body}: {exc}") from None


json_junk = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["$score", "$score[9]", "price", "rrf", "dbsf", "", "loc", "ts"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                ["sum", "mult", "div", "left", "right", "x", "fusion", "rrf", "k", "weights",
                 "formula", "nearest", "mmr", "diversity", "candidates_limit", "prefetch",
                 "query", "limit", "key", "match", "value", "exp_decay", "scale", "midpoint",
                 "geo_distance", "origin", "to", "datetime", "using"]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=json_junk, prefetch=st.one_of(st.none(), json_junk))
def test_malformed_multistage_queries_are_400s_never_5xx(
    both: tuple[Api, QdrantClient], query: Any, prefetch: Any
) -> None:
    api, _ = both
    body = {"query": query, "prefetch": prefetch, "limit": 3}
    status, answer = api.post(f"/collections/{NAME}/points/query", body)
    assert status in (200, 400, 422), (body, answer)
    if status != 200:
        assert answer["result"] is None and answer["status"]["error"]
