"""Qdrant's score-boosting formulas: parsed once, evaluated over all candidates at once.

``parse_formula`` turns ``{"formula": ..., "defaults": ...}`` into a tree of small
dataclasses (validated as Qdrant validates them: score variables, JSON paths, decay
parameters, conditions); ``evaluate`` computes every candidate's score as one numpy
array per node. Payload variables are gathered once per stage (one pass over the
candidates' payloads per path), conditions are the filter engine's own vectorised
``Filter.mask``; no expression node calls back into Python per candidate.

Semantics follow qdrant-client's local mode (``qdrant_client/hybrid/formula.py``):
``$score`` is ``$score[0]``, the score a point got in that prefetch (else its default,
else 0); a payload variable is the number at that path (one-element arrays unwrapped)
else its default, and an error otherwise; ``mult`` stops at a zero factor and ``div``
at a zero numerator, so a later operand's error does not count for that point; a
non-finite result (division by zero without ``by_zero_default``, ``sqrt`` / ``ln`` /
``log10`` / ``acosh`` out of their domain, overflow) fails the request with a 400
naming the expression, as Qdrant does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from server.engine.field_matchers import EARTH_RADIUS_M, parse_datetime
from server.engine.filters import Filter, parse_filter
from server.engine.payload import JsonPath, check_depth, parse_json_path
from server.engine.point_ids import PointId
from server.errors import BadRequest

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
MAX_FORMULA_NODES = 1024
"""Expression nodes one formula may have: bounds the work a request can cause."""

_CONDITION_KEYS = frozenset(
    {"key", "has_id", "has_vector", "is_empty", "is_null", "nested", "must", "should",
     "must_not", "min_should"}
)  # fmt: skip


class FormulaError(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Bad formula: {detail}")


# --- the expression tree -------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class ScoreVar:
    index: int


@dataclass(frozen=True)
class PayloadVar:
    path: JsonPath


@dataclass(frozen=True)
class ConditionTerm:
    """A filter condition: 1.0 where it holds, else 0.0."""

    filter: Filter


@dataclass(frozen=True)
class Nary:
    op: str  # sum | mult | max | min
    terms: tuple[Expression, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # neg | abs | sqrt | exp | log10 | ln | acosh
    term: Expression


@dataclass(frozen=True)
class Div:
    left: Expression
    right: Expression
    by_zero_default: float | None


@dataclass(frozen=True)
class Pow:
    base: Expression
    exponent: Expression


@dataclass(frozen=True)
class GeoDistance:
    lat: float
    lon: float
    to: JsonPath


@dataclass(frozen=True)
class DatetimeKey:
    path: JsonPath


@dataclass(frozen=True)
class Decay:
    kind: str  # lin_decay | exp_decay | gauss_decay
    x: Expression
    target: Expression | None
    midpoint: float
    scale: float


Expression = (
    Const | ScoreVar | PayloadVar | ConditionTerm | Nary | Unary | Div | Pow | GeoDistance
    | DatetimeKey | Decay
)  # fmt: skip


@dataclass(frozen=True)
class FormulaQuery:
    """``{"formula": expression, "defaults": {variable: value}}``."""

    expression: Expression
    defaults: dict[str, Any] = field(default_factory=dict)


# --- parsing -------------------------------------------------------------------------

_UNARY = ("neg", "abs", "sqrt", "exp", "log10", "ln", "acosh")
_NARY = ("sum", "mult", "max", "min")
_DECAYS = ("lin_decay", "exp_decay", "gauss_decay")
_EXPRESSION_KEYS = frozenset(
    {*_UNARY, *_NARY, *_DECAYS, "div", "pow", "geo_distance", "datetime", "datetime_key"}
)


def parse_formula(raw: Any, defaults: Any) -> FormulaQuery:
    """Parse and validate a formula query; malformed input raises ``FormulaError``."""
    check_depth(raw, "formula")
    if defaults is not None and not isinstance(defaults, dict):
        raise FormulaError(f"`defaults` must be an object, got {type(defaults).__name__}")
    counter = [0]
    expression = _parse(raw, counter)
    return FormulaQuery(expression, _parse_defaults(defaults or {}))


def _parse_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Keys read like variables, so ``$score`` and ``$score[0]`` share a default."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        variable = _parse_variable(key)
        parsed[_score_key(variable.index) if isinstance(variable, ScoreVar) else key] = value
    return parsed


def _score_key(index: int) -> str:
    return f"$score[{index}]"


def _parse(raw: Any, counter: list[int]) -> Expression:
    counter[0] += 1
    if counter[0] > MAX_FORMULA_NODES:
        raise FormulaError(f"more than {MAX_FORMULA_NODES} expressions in one formula")
    if isinstance(raw, bool) or raw is None:
        raise FormulaError(f"expected a number, a variable or an expression, got {raw!r}")
    if isinstance(raw, int | float):
        return Const(float(raw))
    if isinstance(raw, str):
        return _parse_variable(raw)
    if not isinstance(raw, dict) or not raw:
        raise FormulaError(f"expected a number, a variable or an expression, got {raw!r}")
    kinds = [key for key in raw if key in _EXPRESSION_KEYS]
    if not kinds:
        if not set(raw) & _CONDITION_KEYS:
            raise FormulaError(f"unknown expression with keys {sorted(raw)}")
        return ConditionTerm(_condition(raw))
    if len(raw) != 1:
        raise FormulaError(f"one expression per object, got keys {sorted(raw)}")
    return _parse_operator(kinds[0], raw[kinds[0]], counter)


def _condition(raw: dict[str, Any]) -> Filter:
    parsed = parse_filter({"must": [raw]})
    return parsed if parsed is not None else Filter()


def _parse_operator(kind: str, value: Any, counter: list[int]) -> Expression:
    if kind in _NARY:
        if not isinstance(value, list):
            raise FormulaError(f"`{kind}` takes a list of expressions")
        if kind in ("max", "min") and not value:
            raise FormulaError(f"`{kind}` needs at least one operand")
        return Nary(kind, tuple(_parse(term, counter) for term in value))
    if kind in _UNARY:
        return Unary(kind, _parse(value, counter))
    if kind == "div":
        body = _object(value, kind, ("left", "right"), ("by_zero_default",))
        default = body.get("by_zero_default")
        return Div(
            _parse(body["left"], counter),
            _parse(body["right"], counter),
            None if default is None else _number(default, "div.by_zero_default"),
        )
    if kind == "pow":
        body = _object(value, kind, ("base", "exponent"), ())
        return Pow(_parse(body["base"], counter), _parse(body["exponent"], counter))
    if kind in _DECAYS:
        return _parse_decay(kind, value, counter)
    if kind == "geo_distance":
        body = _object(value, kind, ("origin", "to"), ())
        origin = _object(body["origin"], "geo_distance.origin", ("lat", "lon"), ())
        return GeoDistance(
            _number(origin["lat"], "origin.lat"),
            _number(origin["lon"], "origin.lon"),
            _path(body["to"], "geo_distance.to"),
        )
    if kind == "datetime":
        return Const(_timestamp(value, "datetime"))
    if kind == "datetime_key":
        return DatetimeKey(_path(value, "datetime_key"))
    raise FormulaError(f"unknown expression `{kind}`")


def _parse_decay(kind: str, value: Any, counter: list[int]) -> Decay:
    body = _object(value, kind, ("x",), ("target", "midpoint", "scale"))
    midpoint = _number(body.get("midpoint", 0.5), f"{kind}.midpoint")
    scale = _number(body.get("scale", 1.0), f"{kind}.scale")
    if kind == "lin_decay" and not 0.0 <= midpoint <= 1.0:
        raise FormulaError(
            f"Linear decay midpoint should be in the range [0.0, 1.0], got {midpoint}"
        )
    if kind != "lin_decay" and not 0.0 < midpoint < 1.0:
        raise FormulaError(f"Decay midpoint should be in the range (0.0, 1.0), got {midpoint}")
    if scale <= 0.0:
        raise FormulaError(f"Scale must be non-zero positive, got {scale}")
    target = body.get("target")
    return Decay(
        kind,
        _parse(body["x"], counter),
        None if target is None else _parse(target, counter),
        midpoint,
        scale,
    )


def _object(
    value: Any, kind: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormulaError(f"`{kind}` takes an object with {', '.join(required)}")
    unknown = set(value) - set(required) - set(optional)
    if unknown:
        raise FormulaError(f"unknown field(s) {sorted(unknown)} in `{kind}`")
    missing = [key for key in required if key not in value]
    if missing:
        raise FormulaError(f"`{kind}` is missing {', '.join(missing)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise FormulaError(f"`{where}` must be a finite number, got {value!r}")
    return float(value)


def _path(value: Any, where: str) -> JsonPath:
    if not isinstance(value, str):
        raise FormulaError(f"`{where}` must be a payload key, got {value!r}")
    try:
        return parse_json_path(value)
    except ValueError as exc:
        raise FormulaError(f"`{where}`: {exc}") from exc


def _timestamp(value: Any, where: str) -> float:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise FormulaError(f"`{where}`: expected a datetime in a supported format, got {value!r}")
    return parsed.timestamp()


def _parse_variable(text: str) -> ScoreVar | PayloadVar:
    if not text.startswith("$score"):
        return PayloadVar(_path(text, "variable"))
    rest = text[len("$score") :]
    if not rest:
        return ScoreVar(0)
    inner = rest[1:-1]
    if rest[0] != "[" or rest[-1] != "]" or not (inner.isascii() and inner.isdigit()):
        raise FormulaError(f"Invalid score pattern: {text}")
    return ScoreVar(int(inner))


# --- evaluation ----------------------------------------------------------------------


@dataclass
class Candidates:
    """What a formula reads: the candidates' ids, payloads, each prefetch's scores
    (NaN where a prefetch did not return the point) and which vectors they store."""

    point_ids: list[PointId]
    payload_list: list[dict[str, Any]]
    scores: list[Floats]
    has_vector: Callable[[str], Mask]
    gathered: dict[str, tuple[list[Any], dict[int, str]]] = field(default_factory=dict)

    @property
    def ids(self) -> Sequence[PointId]:
        return self.point_ids

    @property
    def payloads(self) -> Sequence[dict[str, Any]]:
        return self.payload_list

    def vector_present(self, name: str) -> Mask:
        return self.has_vector(name)


def evaluate(formula: FormulaQuery, candidates: Candidates) -> npt.NDArray[np.float32]:
    """Every candidate's score (float32, as Qdrant stores scores); raises
    ``FormulaError`` when a candidate's score is not a finite number."""
    rows = len(candidates.point_ids)
    everyone = np.ones(rows, dtype=bool)
    with np.errstate(all="ignore"):
        values = _Evaluator(formula.defaults, candidates).run(formula.expression, everyone)
        scores = values.astype(np.float32)
    bad = ~np.isfinite(scores)
    if bad.any():
        raise FormulaError(f"the formula produced a non-finite number ({values[bad][0]} as f32)")
    return scores


class _Evaluator:
    def __init__(self, defaults: dict[str, Any], candidates: Candidates) -> None:
        self.defaults = defaults
        self.candidates = candidates
        self.rows = len(candidates.point_ids)

    def run(self, node: Expression, live: Mask) -> Floats:
        """``node`` over every row; errors count only in ``live`` rows (the others were
        cut short by a zero factor or numerator, as Qdrant evaluates lazily)."""
        if isinstance(node, Const):
            return np.full(self.rows, node.value)
        if isinstance(node, ScoreVar):
            return self._score(node.index)
        if isinstance(node, PayloadVar):
            return self._numbers(node.path, live)
        if isinstance(node, ConditionTerm):
            return node.filter.mask(self.candidates).astype(np.float64)
        if isinstance(node, Nary):
            return self._nary(node, live)
        if isinstance(node, Unary):
            return self._unary(node, live)
        if isinstance(node, Div):
            return self._div(node, live)
        if isinstance(node, Pow):
            base, exponent = self.run(node.base, live), self.run(node.exponent, live)
            return _checked(np.power(base, exponent), live, "pow", base, exponent)
        if isinstance(node, GeoDistance):
            return self._geo(node, live)
        if isinstance(node, DatetimeKey):
            return self._datetimes(node.path, live)
        return self._decay(node, live)

    def _score(self, index: int) -> Floats:
        default = self.defaults.get(_score_key(index))
        fill = 0.0 if default is None else float(default)
        if index >= len(self.candidates.scores):
            return np.full(self.rows, fill)
        scores = self.candidates.scores[index]
        return np.where(np.isnan(scores), fill, scores)

    def _nary(self, node: Nary, live: Mask) -> Floats:
        if node.op == "sum":
            return (
                np.sum([self.run(term, live) for term in node.terms], axis=0)
                if node.terms
                else np.zeros(self.rows)
            )
        if node.op in ("max", "min"):
            pick = np.fmax if node.op == "max" else np.fmin
            result = np.full(self.rows, -np.inf if node.op == "max" else np.inf)
            for term in node.terms:
                result = pick(result, self.run(term, live))
            return result
        product, going = np.ones(self.rows), live.copy()
        for term in node.terms:
            factor = self.run(term, going)
            zero = factor == 0.0
            product = np.where(zero & going, factor, np.where(going, product * factor, product))
            going &= ~zero
        return product

    def _unary(self, node: Unary, live: Mask) -> Floats:
        value = self.run(node.term, live)
        if node.op == "neg":
            return -value
        if node.op == "abs":
            return np.abs(value)
        if node.op == "exp":
            return _checked(np.exp(value), live, "exp", value)
        domain = (
            value >= 1 if node.op == "acosh" else (value >= 0 if node.op == "sqrt" else value > 0)
        )
        _fail_where(live & ~domain, node.op, value)
        function = {"sqrt": np.sqrt, "log10": np.log10, "ln": np.log, "acosh": np.arccosh}[node.op]
        return _checked(function(np.where(domain, value, 1.0)), live, node.op, value)

    def _div(self, node: Div, live: Mask) -> Floats:
        left = self.run(node.left, live)
        going = live & (left != 0.0)
        right = self.run(node.right, going)
        by_zero = right == 0.0
        if node.by_zero_default is None:
            _fail_where(going & by_zero, "div", left, right)
        quotient = np.where(
            by_zero,
            0.0 if node.by_zero_default is None else node.by_zero_default,
            left / np.where(by_zero, 1.0, right),
        )
        quotient = _checked(quotient, going, "div", left, right)
        return np.where(left == 0.0, left, quotient)

    def _decay(self, node: Decay, live: Mask) -> Floats:
        x = self.run(node.x, live)
        target = np.zeros(self.rows) if node.target is None else self.run(node.target, live)
        if node.kind == "lin_decay":
            slope = (1.0 - node.midpoint) / node.scale
            return np.maximum(0.0, -slope * np.abs(x - target) + 1.0)
        if node.kind == "exp_decay":
            return np.exp(math.log(node.midpoint) / node.scale * np.abs(x - target))
        return np.exp(math.log(node.midpoint) / (node.scale * node.scale) * (x - target) ** 2)

    def _values(self, path: JsonPath, live: Mask) -> list[Any]:
        """The one value at ``path`` per candidate (else its default); gathered once
        per path and stage. Raises for a live candidate with no value at all."""
        if path.text not in self.candidates.gathered:
            self.candidates.gathered[path.text] = _gather(
                path, self.candidates.payload_list, self.defaults.get(path.text)
            )
        values, missing = self.candidates.gathered[path.text]
        for row, problem in missing.items():
            if live[row]:
                raise FormulaError(problem)
        return values

    def _numbers(self, path: JsonPath, live: Mask) -> Floats:
        values = self._values(path, live)
        numeric = np.array([_is_number(value) for value in values], dtype=bool)
        bad = live & ~numeric
        if bad.any():
            raise FormulaError(
                f"Expected number value for {path.text} in the payload and/or in the "
                "formula defaults. Error: Value is not a number"
            )
        return np.array(
            [value if ok else np.nan for value, ok in zip(values, numeric, strict=True)],
            dtype=np.float64,
        )

    def _geo(self, node: GeoDistance, live: Mask) -> Floats:
        values = self._values(node.to, live)
        lat = np.full(self.rows, np.nan)
        lon = np.full(self.rows, np.nan)
        for row, value in enumerate(values):
            if (
                isinstance(value, dict)
                and _is_number(value.get("lat"))
                and _is_number(value.get("lon"))
            ):
                lat[row], lon[row] = value["lat"], value["lon"]
            elif live[row]:
                raise FormulaError(
                    f"Expected geo point for {node.to.text} in the payload and/or "
                    "in the formula defaults."
                )
        return _haversine(node.lat, node.lon, lat, lon)

    def _datetimes(self, path: JsonPath, live: Mask) -> Floats:
        values = self._values(path, live)
        stamps = np.full(self.rows, np.nan)
        for row, value in enumerate(values):
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is not None:
                stamps[row] = parsed.timestamp()
            elif live[row]:
                raise FormulaError(
                    f"Expected datetime for {path.text} in the payload and/or in "
                    "the formula defaults."
                )
        return stamps


def _gather(
    path: JsonPath, payloads: list[dict[str, Any]], default: Any
) -> tuple[list[Any], dict[int, str]]:
    values: list[Any] = []
    missing: dict[int, str] = {}
    for row, payload in enumerate(payloads):
        found: Any = path.values(payload)
        if not found:
            found = None if default == [] else default
        if isinstance(found, list) and len(found) == 1:
            found = found[0]
        if found is None:
            missing[row] = f"No value found for {path.text} in the payload nor the formula defaults"
        values.append(found)
    return values, missing


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _haversine(lat0: float, lon0: float, lat: Floats, lon: Floats) -> Floats:
    lat1, lat2 = math.radians(lat0), np.radians(lat)
    dlat, dlon = lat2 - lat1, np.radians(lon) - math.radians(lon0)
    h = np.sin(dlat / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlon / 2) ** 2
    metres: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, h)))
    return metres


def _fail_where(bad: Mask, op: str, *operands: Floats) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = ", ".join(str(float(operand[row])) for operand in operands)
        raise FormulaError(f"The expression {op}({shown}) produced a non-finite number")


def _checked(result: Floats, live: Mask, op: str, *operands: Floats) -> Floats:
    _fail_where(live & ~np.isfinite(result), op, *operands)
    return result
