"""Where many points live in one segment, found in one pass: grouped search reads the
``group_by`` key of tens of candidates per search, and a binary search per point and
per segment cost more than the read itself."""

from __future__ import annotations

from collections.abc import Sequence

from server.engine.id_column import IdColumn
from server.engine.point_ids import PointId
from server.engine.segment_set import AnySegment

Found = list[tuple[PointId, int]]


def live_rows(segment: AnySegment, ids: Sequence[PointId]) -> tuple[Found, list[PointId]]:
    """The ``(id, live row)`` of each of ``ids`` this segment holds, and the ids it does
    not hold, both in the order asked. Integer ids in a sealed segment are found with
    vectorised binary searches (``IdColumn.int_rows``); any other case asks ``row_of``
    point by point."""
    column = segment.ids
    if not isinstance(column, IdColumn) or not all(type(i) is int and i >= 0 for i in ids):
        return _one_by_one(segment, ids)
    rows, counts = column.int_rows(ids)  # type: ignore[arg-type]  # all int, checked above
    live = segment.live_mask()
    found: Found = []
    missed: list[PointId] = []
    for point_id, count, row in zip(ids, counts.tolist(), rows.tolist(), strict=True):
        if count == 1 and live[row]:
            found.append((point_id, row))
        elif count <= 1:
            missed.append(point_id)
        else:  # several rows hold it (older copies beside the live one): the slow way
            located = segment.row_of(point_id)
            if located is None:
                missed.append(point_id)
            else:
                found.append((point_id, located))
    return found, missed


def _one_by_one(segment: AnySegment, ids: Sequence[PointId]) -> tuple[Found, list[PointId]]:
    row_of = segment.row_of
    found: Found = []
    missed: list[PointId] = []
    for point_id in ids:
        row = row_of(point_id)
        if row is None:
            missed.append(point_id)
        else:
            found.append((point_id, row))
    return found, missed
