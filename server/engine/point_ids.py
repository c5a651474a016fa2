"""Point ids as Qdrant defines them: an unsigned 64-bit integer or a UUID.

Inside Quiver an id is ``int`` or the canonical (lower-case, hyphenated) UUID
``str``, so equal ids compare equal however the client spelled them. Ordering
follows Qdrant: every integer id sorts before every UUID.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.errors import InvalidPointId

PointId = int | str
MAX_U64 = (1 << 64) - 1


def parse_point_id(value: Any) -> PointId:
    """Validate a wire id and return its canonical form."""
    if isinstance(value, bool):
        raise InvalidPointId(value)
    if isinstance(value, int):
        if 0 <= value <= MAX_U64:
            return value
        raise InvalidPointId(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise InvalidPointId(value) from None
    raise InvalidPointId(value)


def point_id_sort_key(point_id: PointId) -> tuple[int, int]:
    """Total order used by scroll: integers first, then UUIDs by value."""
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(point_id).int)


def point_id_to_text(point_id: PointId) -> str:
    """Storage key: decimal digits for integers, hyphenated UUID otherwise."""
    return str(point_id)


def point_id_from_text(text: str) -> PointId:
    return int(text) if text.isdigit() else text
