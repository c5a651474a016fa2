"""Qdrant's filter grammar: parsed and validated once, evaluated many times.

``parse_filter`` turns the JSON a client sends into an immutable tree of dataclasses
(one per condition kind, each carrying its key and operands) so that a planner or a
payload index can inspect it; ``Filter.matches`` tests one point and ``Filter.mask``
tests one segment's rows at once. Evaluation scans payloads for now; a payload index
can later answer a ``FieldCondition`` from bitmaps without changing this interface.

Semantics follow Qdrant and were checked against ``qdrant-client``'s local mode:

* ``must`` = AND, ``must_not`` = NOT ANY, ``should`` = OR where an empty ``should`` is
  no constraint, ``min_should`` = at least ``min_count`` of its conditions.
* A key that selects an array satisfies match/range/geo if any element does; a missing
  key or a null never satisfies them (``except`` included).
* Exact match keeps bool, integer, float and string apart (``true`` is not ``1``, and
  a float payload value never equals an integer operand).
* Inside ``nested`` each array element is tested alone; ``has_id``/``has_vector`` never
  hold there because an element is not a point.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol

import numpy as np
import numpy.typing as npt

from server.engine.field_matchers import (
    DatetimeRange,
    GeoBoundingBox,
    GeoPoint,
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
    _within,
    contains_phrase,
    parse_datetime,
)
from server.engine.payload import JsonPath, check_depth, parse_json_path
from server.engine.payload_column import StoredPayloads
from server.engine.point_ids import PointId, parse_point_id
from server.engine.slices import slice_of
from server.errors import InvalidFilter, InvalidPointId

BoolArray = npt.NDArray[np.bool_]
RowArray = npt.NDArray[np.intp]
_MISSING = object()


class RowPayloads(Protocol):
    """Payloads by row: a list, or a segment's ``PayloadColumn``."""

    def __len__(self) -> int: ...
    def __getitem__(self, row: int, /) -> dict[str, Any]: ...


class FilterSource(Protocol):
    """The rows a filter is evaluated against (one segment's live points)."""

    @property
    def ids(self) -> Sequence[PointId]: ...

    @property
    def payloads(self) -> RowPayloads: ...

    def vector_present(self, name: str) -> npt.NDArray[np.bool_]: ...


def _no_vectors(name: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Row:
    """One thing a condition is tested on: a point, or an element inside ``nested``."""

    point_id: PointId | None
    payload: dict[str, Any]
    has_vector: Callable[[str], bool]


class _Scan:
    """One ``Filter.mask`` call: the source plus per-call caches."""

    def __init__(self, source: FilterSource) -> None:
        self.source = source
        self.ids = source.ids
        self.payloads = source.payloads
        self._vectors: dict[str, BoolArray] = {}
        self._read: dict[int, dict[str, Any]] = {}

    def payloads_at(self, rows: RowArray) -> list[dict[str, Any]]:
        """The payloads of ``rows``. Stored ones (``on_disk_payload``) are read in one
        batched query and kept for the rest of this scan, so that several unindexed
        conditions read each row once."""
        payloads = self.payloads
        wanted = rows.tolist()
        if not isinstance(payloads, StoredPayloads):
            return [payloads[row] for row in wanted]
        read = self._read
        missing = [row for row in wanted if row not in read]
        if missing:
            read.update(zip(missing, payloads.many(missing), strict=True))
        return [read[row] for row in wanted]

    def vector_present(self, name: str) -> BoolArray:
        if name not in self._vectors:
            self._vectors[name] = np.asarray(self.source.vector_present(name), dtype=bool)
        return self._vectors[name]


# --- conditions ----------------------------------------------------------------------


class Condition:
    """A node of the filter tree; subclasses say how to test a row and a batch of rows."""

    __slots__ = ()

    def holds(self, row: _Row) -> bool:
        raise NotImplementedError

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        """Evaluate only ``rows`` (indices into the source), so AND/OR can short-circuit."""
        raise NotImplementedError


class _PayloadCondition(Condition):
    """A condition that reads only the payload, never the id or vectors."""

    __slots__ = ()

    def holds(self, row: _Row) -> bool:
        return self.test_payload(row.payload)

    def test_payload(self, payload: dict[str, Any]) -> bool:
        raise NotImplementedError

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        test = self.test_payload
        return np.fromiter(map(test, scan.payloads_at(rows)), dtype=bool, count=len(rows))


@dataclass(frozen=True)
class FieldCondition(_PayloadCondition):
    """``key`` satisfies ``test`` when any value it selects (arrays flattened) does."""

    key: str
    path: JsonPath
    test: ValueTest

    def test_payload(self, payload: dict[str, Any]) -> bool:
        check = self.test.check
        top_key = self.path.items[0]
        if len(self.path.items) == 1 and isinstance(top_key, str):  # hot path: no list built
            value = payload.get(top_key, _MISSING)
            if isinstance(value, list):
                return any(map(check, value))
            return value is not _MISSING and check(value)
        return any(map(check, self.path.values(payload)))


TextMode = Literal["text", "text_any", "phrase"]
DocumentOf = Callable[[Sequence[str]], tuple[set[str], list[str]]]


@dataclass(frozen=True)
class TextMatch(_PayloadCondition):
    """A ``text`` / ``text_any`` / ``phrase`` match on a field with a full-text index,
    its query already tokenized by that index (``text_index.TextIndex.bind_text``).

    A point's strings at ``key`` form one document: ``document`` gives its token set
    and its word sequence under the index's tokenizer. ``tokens`` are the query's
    tokens as the index looks them up; ``words`` the phrase's word sequence."""

    key: str
    path: JsonPath
    mode: TextMode
    tokens: tuple[str, ...]
    words: tuple[str, ...]
    document: DocumentOf = field(compare=False, repr=False)

    def test_payload(self, payload: dict[str, Any]) -> bool:
        texts = [value for value in self.path.values(payload) if isinstance(value, str)]
        if not texts or not self.tokens:
            return False
        tokens, words = self.document(texts)
        if self.mode == "text_any":
            return any(token in tokens for token in self.tokens)
        if self.mode == "text":
            return all(token in tokens for token in self.tokens)
        return contains_phrase(words, list(self.words))


@dataclass(frozen=True)
class ValuesCount(_PayloadCondition):
    """Number of values at ``key``: an array counts its elements, null or missing is 0."""

    key: str
    path: JsonPath
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def test_payload(self, payload: dict[str, Any]) -> bool:
        values = self.path.values(payload, flatten=False) or [None]
        return any(_within(_count(value), self.gt, self.gte, self.lt, self.lte) for value in values)


def _count(value: Any) -> int:
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1


@dataclass(frozen=True)
class IsEmpty(_PayloadCondition):
    """Missing, null, or an empty array (every value the key selects)."""

    key: str
    path: JsonPath

    def test_payload(self, payload: dict[str, Any]) -> bool:
        return all(
            value is None or value == [] for value in self.path.values(payload, flatten=False)
        )


@dataclass(frozen=True)
class IsNull(_PayloadCondition):
    """Some selected value is null, or an array holding a null (missing is not null)."""

    key: str
    path: JsonPath

    def test_payload(self, payload: dict[str, Any]) -> bool:
        return any(
            value is None or (isinstance(value, list) and any(item is None for item in value))
            for value in self.path.values(payload, flatten=False)
        )


@dataclass(frozen=True)
class HasId(Condition):
    ids: frozenset[PointId]

    def holds(self, row: _Row) -> bool:
        return row.point_id in self.ids

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        ids, wanted = scan.ids, self.ids
        return np.fromiter((ids[i] in wanted for i in rows.tolist()), dtype=bool, count=len(rows))


@dataclass(frozen=True)
class Slice(Condition):
    """The point's id hashes into slice ``index`` of ``total`` (``slices.py``); an
    element inside ``nested`` is no point and belongs to no slice."""

    total: int
    index: int

    def holds(self, row: _Row) -> bool:
        if row.point_id is None:
            return False
        return int(slice_of([row.point_id], self.total)[0]) == self.index

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        ids = scan.ids
        hit: BoolArray = slice_of([ids[i] for i in rows.tolist()], self.total) == self.index
        return hit


@dataclass(frozen=True)
class HasVector(Condition):
    """The point stores vector ``name`` ("" is the unnamed default vector)."""

    name: str

    def holds(self, row: _Row) -> bool:
        return row.has_vector(self.name)

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        return scan.vector_present(self.name)[rows]


@dataclass(frozen=True)
class Nested(_PayloadCondition):
    """``filter`` must hold for one object element of the array at ``key``."""

    key: str
    path: JsonPath
    filter: Filter

    def test_payload(self, payload: dict[str, Any]) -> bool:
        return any(
            self.filter.holds(_Row(None, element, _no_vectors))
            for value in self.path.values(payload, flatten=False)
            if isinstance(value, list)
            for element in value
            if isinstance(element, dict)
        )


@dataclass(frozen=True)
class MinShould:
    conditions: tuple[Condition, ...]
    min_count: int


def _cost(condition: Condition) -> int:
    """Cheap conditions first so an AND skips payload scans for rows they reject."""
    return 0 if isinstance(condition, HasId | HasVector | Slice) else 1


@dataclass(frozen=True)
class Filter(Condition):
    """A parsed filter (also usable as a condition inside another filter)."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    min_should: MinShould | None = None

    @property
    def is_trivial(self) -> bool:
        """True when the filter constrains nothing (matches every point)."""
        return not (self.must or self.should or self.must_not or self.min_should)

    def matches(
        self, point_id: PointId, payload: dict[str, Any], has_vector: Callable[[str], bool]
    ) -> bool:
        return self.holds(_Row(point_id, payload, has_vector))

    def mask(self, source: FilterSource) -> BoolArray:
        rows: RowArray = np.arange(len(source.ids), dtype=np.intp)
        return self.mask_rows(_Scan(source), rows)

    def mask_of(self, source: FilterSource, rows: RowArray) -> BoolArray:
        """Evaluate only ``rows`` (e.g. the candidates a payload index left), one bool each."""
        return self.mask_rows(_Scan(source), np.asarray(rows, dtype=np.intp))

    def holds(self, row: _Row) -> bool:
        if not all(condition.holds(row) for condition in self.must):
            return False
        if any(condition.holds(row) for condition in self.must_not):
            return False
        if self.should and not any(condition.holds(row) for condition in self.should):
            return False
        if self.min_should is None:
            return True
        hits = sum(condition.holds(row) for condition in self.min_should.conditions)
        return hits >= self.min_should.min_count

    def mask_rows(self, scan: _Scan, rows: RowArray) -> BoolArray:
        alive = np.ones(len(rows), dtype=bool)
        for condition in sorted(self.must, key=_cost):
            live = np.flatnonzero(alive)
            if not live.size:
                return alive
            alive[live] = condition.mask_rows(scan, rows[live])
        for condition in sorted(self.must_not, key=_cost):
            live = np.flatnonzero(alive)
            if not live.size:
                return alive
            alive[live] = ~condition.mask_rows(scan, rows[live])
        live = np.flatnonzero(alive)
        if self.should and live.size:
            alive[live] = _any_mask(self.should, scan, rows[live])
            live = np.flatnonzero(alive)
        if self.min_should is not None and live.size:
            hits = _count_mask(self.min_should.conditions, scan, rows[live])
            alive[live] = hits >= self.min_should.min_count
        return alive


def _any_mask(conditions: Sequence[Condition], scan: _Scan, rows: RowArray) -> BoolArray:
    hit = np.zeros(len(rows), dtype=bool)
    for condition in sorted(conditions, key=_cost):
        pending = np.flatnonzero(~hit)
        if not pending.size:
            break
        hit[pending] = condition.mask_rows(scan, rows[pending])
    return hit


def _count_mask(
    conditions: Sequence[Condition], scan: _Scan, rows: RowArray
) -> npt.NDArray[np.int64]:
    counts = np.zeros(len(rows), dtype=np.int64)
    for condition in conditions:
        counts += condition.mask_rows(scan, rows)
    return counts


def rewrite_conditions(flt: Filter, change: Callable[[Condition], Condition | None]) -> Filter:
    """``flt`` with every condition ``change`` answers for replaced (recursing into
    sub-filters, not into ``nested``, whose keys are relative); the same object when
    nothing changed."""

    def one(condition: Condition) -> Condition:
        if isinstance(condition, Filter):
            return rewrite_conditions(condition, change)
        return change(condition) or condition

    def many(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        return tuple(one(condition) for condition in conditions)

    min_should = flt.min_should
    if min_should is not None:
        min_should = MinShould(many(min_should.conditions), min_should.min_count)
    new = Filter(many(flt.must), many(flt.should), many(flt.must_not), min_should)
    return flt if new == flt else new


# --- parsing -------------------------------------------------------------------------


def parse_filter(raw: Any) -> Filter | None:
    """Parse a wire filter. None / a filter with no conditions -> None (match all).

    Malformed input raises ``InvalidFilter`` naming the path of the problem, e.g.
    ``must[0].range.gt: expected a number ..., got "abc"``.
    """
    if raw is None:
        return None
    check_depth(raw, "filter")
    parsed = _parse_filter(raw, "")
    return None if parsed.is_trivial else parsed


_FILTER_KEYS = ("must", "should", "must_not", "min_should")
_FIELD_TESTS = (
    "match",
    "range",
    "geo_radius",
    "geo_bounding_box",
    "geo_polygon",
    "values_count",
    "is_empty",
    "is_null",
)
_OTHER_CONDITIONS = ("is_empty", "is_null", "has_id", "has_vector", "nested", "slice")
_CONDITION_KEYS = frozenset(("key", *_FIELD_TESTS, *_OTHER_CONDITIONS, *_FILTER_KEYS))
_MATCH_KINDS = ("value", "any", "except", "text", "text_any", "phrase", "prefix", "substring")
_BOUNDS = ("gt", "gte", "lt", "lte")


def _fail(where: str, problem: str) -> NoReturn:
    raise InvalidFilter(f"{where}: {problem}" if where else problem)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _fields(raw: Any, where: str, allowed: Sequence[str], what: str) -> dict[str, Any]:
    """The object's non-null fields; unknown names are an error, nulls mean absent."""
    if not isinstance(raw, dict):
        _fail(where, f"expected {what} object, got {_show(raw)}")
    unknown = [name for name in raw if name not in allowed]
    if unknown:
        _fail(
            where,
            f"unknown field {_show(unknown[0])} in {what}; expected one of {', '.join(allowed)}",
        )
    return {name: value for name, value in raw.items() if value is not None}


def _parse_filter(raw: Any, where: str) -> Filter:
    present = _fields(raw, where, _FILTER_KEYS, "a filter")
    min_should = None
    if "min_should" in present:
        min_should = _parse_min_should(present["min_should"], _at(where, "min_should"))
    return Filter(
        must=_parse_clause(present.get("must"), _at(where, "must")),
        should=_parse_clause(present.get("should"), _at(where, "should")),
        must_not=_parse_clause(present.get("must_not"), _at(where, "must_not")),
        min_should=min_should,
    )


def _parse_clause(raw: Any, where: str) -> tuple[Condition, ...]:
    """A clause is a list of conditions or, as Qdrant also accepts, a single one."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return (_parse_condition(raw, where),)
    if isinstance(raw, list):
        return tuple(_parse_condition(item, f"{where}[{i}]") for i, item in enumerate(raw))
    _fail(where, f"expected a condition or a list of conditions, got {_show(raw)}")


def _parse_min_should(raw: Any, where: str) -> MinShould:
    present = _fields(raw, where, ("conditions", "min_count"), "a min_should")
    conditions, min_count = present.get("conditions"), present.get("min_count")
    if not isinstance(conditions, list):
        _fail(_at(where, "conditions"), f"expected a list of conditions, got {_show(conditions)}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        _fail(_at(where, "min_count"), f"expected an integer >= 1, got {_show(min_count)}")
    parsed = _parse_clause(conditions, _at(where, "conditions"))
    return MinShould(parsed, min_count)


def _parse_condition(raw: Any, where: str) -> Condition:
    present = _fields(raw, where, sorted(_CONDITION_KEYS), "a condition")
    if "key" in present:
        return _parse_field_condition(present, where)
    kinds = [name for name in _OTHER_CONDITIONS if name in present]
    if len(kinds) > 1 or (kinds and len(present) > 1):
        _fail(where, f"one condition per object, got {', '.join(sorted(present))}")
    if not kinds:  # only filter clauses (or nothing): a nested filter, as in Qdrant
        return _parse_filter(present, where)
    kind = kinds[0]
    value, inner = present[kind], _at(where, kind)
    if kind == "slice":
        return _parse_slice(value, inner)
    if kind in ("is_empty", "is_null"):
        key = _fields(value, inner, ("key",), f"an {kind}").get("key")
        path = _parse_key(key, _at(inner, "key"))
        return IsEmpty(path.text, path) if kind == "is_empty" else IsNull(path.text, path)
    if kind == "has_id":
        return _parse_has_id(value, inner)
    if kind == "has_vector":
        if not isinstance(value, str):
            _fail(inner, f"expected a vector name, got {_show(value)}")
        return HasVector(value)
    return _parse_nested(value, inner)


def _parse_key(raw: Any, where: str) -> JsonPath:
    if not isinstance(raw, str):
        _fail(where, f"expected a payload key, got {_show(raw)}")
    try:
        return parse_json_path(raw)
    except ValueError as exc:
        _fail(where, str(exc))


def _parse_has_id(raw: Any, where: str) -> HasId:
    if not isinstance(raw, list):
        _fail(where, f"expected a list of point ids, got {_show(raw)}")
    ids: set[PointId] = set()
    for i, item in enumerate(raw):
        try:
            ids.add(parse_point_id(item))
        except InvalidPointId as exc:
            _fail(f"{where}[{i}]", exc.message)
    return HasId(frozenset(ids))


def _parse_slice(raw: Any, where: str) -> Slice:
    present = _fields(raw, where, ("total", "index"), "a slice")
    total, index = present.get("total"), present.get("index")
    if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total < 1 << 64:
        _fail(_at(where, "total"), f"Slice total must be >= 1, got {_show(total)}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < total:
        _fail(_at(where, "index"), f"Slice index must be in [0;{total - 1}], got {_show(index)}")
    return Slice(total, index)


def _parse_nested(raw: Any, where: str) -> Nested:
    present = _fields(raw, where, ("key", "filter"), "a nested")
    key = present.get("key")
    if isinstance(key, str) and len(key) > 2 and key.endswith("[]"):
        key = key[:-2]  # `items[]` and `items` name the same array here
    path = _parse_key(key, _at(where, "key"))
    if "filter" not in present:
        _fail(_at(where, "filter"), "a nested condition needs a filter")
    return Nested(str(raw["key"]), path, _parse_filter(present["filter"], _at(where, "filter")))


def _parse_field_condition(present: dict[str, Any], where: str) -> Condition:
    extra = [name for name in present if name != "key" and name not in _FIELD_TESTS]
    if extra:
        _fail(where, f"{_show(extra[0])} cannot be combined with a field condition's key")
    path = _parse_key(present["key"], _at(where, "key"))
    tests = [name for name in _FIELD_TESTS if name in present]
    if len(tests) != 1:
        wanted = f"exactly one of {', '.join(_FIELD_TESTS)}"
        _fail(where, f"field condition needs {wanted}, got {', '.join(tests) or 'none'}")
    kind, value, inner = tests[0], present[tests[0]], _at(where, tests[0])
    if kind in ("is_empty", "is_null"):
        if not isinstance(value, bool):
            _fail(inner, f"expected true or false, got {_show(value)}")
        node: Condition = (
            IsEmpty(path.text, path) if kind == "is_empty" else IsNull(path.text, path)
        )
        return node if value else Filter(must_not=(node,))
    if kind == "values_count":
        bounds = _fields(value, inner, _BOUNDS, "a values_count")
        for name, bound in bounds.items():
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
                _fail(_at(inner, name), f"expected a non-negative integer, got {_show(bound)}")
        return ValuesCount(path.text, path, **bounds)
    return FieldCondition(path.text, path, _VALUE_PARSERS[kind](value, inner))


def _parse_match(raw: Any, where: str) -> ValueTest:
    present = _fields(raw, where, _MATCH_KINDS, "a match")
    if len(present) != 1:
        _fail(
            where,
            f"match needs exactly one of {', '.join(_MATCH_KINDS)}, "
            f"got {', '.join(present) or 'none'}",
        )
    kind, value = next(iter(present.items()))
    inner = _at(where, kind)
    if kind == "value":
        if not isinstance(value, str | int):  # bool is an int
            _fail(inner, f"expected a string, integer or boolean, got {_show(value)}")
        return MatchValue(value)
    if kind in ("any", "except"):
        variants = _parse_variants(value, inner)
        return MatchAny(variants) if kind == "any" else MatchExcept(variants)
    if not isinstance(value, str):
        _fail(inner, f"expected a string, got {_show(value)}")
    text_tests: dict[str, Callable[[str], ValueTest]] = {
        "text": MatchText,
        "text_any": MatchTextAny,
        "phrase": MatchPhrase,
        "prefix": MatchPrefix,
        "substring": MatchSubstring,
    }
    return text_tests[kind](value)


def _parse_variants(raw: Any, where: str) -> frozenset[str] | frozenset[int]:
    problem = f"expected a list of strings or a list of integers, got {_show(raw)}"
    if not isinstance(raw, list):
        _fail(where, problem)
    if all(isinstance(item, str) for item in raw):
        return frozenset(raw)
    if all(isinstance(item, int) and not isinstance(item, bool) for item in raw):
        return frozenset(raw)
    _fail(where, problem)


def _parse_range(raw: Any, where: str) -> ValueTest:
    """Numbers make a numeric range, RFC 3339 strings a datetime range; never both."""
    bounds = _fields(raw, where, _BOUNDS, "a range")
    is_datetime = bool(bounds) and all(isinstance(bound, str) for bound in bounds.values())
    for name, bound in bounds.items():
        if isinstance(bound, str) and not is_datetime:
            _fail(_at(where, name), f"expected a number like the other bounds, got {_show(bound)}")
        numeric = isinstance(bound, int | float) and not isinstance(bound, bool)
        if not numeric and (not isinstance(bound, str) or parse_datetime(bound) is None):
            problem = f"expected a number or an RFC 3339 datetime, got {_show(bound)}"
            _fail(_at(where, name), problem)
    if is_datetime:
        return DatetimeRange(**{name: parse_datetime(bound) for name, bound in bounds.items()})
    return Range(**bounds)


def _parse_geo_point(raw: Any, where: str) -> GeoPoint:
    present = _fields(raw, where, ("lon", "lat"), "a geo point")
    for name, limit in (("lon", 180), ("lat", 90)):
        value = present.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not -limit <= value <= limit
        ):
            _fail(
                _at(where, name),
                f"expected a number between -{limit} and {limit}, got {_show(value)}",
            )
    return GeoPoint(float(present["lon"]), float(present["lat"]))


def _parse_geo_radius(raw: Any, where: str) -> ValueTest:
    present = _fields(raw, where, ("center", "radius"), "a geo_radius")
    radius = present.get("radius")
    if isinstance(radius, bool) or not isinstance(radius, int | float):
        _fail(_at(where, "radius"), f"expected a number of metres, got {_show(radius)}")
    return GeoRadius(_parse_geo_point(present.get("center"), _at(where, "center")), float(radius))


def _parse_geo_box(raw: Any, where: str) -> ValueTest:
    present = _fields(raw, where, ("top_left", "bottom_right"), "a geo_bounding_box")
    return GeoBoundingBox(
        _parse_geo_point(present.get("top_left"), _at(where, "top_left")),
        _parse_geo_point(present.get("bottom_right"), _at(where, "bottom_right")),
    )


def _parse_ring(raw: Any, where: str) -> tuple[GeoPoint, ...]:
    points = _fields(raw, where, ("points",), "a geo line string").get("points")
    if not isinstance(points, list):
        _fail(_at(where, "points"), f"expected a list of geo points, got {_show(points)}")
    ring = tuple(_parse_geo_point(p, f"{where}.points[{i}]") for i, p in enumerate(points))
    if len(ring) < 4:
        _fail(_at(where, "points"), f"a polygon ring needs at least 4 points, got {len(ring)}")
    if ring[0] != ring[-1]:
        _fail(_at(where, "points"), "a polygon ring must be closed (first point == last point)")
    return ring


def _parse_geo_polygon(raw: Any, where: str) -> ValueTest:
    present = _fields(raw, where, ("exterior", "interiors"), "a geo_polygon")
    exterior = _parse_ring(present.get("exterior"), _at(where, "exterior"))
    interiors = present.get("interiors", [])
    if not isinstance(interiors, list):
        _fail(_at(where, "interiors"), f"expected a list of rings, got {_show(interiors)}")
    holes = tuple(_parse_ring(ring, f"{where}.interiors[{i}]") for i, ring in enumerate(interiors))
    return GeoPolygon(exterior, holes)


_VALUE_PARSERS: dict[str, Callable[[Any, str], ValueTest]] = {
    "match": _parse_match,
    "range": _parse_range,
    "geo_radius": _parse_geo_radius,
    "geo_bounding_box": _parse_geo_box,
    "geo_polygon": _parse_geo_polygon,
}
