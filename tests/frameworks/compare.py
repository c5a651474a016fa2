"""Equality of a framework's answers from Quiver and from qdrant-client's local mode."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

REL_TOL = 1e-4
ABS_TOL = 1e-5


def point_ids(count: int) -> list[str]:
    """Fixed UUIDs, the same on both sides (frameworks otherwise draw random ones)."""
    return [str(uuid.UUID(int=i + 1)) for i in range(count)]


def assert_same_ranking(
    quiver: Sequence[tuple[object, float]], local: Sequence[tuple[object, float]]
) -> None:
    """Same ids in the same order, scores equal to float tolerance."""
    assert [item_id for item_id, _ in quiver] == [item_id for item_id, _ in local]
    for (item_id, got), (_, want) in zip(quiver, local, strict=True):
        assert math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL), (item_id, got, want)
