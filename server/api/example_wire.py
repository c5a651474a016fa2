"""The wire shapes of queries by example, parsed into ``engine/examples.py`` types with
a 400 that names the problem: ``recommend``, ``discover``, ``context`` and
``relevance_feedback`` query objects, ``lookup_from``, and the legacy recommend /
discover request bodies (their fields are the query object's, spelled flat)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from server.engine.examples import (
    STRATEGIES,
    ContextPair,
    Discover,
    Example,
    ExampleQuery,
    Feedback,
    Lookup,
    Recommend,
)
from server.engine.point_ids import parse_point_id
from server.engine.sparse_vector import is_sparse_object, parse_sparse
from server.errors import BadRequest

KINDS = ("recommend", "discover", "context", "relevance_feedback")
Resolve = Callable[[str], Any]
"""A collection by name (``Engine.get``: 404 when there is none)."""


def parse_example_query(query: dict[str, Any]) -> ExampleQuery | None:
    """A query object by example; None for any other query object."""
    kind = next((k for k in KINDS if k in query), None)
    if kind is None:
        return None
    if set(query) != {kind}:
        raise BadRequest(f"Wrong input: unexpected field(s) {sorted(set(query) - {kind})}")
    body = query[kind]
    if kind == "recommend":
        return recommend(_object(body, kind, {"positive", "negative", "strategy"}))
    if kind == "discover":
        fields = _object(body, kind, {"target", "context"})
        if fields.get("target") is None:
            raise BadRequest("Wrong input: `discover` needs a `target`")
        return discover(fields.get("target"), fields.get("context"), "discover")
    if kind == "context":
        return discover(None, body, "context")
    return feedback(_object(body, kind, {"target", "feedback", "strategy"}))


def recommend(fields: dict[str, Any]) -> Recommend:
    strategy = fields.get("strategy") or "average_vector"
    if strategy not in STRATEGIES:
        raise BadRequest(
            f"Wrong input: unknown recommend strategy {strategy!r} "
            f"(expected one of {', '.join(STRATEGIES)})"
        )
    positive = tuple(_examples(fields.get("positive"), "positive"))
    negative = tuple(_examples(fields.get("negative"), "negative"))
    if strategy == "average_vector" and not positive:
        raise BadRequest("Wrong input: No positive examples given with 'average_vector' strategy")
    if not positive and not negative:
        raise BadRequest(f"Wrong input: No positive or negative examples given ({strategy})")
    return Recommend(positive, negative, strategy)


def discover(target: Any, context: Any, what: str) -> Discover:
    """``discover`` (a target) or ``context`` (none); pairs as a list or one object."""
    items = [] if context is None else context if isinstance(context, list) else [context]
    pairs = []
    for i, item in enumerate(items):
        pair = _object(item, f"{what} pair {i}", {"positive", "negative"})
        if pair.get("positive") is None or pair.get("negative") is None:
            raise BadRequest(f"Wrong input: {what} pair {i} needs `positive` and `negative`")
        pairs.append(ContextPair(_example(pair["positive"]), _example(pair["negative"])))
    if target is None and not pairs:
        raise BadRequest("Wrong input: No target or context given")
    return Discover(None if target is None else _example(target), tuple(pairs))


def feedback(fields: dict[str, Any]) -> Feedback:
    """``relevance_feedback``: a target, scored examples and the ``naive`` strategy."""
    if fields.get("target") is None:
        raise BadRequest("Wrong input: `relevance_feedback` needs a `target`")
    items = fields.get("feedback")
    if not isinstance(items, list):
        raise BadRequest("Wrong input: `relevance_feedback.feedback` must be a list")
    scored = []
    for i, item in enumerate(items):
        entry = _object(item, f"feedback item {i}", {"example", "score"})
        if entry.get("example") is None or not _finite(entry.get("score")):
            raise BadRequest(f"Wrong input: feedback item {i} needs an `example` and a `score`")
        scored.append((_example(entry["example"]), float(entry["score"])))
    strategy = _object(fields.get("strategy"), "relevance_feedback.strategy", {"naive"})
    naive = _object(strategy.get("naive"), "strategy `naive`", {"a", "b", "c"})
    if not all(_finite(naive.get(key)) for key in "abc"):
        raise BadRequest("Wrong input: the `naive` strategy needs numbers `a`, `b` and `c`")
    a, b, c = (float(naive[key]) for key in "abc")
    return Feedback(_example(fields["target"]), tuple(scored), a, b, c)


def lookup(raw: Any, resolve: Resolve) -> Lookup | None:
    """``lookup_from``: ``{"collection", "vector"}``, the collection resolved now."""
    if raw is None:
        return None
    fields = _object(raw, "lookup_from", {"collection", "vector", "shard_key"})
    name, vector = fields.get("collection"), fields.get("vector")
    if not isinstance(name, str) or not (vector is None or isinstance(vector, str)):
        raise BadRequest('Wrong input: `lookup_from` is {"collection": str, "vector": str}')
    return Lookup(resolve(name), vector)


def _examples(raw: Any, what: str) -> list[Example]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"Wrong input: `{what}` must be a list of examples")
    return [_example(item) for item in raw]


def _example(raw: Any) -> Example:
    """A point id, a raw dense or multi-vector (checked by the search), or a sparse one."""
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return parse_point_id(raw)
    if isinstance(raw, list) and raw:
        return raw
    if is_sparse_object(raw):
        return parse_sparse(raw, "example sparse vector")
    raise BadRequest(f"Wrong input: cannot read an example of type {type(raw).__name__}")


def _object(raw: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Wrong input: `{what}` must be an object")
    extra = set(raw) - allowed
    if extra:
        raise BadRequest(f"Wrong input: unexpected field(s) {sorted(extra)} in `{what}`")
    return raw


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
