"""What the two sharded-equivalence suites (engine level over Ray, HTTP) share: the
shard count, vector size, payload colours and the filters both compare under."""

from __future__ import annotations

from typing import Any

DIM = 8
SHARDS = 3
COLORS = ["red", "green", "blue"]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"must": [{"key": "color", "match": {"value": "red"}}]},
    {"must": [{"key": "n", "range": {"gte": 10, "lt": 30}}]},
    {"must_not": [{"key": "color", "match": {"any": ["green"]}}]},
]
