"""Facets (``POST /collections/{c}/facet``): how many points hold each value of an
indexed payload key, under an optional filter.

The counts come from the payload index, as in Qdrant (which refuses a key without a
map index, an integer index with ``lookup: false`` included): per segment, the
filter's live rows as one mask (the planner's index bounds plus the exact re-check,
``Segment.filter_mask``), then one bitmap intersection per distinct value (keyword,
uuid, bool) or one ``np.unique`` over the index's (value, row) pairs (integer). A
point holding a value twice counts once.
Sharded collections sum the per-shard counts, so the answer equals one node's.
Hits are ordered by count, descending, then by value, ascending (Qdrant's order, and
qdrant-client's local mode's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.engine.config import CollectionConfig
from server.engine.filters import Filter
from server.errors import BadRequest

if TYPE_CHECKING:
    from server.engine.segment_set import AnySegment

FacetValue = str | int | bool

FACET_INDEX_TYPES = ("keyword", "integer", "bool", "uuid")
"""Payload index types a facet reads (Qdrant's map indexes)."""


@dataclass(frozen=True, slots=True)
class FacetHit:
    value: FacetValue
    count: int


def check_facet_key(config: CollectionConfig, key: str) -> str:
    """The index type faceting ``key`` reads, or Qdrant's 400 when it has none."""
    spec = config.payload_schema.get(key)
    kind = spec.get("type") if isinstance(spec, Mapping) else spec
    no_lookup = isinstance(spec, Mapping) and spec.get("lookup") is False
    if kind not in FACET_INDEX_TYPES or no_lookup:  # lookup: false builds no value map
        raise BadRequest(
            f"Wrong input: No appropriate index for faceting: `{key}`. Please create one "
            "to facet on this field. Check https://qdrant.tech/documentation/concepts/"
            "indexing/#payload-index to see which payload schemas support Match conditions"
        )
    return str(kind)


def count_values(
    segments: Iterable[AnySegment], key: str, flt: Filter | None
) -> dict[FacetValue, int]:
    """Per value of indexed ``key``: the live points matching ``flt`` that hold it."""
    totals: Counter[Any] = Counter()
    for segment in segments:
        index = segment.payload_indexes.fields.get(key)
        if index is None:
            continue
        live = segment.live_mask()
        rows = live if flt is None else segment.filter_mask(flt, live)[0]
        if rows.any():
            totals.update(index.value_counts(rows))
    return dict(totals)


def top_hits(counts: Mapping[FacetValue, int], limit: int) -> list[FacetHit]:
    """The ``limit`` most frequent values, ties by value ascending."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FacetHit(value, count) for value, count in ordered[:limit]]
