"""What strict mode reads from a parsed filter (``filters.py``): how many conditions
it has, the most values one condition lists, and the payload keys it tests without an
index able to serve the test; each as Qdrant 1.19 counts it. The same for the payload
keys a score formula reads (``formula.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from server.engine.field_matchers import (
    DatetimeRange,
    GeoBoundingBox,
    GeoPolygon,
    GeoRadius,
    MatchAny,
    MatchExcept,
    MatchPhrase,
    MatchPrefix,
    MatchSubstring,
    MatchText,
    MatchTextAny,
    MatchValue,
    Range,
    ValueTest,
)
from server.engine.filters import (
    Condition,
    FieldCondition,
    Filter,
    HasId,
    IsEmpty,
    IsNull,
    Nested,
    ValuesCount,
)
from server.engine.formula import (
    ConditionTerm,
    DatetimeKey,
    Decay,
    Div,
    Expression,
    GeoDistance,
    Nary,
    PayloadVar,
    Pow,
    Unary,
)


def filter_conditions(flt: Filter | None) -> int:
    """Qdrant's ``total_conditions_count``: leaf conditions, nested filters included."""
    if flt is None:
        return 0
    return sum(_sub_conditions(condition) for condition in _conditions(flt))


def condition_size(flt: Filter | None) -> int:
    """Qdrant's ``max_condition_input_size``: the most values one condition lists
    (``match.any`` / ``match.except`` variants, ``has_id`` ids)."""
    if flt is None:
        return 0
    return max((_size(condition) for condition in _conditions(flt)), default=0)


def unindexed_key(
    flt: Filter, schema: Mapping[str, Mapping[str, Any]], prefix: str = ""
) -> tuple[str, list[str]] | None:
    """The first payload key ``flt`` tests without an index able to serve the test, with
    the index types that could (Qdrant's ``one_unindexed_key``); None when all are."""
    return next(unindexed_keys(flt, schema, prefix), None)


def unindexed_keys(
    flt: Filter, schema: Mapping[str, Mapping[str, Any]], prefix: str = ""
) -> Iterator[tuple[str, list[str]]]:
    """Every (key, index types able to serve it) ``flt`` tests unindexed, in order."""
    for condition in _conditions(flt):
        if isinstance(condition, Filter):
            yield from unindexed_keys(condition, schema, prefix)
        elif isinstance(condition, Nested):
            yield from unindexed_keys(condition.filter, schema, f"{_join(prefix, condition.key)}[]")
        else:
            found = _unindexed_leaf(condition, schema, prefix)
            if found is not None:
                yield found


_ALL_TYPES = frozenset({"keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"})


def unindexed_formula_key(
    expression: Expression, schema: Mapping[str, Mapping[str, Any]]
) -> tuple[str, list[str]] | None:
    """The first payload key a formula reads without an index of a type that serves it
    (numbers for a variable, geo for a distance, datetime for a date key)."""
    if isinstance(expression, ConditionTerm):
        return unindexed_key(expression.filter, schema)
    wanted: frozenset[str] = frozenset()
    if isinstance(expression, PayloadVar):
        key, wanted = expression.path.text, frozenset({"integer", "float"})
    elif isinstance(expression, GeoDistance):
        key, wanted = expression.to.text, frozenset({"geo"})
    elif isinstance(expression, DatetimeKey):
        key, wanted = expression.path.text, frozenset({"datetime"})
    if wanted:
        indexed = schema.get(key)
        return None if indexed and indexed.get("type") in wanted else (key, sorted(wanted))
    for part in _parts(expression):
        found = unindexed_formula_key(part, schema)
        if found is not None:
            return found
    return None


def _parts(expression: Expression) -> tuple[Expression, ...]:
    if isinstance(expression, Nary):
        return expression.terms
    if isinstance(expression, Unary):
        return (expression.term,)
    if isinstance(expression, Div):
        return (expression.left, expression.right)
    if isinstance(expression, Pow):
        return (expression.base, expression.exponent)
    if isinstance(expression, Decay):
        return (expression.x,) if expression.target is None else (expression.x, expression.target)
    return ()


def top_level_keys(flt: Filter) -> list[str]:
    """The payload keys ``flt``'s own conditions test (not those of filters inside it)."""
    keys = []
    for condition in _conditions(flt):
        if isinstance(condition, FieldCondition | ValuesCount | IsEmpty | IsNull | Nested):
            keys.append(condition.key)
    return keys


def _unindexed_leaf(
    condition: Condition, schema: Mapping[str, Mapping[str, Any]], prefix: str
) -> tuple[str, list[str]] | None:
    if isinstance(condition, FieldCondition):
        key, wanted = condition.key, _index_types(condition.test)
    elif isinstance(condition, ValuesCount | IsEmpty | IsNull):
        key, wanted = condition.key, _ALL_TYPES
    else:
        return None  # has_id, has_vector, slice: no payload key
    full_key = _join(prefix, key)
    indexed = schema.get(full_key)
    if not wanted or (indexed is not None and _serves(indexed, condition, wanted)):
        return None
    return full_key, sorted(wanted)


def _serves(indexed: Mapping[str, Any], condition: Condition, wanted: frozenset[str]) -> bool:
    """Whether the index can answer ``condition``: of a wanted type, and for an integer
    index the capability the test needs (Qdrant's ``lookup`` for a match, ``range``
    for a range: an integer index without it answers nothing of that kind)."""
    if indexed.get("type") not in wanted:
        return False
    if indexed.get("type") != "integer" or not isinstance(condition, FieldCondition):
        return True
    if isinstance(condition.test, Range):
        return indexed.get("range") is not False
    if isinstance(condition.test, MatchValue | MatchAny | MatchExcept):
        return indexed.get("lookup") is not False
    return True


def _index_types(test: ValueTest) -> frozenset[str]:
    """Index types able to serve a field test (Qdrant's ``infer_index_from_field_condition``)."""
    if isinstance(test, MatchValue):
        return _match_types([test.value])
    if isinstance(test, MatchAny | MatchExcept):
        values = test.any if isinstance(test, MatchAny) else test.except_
        return _match_types(list(values)) if values else frozenset()
    if isinstance(test, MatchText | MatchTextAny | MatchPhrase):
        return frozenset({"text"})
    if isinstance(test, MatchPrefix):
        return frozenset({"keyword"})
    if isinstance(test, MatchSubstring):
        return frozenset({"keyword", "text"})
    if isinstance(test, Range):
        return frozenset({"integer", "float"})
    if isinstance(test, DatetimeRange):
        return frozenset({"datetime"})
    if isinstance(test, GeoRadius | GeoBoundingBox | GeoPolygon):
        return frozenset({"geo"})
    return frozenset()


def _match_types(values: list[Any]) -> frozenset[str]:
    if all(isinstance(v, bool) for v in values):
        return frozenset({"bool"})
    if all(isinstance(v, int) for v in values):
        return frozenset({"integer"})
    return frozenset({"keyword", "uuid"} if all(_is_uuid(v) for v in values) else {"keyword"})


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _conditions(flt: Filter) -> Iterator[Condition]:
    yield from flt.must
    yield from flt.must_not
    yield from flt.should
    if flt.min_should is not None:
        yield from flt.min_should.conditions


def _sub_conditions(condition: Condition) -> int:
    if isinstance(condition, Filter):
        return filter_conditions(condition)
    if isinstance(condition, Nested):
        return filter_conditions(condition.filter)
    return 1


def _size(condition: Condition) -> int:
    if isinstance(condition, Filter):
        return condition_size(condition)
    if isinstance(condition, Nested):
        return condition_size(condition.filter)
    if isinstance(condition, HasId):
        return len(condition.ids)
    if isinstance(condition, FieldCondition) and isinstance(condition.test, MatchAny):
        return len(condition.test.any)
    if isinstance(condition, FieldCondition) and isinstance(condition.test, MatchExcept):
        return len(condition.test.except_)
    return 0


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
