"""Bounds on what one engine or one request may hold (issue 18, findings 4 and 10).

A collection holds open files (SQLite, mapped segment files), so their number is
capped; a batch of searches holds result buffers for every search, so what one
request may allocate is estimated before any search runs and refused over budget.
Both answer a Qdrant-shaped 400 naming the setting to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.engine.requests import SearchSpec
from server.errors import BadRequest

BYTES_PER_RESULT = 64
"""Memory one candidate result takes while a batch is answered: row, score and owner
per segment (8 + 4 + 8 bytes), their merged copies and sort keys, and some of the
hit objects built for the page."""


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """The engine's share of the server settings (``QUIVER_MAX_*``)."""

    max_collections: int = 1_000
    max_request_result_bytes: int = 256 * 1024 * 1024


def result_bytes(specs: Sequence[SearchSpec], parts: Sequence[int]) -> int:
    """What a batch's result buffers take: each search keeps up to ``limit + offset``
    candidates from each part (segment or shard), never more than the part holds."""
    candidates = sum(min(s.limit + s.offset, points) for s in specs for points in parts)
    return candidates * BYTES_PER_RESULT


def check_result_budget(specs: Sequence[SearchSpec], parts: Sequence[int], budget: int) -> None:
    """Refuse a batch whose results would take more than ``budget`` bytes."""
    needed = result_bytes(specs, parts)
    if needed > budget:
        raise BadRequest(
            f"Wrong input: these {len(specs)} searches would hold about {needed:,} bytes of "
            f"results, more than the budget of {budget:,} bytes per request "
            "(QUIVER_MAX_REQUEST_RESULT_BYTES); ask for fewer searches or a smaller "
            "limit / offset"
        )


def check_collection_count(count: int, limits: EngineLimits) -> None:
    """Refuse a new collection when ``count`` collections exist already."""
    if count >= limits.max_collections:
        raise BadRequest(
            f"Wrong input: this server holds {count} collections, its limit of "
            f"{limits.max_collections:,} (QUIVER_MAX_COLLECTIONS); delete one first"
        )
