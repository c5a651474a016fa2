"""Queries by example (recommend, discover, context, relevance feedback) must answer as
qdrant-client's local mode does.

The multi-stage suite's collection (``HYBRID`` of ``tests/helpers/local_mode.py``:
Cosine, Dot, Euclid, a MaxSim multi-vector, a plain and an idf sparse vector) lives
both in Quiver and in ``QdrantClient(":memory:")``.
Hypothesis draws query objects in Qdrant's wire shape, examples as point ids or raw
vectors, with filters, offsets and thresholds, searched exactly (``params.exact``) or
through the candidate path (the 60 points fit in one candidate pool, so both compare the
custom score itself; the graph's recall is measured in ``tests/api``). Ids,
order and scores must agree to float tolerance (near-ties may swap), and a body local
mode refuses must be a 400. A sharded copy must give the single-node answer.
"""

from __future__ import annotations

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
    POINTS,
    SHARDED,
    SPARSE,
    TOLERANCE,
    Answer,
    Twins,
    limits,
    quiver_answer,
    twins,
    vector_for,
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    with twins(tmp_path_factory.mktemp("by_example"), HYBRID) as pair:
        yield pair


USINGS = [*sorted(DIMS), *SPARSE]


def example(using: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(0, POINTS - 1), vector_for(using))


@st.composite
def recommend(draw: st.DrawFn, using: str) -> dict[str, Any]:
    strategy = draw(st.sampled_from(["best_score", "sum_scores", "average_vector", None]))
    body: dict[str, Any] = {
        "positive": draw(st.lists(example(using), max_size=3)),
        "negative": draw(st.lists(example(using), max_size=2)),
    }
    if strategy is not None:
        body["strategy"] = strategy
    return {"recommend": body}


def pairs(using: str, min_size: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    pair = st.fixed_dictionaries({"positive": example(using), "negative": example(using)})
    return st.lists(pair, min_size=min_size, max_size=3)


@st.composite
def feedback(draw: st.DrawFn, using: str) -> dict[str, Any]:
    items = st.fixed_dictionaries(
        {"example": example(using), "score": st.sampled_from([0.1, 0.5, 0.9, 1.0])}
    )
    a, b, c = (draw(st.sampled_from([0.5, 1.0, 2.0])) for _ in range(3))
    return {
        "relevance_feedback": {
            "target": draw(example(using)),
            "feedback": draw(st.lists(items, max_size=3)),
            "strategy": {"naive": {"a": a, "b": b, "c": c}},
        }
    }


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    using = draw(st.sampled_from(USINGS))
    kind = draw(st.sampled_from(["recommend", "discover", "context", "feedback"]))
    if kind == "recommend":
        query = draw(recommend(using))
    elif kind == "discover":
        query = {"discover": {"target": draw(example(using)), "context": draw(pairs(using, 0))}}
    elif kind == "context":
        query = {"context": draw(pairs(using, 1))}
    else:
        query = draw(feedback(using))
    body: dict[str, Any] = {
        "query": query,
        "using": using,
        "limit": draw(limits),
        "offset": draw(st.integers(0, 3)),
        "with_payload": draw(st.booleans()),
    }
    if using in SPARSE or draw(st.booleans()):
        # the candidate path holds only points sharing a term with a seed, where local
        # mode also ranks the rest (all tied at a zero similarity)
        body["params"] = {"exact": True}
    flt = draw(st.one_of(st.none(), st.sampled_from(FILTERS)))
    if flt is not None:
        body["filter"] = flt
    if draw(st.integers(0, 4)) == 0:
        body["score_threshold"] = draw(st.sampled_from([0.0, 0.5, -1.0]))
    return body


def local_answer(local: QdrantClient, body: dict[str, Any]) -> Answer | None:
    request = models.QueryRequest.model_validate(body)
    try:
        response = local.query_points(
            NAME,
            query=request.query,
            query_filter=request.filter,
            using=request.using,
            limit=request.limit or 10,
            offset=request.offset,
            with_payload=request.with_payload,
            score_threshold=request.score_threshold,
        )
    except (ValueError, TypeError, KeyError, AssertionError):
        return None
    return [(p.id, p.score, p.payload) for p in response.points]


def assert_same_answer(expected: Answer, actual: Answer, offset: int = 0) -> None:
    """Same scores position by position; ids equal except within a run of tied scores
    (custom scores tie often: a context score is 0 for every point inside the zone),
    whose ids must match as sets unless the page (its offset or its end) cuts the run."""
    assert len(expected) == len(actual), (expected, actual)
    for (_, want, _), (_, got, _) in zip(expected, actual, strict=True):
        assert got == pytest.approx(want, rel=TOLERANCE, abs=TOLERANCE), (expected, actual)
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(expected) and abs(expected[end][1] - expected[start][1]) <= TOLERANCE:
            end += 1
        if end < len(expected) and (start > 0 or offset == 0):
            assert {p[0] for p in expected[start:end]} == {p[0] for p in actual[start:end]}, (
                expected,
                actual,
            )
        start = end


def _kind(body: dict[str, Any]) -> str:
    query = body["query"]
    name = next(iter(query))
    return f"{name} {query[name].get('strategy', '')}" if name == "recommend" else name


@pytest.mark.slow  # about 10 s
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=requests())
def test_query_by_example_matches_local_mode(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    api, local = both
    expected = local_answer(local, body)
    actual = quiver_answer(api, body)
    event(f"{_kind(body)} on {body['using']}")
    event("refused" if expected is None else f"{len(expected)} points")
    if expected is None:
        assert actual is None, f"local mode refused {body}, Quiver answered {actual}"
        return
    assert actual is not None, f"Quiver refused {body}"
    try:
        assert_same_answer(expected, actual, body["offset"])
    except AssertionError as exc:
        raise AssertionError(f"{body}: {exc}") from None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=requests())
def test_sharded_query_by_example_answers_as_one_node(
    both: tuple[Api, QdrantClient], body: dict[str, Any]
) -> None:
    api, _ = both
    single = quiver_answer(api, body)
    sharded = quiver_answer(api, body, SHARDED)
    if single is None:
        assert sharded is None
        return
    assert sharded is not None, body
    assert_same_answer(single, sharded, body["offset"])
