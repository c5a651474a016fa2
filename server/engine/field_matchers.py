"""The per-value tests of field conditions: match, range, datetime range and geo.

A ``ValueTest`` answers one question about one (already flattened) payload value;
``filters.FieldCondition`` applies it to every value a key selects. Kept apart from
the filter tree so each kind of test reads on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, TypeGuard

EARTH_RADIUS_M = 6371008.8  # IUGG mean Earth radius, the one Qdrant uses


class ValueTest:
    """The operand of a field condition, tested against one (flattened) payload value."""

    __slots__ = ()

    def check(self, value: Any) -> bool:
        raise NotImplementedError


def _same_kind_equal(value: Any, operand: str | int | bool) -> bool:
    """Qdrant's exact match: bool, int, float and str never equal one another."""
    if isinstance(operand, bool) or isinstance(value, bool):
        return value is operand
    if isinstance(operand, int):
        return isinstance(value, int) and value == operand
    return isinstance(value, str) and value == operand


@dataclass(frozen=True)
class MatchValue(ValueTest):
    value: str | int | bool
    kind: type = field(init=False, repr=False)
    """The operand's type, so that equal tests are equal filters: ``1 == True`` in Python,
    and two searches of one batch matching ``1`` and ``true`` were grouped as one filter
    (``collection/search.py`` groups searches by their filter) and both got ``1``'s."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", type(self.value))

    def check(self, value: Any) -> bool:
        return _same_kind_equal(value, self.value)


def _in_variants(value: Any, variants: frozenset[str] | frozenset[int]) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return value in variants


@dataclass(frozen=True)
class MatchAny(ValueTest):
    """Operands are all strings or all integers, as Qdrant requires."""

    any: frozenset[str] | frozenset[int]

    def check(self, value: Any) -> bool:
        return _in_variants(value, self.any)


@dataclass(frozen=True)
class MatchExcept(ValueTest):
    except_: frozenset[str] | frozenset[int]

    def check(self, value: Any) -> bool:
        # null is absence, not a value that differs from every operand
        return value is not None and not _in_variants(value, self.except_)


_TOKEN = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    """Qdrant's default word tokenizer for fields without a text index."""
    return [token.lower() for token in _TOKEN.findall(text)]


@dataclass(frozen=True)
class MatchText(ValueTest):
    """Every query word must be a word of the value; an empty query matches nothing."""

    text: str

    def check(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        words, wanted = set(_tokens(value)), _tokens(self.text)
        return bool(wanted) and all(token in words for token in wanted)


@dataclass(frozen=True)
class MatchTextAny(ValueTest):
    text_any: str

    def check(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        words = set(_tokens(value))
        return any(token in words for token in _tokens(self.text_any))


def contains_phrase(words: list[str], phrase: list[str]) -> bool:
    """``phrase`` (not empty) occurs in ``words`` as consecutive words, in order."""
    size = len(phrase)
    return size > 0 and any(
        words[start : start + size] == phrase for start in range(len(words) - size + 1)
    )


@dataclass(frozen=True)
class MatchPhrase(ValueTest):
    """The query words must appear consecutively, in order."""

    phrase: str

    def check(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return contains_phrase(_tokens(value), _tokens(self.phrase))


@dataclass(frozen=True)
class MatchPrefix(ValueTest):
    prefix: str

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.prefix)


@dataclass(frozen=True)
class MatchSubstring(ValueTest):
    substring: str

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and self.substring in value


@dataclass(frozen=True)
class Range(ValueTest):
    """Numeric bounds; booleans are not numbers here."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    def check(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return _within(value, self.gt, self.gte, self.lt, self.lte)


def _within(value: Any, gt: Any, gte: Any, lt: Any, lte: Any) -> bool:
    return (
        (gt is None or value > gt)
        and (gte is None or value >= gte)
        and (lt is None or value < lt)
        and (lte is None or value <= lte)
    )


_DATETIME = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?"
    r"(?P<tz> ?[Zz]| UTC| ?[+-]\d{2}(?::?[0-5]\d(?::?[0-5]\d)?)?)?)?)?"
)


@lru_cache(maxsize=65536)
def parse_datetime(text: str) -> datetime | None:
    """Parse the datetime spellings Qdrant accepts (RFC 3339 and relatives); naive = UTC.

    Cached because a datetime range re-reads the same payload strings on every scan.
    """
    found = _DATETIME.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()[:7]
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
            tzinfo=_zone(found.group("tz")),
        )
    except ValueError:  # month 13, February 30th, hour 24...
        return None


def _zone(text: str | None) -> timezone:
    text = (text or "").strip()
    if text in ("", "Z", "z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes, seconds = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:] or 0)
    offset = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return timezone(sign * offset)


@dataclass(frozen=True)
class DatetimeRange(ValueTest):
    """Bounds on payload strings that parse as datetimes."""

    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None

    def check(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        moment = parse_datetime(value)
        return moment is not None and _within(moment, self.gt, self.gte, self.lt, self.lte)


@dataclass(frozen=True)
class GeoPoint:
    lon: float
    lat: float


def _as_geo_point(value: Any) -> GeoPoint | None:
    """A payload value is a geo point when it is an object with finite numeric lat/lon."""
    if not isinstance(value, dict):
        return None
    lon, lat = value.get("lon"), value.get("lat")
    if _is_finite_number(lon) and _is_finite_number(lat):
        return GeoPoint(float(lon), float(lat))
    return None


def _is_finite_number(value: Any) -> TypeGuard[float]:
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    half_dlat = (lat2 - lat1) / 2
    half_dlon = math.radians(b.lon - a.lon) / 2
    h = math.sin(half_dlat) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(half_dlon) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class GeoRadius(ValueTest):
    center: GeoPoint
    radius: float

    def check(self, value: Any) -> bool:
        point = _as_geo_point(value)
        return point is not None and haversine_m(point, self.center) < self.radius


@dataclass(frozen=True)
class GeoBoundingBox(ValueTest):
    """Edges excluded; a box whose left edge is east of its right crosses the antimeridian."""

    top_left: GeoPoint
    bottom_right: GeoPoint

    def check(self, value: Any) -> bool:
        point = _as_geo_point(value)
        if point is None or not self.bottom_right.lat < point.lat < self.top_left.lat:
            return False
        west, east = self.top_left.lon, self.bottom_right.lon
        if west > east:
            return point.lon > west or point.lon < east
        return west < point.lon < east


def _ring_side(point: GeoPoint, ring: tuple[GeoPoint, ...]) -> int:
    """+1 inside the ring, 0 on its boundary, -1 outside (even-odd ray casting)."""
    inside = False
    for start, end in zip(ring, ring[1:] + ring[:1], strict=True):
        cross = (end.lon - start.lon) * (point.lat - start.lat) - (end.lat - start.lat) * (
            point.lon - start.lon
        )
        if (
            cross == 0
            and min(start.lon, end.lon) <= point.lon <= max(start.lon, end.lon)
            and min(start.lat, end.lat) <= point.lat <= max(start.lat, end.lat)
        ):
            return 0
        if (start.lat > point.lat) != (end.lat > point.lat):
            lon_at = start.lon + (point.lat - start.lat) * (end.lon - start.lon) / (
                end.lat - start.lat
            )
            if point.lon < lon_at:
                inside = not inside
    return 1 if inside else -1


@dataclass(frozen=True)
class GeoPolygon(ValueTest):
    """Inside the exterior ring and outside every interior ring; boundaries excluded."""

    exterior: tuple[GeoPoint, ...]
    interiors: tuple[tuple[GeoPoint, ...], ...] = ()

    def check(self, value: Any) -> bool:
        point = _as_geo_point(value)
        if point is None or _ring_side(point, self.exterior) <= 0:
            return False
        return all(_ring_side(point, hole) < 0 for hole in self.interiors)
