"""Points ordered by a payload value (``order_by``) and random samples (``sample``).

``order_by`` is answered from a range-capable payload index (integer, float or
datetime), as Qdrant requires: each segment's index hands over its live ``(value,
row)`` pairs already sorted (``payload_index._SortedIndex.ordered``), the filter
drops rows as one mask, and only the first ``limit`` pairs (plus every pair tied
with the last of them) of each segment reach the merge, which sorts them by
``(value, id)`` with one ``lexsort``. Ties go by id ascending in both directions (as
qdrant-client's local mode orders them: a stable sort by value over points in id
order). A point whose key holds several values appears once per distinct value, as
in Qdrant.

Paging works as in Qdrant: ``next_page_offset`` is always null; the next page starts
``start_from`` the last value seen (inclusive), the client skipping the ids it
already has at that value. The order is total, so pages never depend on how the
points are spread over segments or shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from server.engine.field_matchers import parse_datetime
from server.errors import BadRequest

OrderValue = int | float
"""An ``order_value`` on the wire: the key's value (datetimes as epoch microseconds)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OrderBy:
    """``order_by`` as parsed: the payload key, its direction and where to start."""

    key: str
    descending: bool = False
    start_from: OrderValue | None = None


def parse_order_by(raw: Any) -> OrderBy:
    """``"key"`` or ``{"key", "direction", "start_from"}`` (a number or an RFC 3339
    datetime); anything else is a 400 naming the problem."""
    if isinstance(raw, str):
        raw = {"key": raw}
    if not isinstance(raw, dict):
        raise BadRequest('Wrong input: `order_by` is a key or {"key", "direction", "start_from"}')
    extra = set(raw) - {"key", "direction", "start_from"}
    if extra:
        raise BadRequest(f"Wrong input: unknown field(s) {sorted(extra)} in `order_by`")
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise BadRequest(f"Wrong input: `order_by.key` must be a payload key, got {key!r}")
    direction = raw.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(
            f"Wrong input: `order_by.direction` must be 'asc' or 'desc', got {direction!r}"
        )
    return OrderBy(key, direction == "desc", _start_from(raw.get("start_from")))


def _start_from(raw: Any) -> OrderValue | None:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if isinstance(raw, float) and not np.isfinite(raw):
            raise BadRequest(f"Wrong input: `order_by.start_from` must be finite, got {raw!r}")
        return raw
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise BadRequest(
            "Wrong input: `order_by.start_from` must be a number or an RFC 3339 datetime, "
            f"got {raw!r}"
        )
    return micros(parsed)


def micros(moment: datetime) -> int:
    """Exact epoch microseconds of an aware datetime (how a datetime index keys it)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def cut(values: np.ndarray, limit: int) -> int:
    """How many of the direction-sorted ``values`` can reach a page of ``limit``: the
    first ``limit`` and every later one tied with the last of them."""
    if len(values) <= limit:
        return len(values)
    if limit == 0:
        return 0
    boundary = values[limit - 1]
    return limit + int(np.count_nonzero(values[limit:] == boundary))


def no_range_index(key: str) -> BadRequest:
    """Qdrant's answer to ``order_by`` on a key without a range-capable index."""
    return BadRequest(
        f"Bad request: No range index for `order_by` key: `{key}`. Please create one to use "
        "`order_by`. Check https://qdrant.tech/documentation/concepts/indexing/#payload-index "
        "to see which payload schemas support Range conditions"
    )


def merge_order(
    values: np.ndarray, kinds: np.ndarray, highs: np.ndarray, lows: np.ndarray, descending: bool
) -> np.ndarray:
    """Positions by value (either direction), ties by id ascending (id as its
    ``sort_keys`` triple): descending reverses an ascending sort on the inverted id."""
    if not descending:
        return np.lexsort((lows, highs, kinds, values))
    inverted = (~lows, ~highs, -kinds.astype(np.int16))
    return np.lexsort((*inverted, values))[::-1]
