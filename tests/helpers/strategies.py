"""Hypothesis strategies the property tests share: point ids, vectors, payloads and the
filter grammar's skeleton, with a tiny independent oracle for the simple filters."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

COLORS = ["red", "green", "blue"]


def point_ids(max_id: int) -> st.SearchStrategy[int]:
    """Integer ids from a small pool, so upserts overwrite and deletes hit."""
    return st.integers(0, max_id)


def vectors(dim: int, bound: float = 10.0) -> st.SearchStrategy[list[float]]:
    """Finite float32 vectors; values repeat often enough to make ties."""
    element = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)
    return st.lists(element, min_size=dim, max_size=dim)


color_filters: st.SearchStrategy[dict[str, Any] | None] = st.one_of(
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
"""Filters over ``color`` and ``n``; ``passes`` is their oracle."""


def passes(flt: dict[str, Any] | None, payload: dict[str, Any]) -> bool:
    """An independent, tiny oracle for the shapes ``color_filters`` generates."""
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


def range_bounds(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A ``range`` condition's body: any of gt / gte / lt / lte, from ``values``."""
    return st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), values, max_size=3)


def filter_clauses(
    conditions: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    """A filter of ``conditions``: optional must / should / must_not (one condition or a
    list) and min_should; recursive when ``conditions`` holds filters itself."""
    clause = st.one_of(st.lists(conditions, max_size=3), conditions)
    min_should = st.builds(
        lambda cs, k: {"conditions": cs, "min_count": k},
        st.lists(conditions, max_size=3),
        st.integers(1, 2),
    )
    return st.fixed_dictionaries(
        {},
        optional={"must": clause, "should": clause, "must_not": clause, "min_should": min_should},
    )
